"""Markdown helpers for what the bot posts: tables, collapsed sections, the reproducibility footer.

Shared by every command's report (help, status, eval, audit) so that escaping is done in one place:
a ``|`` or a newline inside a table cell would otherwise break the table Gitea renders.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

# Gitea sets no API limit on comment bodies, but a MySQL TEXT column holds 64 KiB and huge comments render
# slowly; the Gitea client cuts at 65,000 bytes, so reports aim a little under that (in UTF-8 bytes).
COMMENT_LIMIT = 60_000


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


def escape_cell(value: Any) -> str:
    """One table cell: ``|`` escaped, newlines turned into ``<br>``, None shown as an empty cell."""
    if value is None:
        return ""
    text = str(value).replace("|", "\\|")
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip("\n").replace("\n", "<br>")
    return text


def md_table(headers: Sequence[Any], rows: Iterable[Sequence[Any]], align: Sequence[str] | None = None) -> str:
    """A GitHub/Gitea-flavoured Markdown table. ``align`` holds ``l``, ``r`` or ``c`` per column."""
    header_cells = [escape_cell(h) for h in headers]
    markers = {"l": ":---", "r": "---:", "c": ":---:"}
    rule = [markers.get((align[i] if align and i < len(align) else "l"), "---") for i in range(len(headers))]
    lines = ["| " + " | ".join(header_cells) + " |", "| " + " | ".join(rule) + " |"]
    for row in rows:
        cells = [escape_cell(cell) for cell in row]
        if len(cells) < len(headers):
            cells += [""] * (len(headers) - len(cells))
        elif len(cells) > len(headers):
            raise ValueError(f"row has {len(cells)} cells for {len(headers)} columns: {row!r}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def details(summary: str, body: str, open: bool = False) -> str:
    """A collapsed section. Blank lines around the body make Gitea render Markdown inside it."""
    summary_text = summary.replace("<", "&lt;").replace(">", "&gt;").replace("\n", " ")
    tag = "<details open>" if open else "<details>"
    return f"{tag}\n<summary>{summary_text}</summary>\n\n{body.strip()}\n\n</details>"


def code_block(text: str, language: str = "") -> str:
    """A fenced block that cannot be closed early by backticks inside ``text``."""
    longest, run = 0, 0
    for char in text:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n{text.rstrip()}\n{fence}"


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


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def truncate_for_comment(text: str, limit: int = COMMENT_LIMIT, note: str | None = None) -> str:
    """Cut ``text`` to at most ``limit`` UTF-8 bytes with a visible note, keeping the Markdown valid.

    Cuts at a line boundary and closes a fenced block or ``<details>`` left open by the cut, so that the
    rest of the issue page does not render as code. (The Gitea client truncates too, as a last resort,
    but it cannot know about ``<details>``.)
    """
    if _utf8_len(text) <= limit:
        return text
    note = note or f"_… report truncated: {len(text):,} characters did not fit in one comment._"
    budget = max(0, limit - _utf8_len(note) - 64)  # room for the closers and the note
    cut = text.encode("utf-8")[:budget].decode("utf-8", errors="ignore")
    if "\n" in cut:
        cut = cut[: cut.rfind("\n")]
    closers = []
    fence = _open_fence(cut)
    if fence:
        closers.append(fence)
    open_details = cut.count("<details") - cut.count("</details>")
    closers.extend(["</details>"] * max(0, open_details))
    return cut.rstrip() + "\n" + ("\n".join(closers) + "\n" if closers else "") + "\n" + note


def _open_fence(text: str) -> str | None:
    """The fence left open at the end of ``text``, if any."""
    fence: str | None = None
    for line in text.split("\n"):
        stripped = line.lstrip(" ")
        if len(line) - len(stripped) > 3:
            continue
        run_char = stripped[:1]
        if run_char not in ("`", "~"):
            continue
        run = len(stripped) - len(stripped.lstrip(run_char))
        if run < 3:
            continue
        if fence is None:
            fence = stripped[:run]
        elif run_char == fence[0] and run >= len(fence) and not stripped[run:].strip():
            fence = None
    return fence
