"""Rewrite the README's settings table and deploy/env.example from the declarations in core/config.py.

Run it after adding or changing a setting: ``python scripts/gen_settings_docs.py``
(tests/test_settings_docs.py fails while either file differs from what this writes).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's code, not whichever copy the environment has installed

from core.config import env_example, readme_with_table  # noqa: E402


def main() -> None:
    readme = ROOT / "README.md"
    readme.write_text(readme_with_table(readme.read_text()))
    (ROOT / "deploy" / "env.example").write_text(env_example())
    print(f"wrote {readme.relative_to(ROOT)} (settings table) and deploy/env.example")


if __name__ == "__main__":
    main()
