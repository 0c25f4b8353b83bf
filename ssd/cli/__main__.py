"""``python -m ssd.cli``: the same as the ``ssd`` command."""

import sys

from ssd.cli import main

sys.exit(main())
