"""What the bot's reports add to ``core.markdown``: the reproducibility footer, server paths taken out of
posted text, and bidi controls shown instead of obeyed.

Tables, sections, code and the comment limit live in ``core.markdown`` (one place for Gitea Markdown).
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from core.markdown import code_block, details, md_table

# Characters that reorder how text is displayed (Trojan Source, CVE-2021-42574): echoed verbatim, a comment
# could show text in an order other than the one it has. Each is replaced by a visible <U+XXXX> marker.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
_BIDI = re.compile("[" + "".join(sorted(BIDI_CONTROLS)) + "]")


def neutralize_bidi(text: str) -> str:
    """``text`` with every bidi control character shown as ``<U+XXXX>`` instead of acting on the display."""
    return _BIDI.sub(lambda match: f"<U+{ord(match.group()):04X}>", text)


# An absolute path of two or more segments, not part of a URL (``https://host/a/b``) or a relative path.
_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/~-])/(?:[\w.@+-]+/)+[\w.@+-]*")


def public_text(text: str, data_dir: Path | str | None = None, other_paths: bool = True) -> str:
    """``text`` with server paths taken out, for what the bot posts on Gitea: the data dir becomes
    ``$SSD_DATA_DIR``, the Python prefix ``$PREFIX``, the home dir ``~``; with ``other_paths`` any other
    absolute path keeps only its last part (``…/name``). Reports pass ``other_paths=False``: they quote
    repository files and code, where an absolute path is content, not a leak."""
    prefixes = []
    if data_dir:
        prefixes.append((str(Path(data_dir)), "$SSD_DATA_DIR"))
    prefixes += [(sys.prefix, "$PREFIX"), (sys.base_prefix, "$PREFIX"), (os.path.expanduser("~"), "~")]
    for prefix, name in sorted(prefixes, key=lambda item: -len(item[0])):
        if prefix and prefix != "/":  # a whole path prefix only: /srv/data, not /srv/database
            text = re.sub(re.escape(prefix.rstrip("/")) + r"(?![\w.@+-])", lambda _, name=name: name, text)
    if not other_paths:
        return text
    return _ABSOLUTE_PATH.sub(lambda match: "…/" + match.group().rstrip("/").rsplit("/", 1)[-1], text)


def _footer_value(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={_footer_value(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_footer_value(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def footer(provenance: Mapping[str, Any], title: str = "Reproducibility") -> str:
    """A compact, collapsed reproducibility footer.

    ``provenance`` is a flat-ish dict such as ``{"model": ..., "model_sha256": ..., "suite": ...,
    "sampling": {...}, "seeds": [...], "versions": {...}, "commit": ..., "command": "ssd eval ..."}``.
    The ``command`` entry, when present, is shown as a copyable code block; everything else is a table row.
    The full dict is kept as JSON in the section so that it can be read back by a program.
    """
    items = {k: v for k, v in provenance.items() if v is not None and k != "command"}
    parts = []
    if items:
        parts.append(md_table(["", ""], [(f"**{key}**", _footer_value(value)) for key, value in items.items()]))
    command = provenance.get("command")
    if command:
        parts.append("Reproduce with:\n\n" + code_block(str(command), "sh"))
    # \u003c/\u003e escapes keep the JSON valid and stop a value from closing the comment early.
    embedded = json.dumps(provenance, sort_keys=True, default=str).replace("<", "\\u003c").replace(">", "\\u003e")
    parts.append(f"<!-- ssd-provenance {embedded} -->")
    return details(title, "\n\n".join(parts))
