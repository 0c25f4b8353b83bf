"""Markdown helpers for what the bot posts: tables, collapsed sections, the reproducibility footer.

Shared by every command's report (help, status, eval, audit) so that escaping is done in one place:
a ``|`` or a newline inside a table cell would otherwise break the table Gitea renders.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

# Gitea sets no API limit on comment bodies, but a MySQL TEXT column holds 64 KiB and huge comments render
# slowly; the Gitea client cuts at 65,000 bytes, so reports aim a little under that (in UTF-8 bytes).
COMMENT_LIMIT = 60_000


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
