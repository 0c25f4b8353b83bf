"""Gitea comment Markdown, in one place: the size limit, tables, collapsed sections, code, fences.

Everything the bot posts and the audit report renders goes through here, so escaping is decided once: a ``|``
or a newline inside a table cell would break the table Gitea renders, a run of backticks inside code would
close its fence early. Fences are read as CommonMark reads them (0.31, "Fenced code blocks"), by the command
parser (a ``/ssd`` line inside a block never triggers), the audit's README reader and the truncation below.
The tolerant extraction of model output (``pipeline.prompts.fenced_blocks``) keeps its own, looser rules.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

# Gitea 1.25 stores comment bodies as LONGTEXT and its API only requires a body to be present, so Gitea sets
# no hard cap itself; what refuses a long body sits around it (the reverse proxy's request-body limit, the
# database's packet size) and every page view renders the whole Markdown. A body is accepted or refused whole,
# so every comment stays inside all of these: 65,000 UTF-8 bytes, a 535-byte margin under MySQL's TEXT column
# (65,535 bytes, the smallest common limit), and already more than anyone reads in one comment. Reports are
# truncated to it (closing their <details>); the Gitea client splits or truncates whatever still exceeds it.
COMMENT_LIMIT = 65_000
MAX_PARTS = 10  # continuation comments of one body; nobody reads comment #11 of a report
TRUNCATED_NOTE = "_… truncated by ssd-bot: {omitted:,} more characters did not fit in one comment._"

_LINE_END = re.compile(r"\r\n|\r|\n")  # CommonMark's line endings (str.splitlines knows more)


def utf8_len(text: str) -> int:
    """What a comment limit counts: UTF-8 bytes."""
    return len(text.encode("utf-8"))


def _cut(text: str, limit: int) -> str:
    """The longest prefix of ``text`` that is at most ``limit`` UTF-8 bytes."""
    return text.encode("utf-8")[: max(0, limit)].decode("utf-8", errors="ignore")


# ---- tables and sections -----------------------------------------------------------------------------------


def escape_cell(value: Any) -> str:
    """One table cell: ``|`` escaped, newlines turned into ``<br>``, None shown as an empty cell."""
    if value is None:
        return ""
    text = str(value).replace("|", "\\|")
    return text.replace("\r\n", "\n").replace("\r", "\n").strip("\n").replace("\n", "<br>")


def md_table(headers: Sequence[Any], rows: Iterable[Sequence[Any]], align: Sequence[str] | None = None) -> str:
    """A GitHub/Gitea-flavoured Markdown table. ``align`` holds ``l``, ``r`` or ``c`` per column (default l);
    a short row is padded with empty cells, a row wider than the header is refused (it would be cut)."""
    markers = {"l": ":---", "r": "---:", "c": ":---:"}
    rule = [markers.get((align[i] if align and i < len(align) else "l"), "---") for i in range(len(headers))]
    lines = ["| " + " | ".join(escape_cell(h) for h in headers) + " |", "| " + " | ".join(rule) + " |"]
    for row in rows:
        cells = [escape_cell(cell) for cell in row]
        if len(cells) > len(headers):
            raise ValueError(f"row has {len(cells)} cells for {len(headers)} columns: {row!r}")
        cells += [""] * (len(headers) - len(cells))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def details(summary: str, body: str, open: bool = False) -> str:
    """A collapsed section. Blank lines around the body make Gitea render Markdown inside it."""
    summary_text = summary.replace("<", "&lt;").replace(">", "&gt;").replace("\n", " ")
    tag = "<details open>" if open else "<details>"
    return f"{tag}\n<summary>{summary_text}</summary>\n\n{body.strip()}\n\n</details>"


# ---- code --------------------------------------------------------------------------------------------------


def _longest_backtick_run(text: str) -> int:
    return max((len(run) for run in re.findall(r"`+", text)), default=0)


def code_block(text: str, language: str = "") -> str:
    """A fenced block that cannot be closed early by backticks inside ``text``."""
    fence = "`" * max(3, _longest_backtick_run(text) + 1)
    return f"{fence}{language}\n{text.rstrip()}\n{fence}"


def inline_code(text: str) -> str:
    """An inline code span that survives backticks in ``text``: its delimiter is longer than any backtick run
    inside, and a space pads the content where CommonMark strips one (a backtick or a space at both ends)."""
    if not text:
        return ""
    fence = "`" * (_longest_backtick_run(text) + 1)
    pad = " " if "`" in text or (text[0] == text[-1] == " " and text.strip()) else ""
    return f"{fence}{pad}{text}{pad}{fence}"


# ---- fences ------------------------------------------------------------------------------------------------

_FENCE_OPEN = re.compile(r"^(?P<marker>`{3,}|~{3,})(?P<info>.*)$")
_LANGUAGE = re.compile(r"[^\s`{]*")  # an attribute block ({.numberLines}, ```{r}) is not a language


@dataclass(frozen=True)
class Fence:
    """The opening line of a fenced code block: its marker (``` or ~~~, three or more) and info string."""

    marker: str
    info: str

    @property
    def language(self) -> str:
        """The info string's first word, without an attribute block: ``python`` in ``python {.x}``."""
        match = _LANGUAGE.match(self.info)
        return match.group() if match else ""


def indentation(line: str) -> tuple[int, str]:
    """Columns of leading whitespace (a tab goes to the next multiple of 4) and the rest of the line."""
    width = 0
    for position, char in enumerate(line):
        if char == " ":
            width += 1
        elif char == "\t":
            width += 4 - width % 4
        else:
            return width, line[position:]
    return width, ""


def fence_opening(line: str) -> Fence | None:
    """The fence ``line`` opens, or None: at most three columns of indentation, then ``` or ~~~ (three or
    more) and an info string, which after backticks may hold no backtick (```foo``` is an inline code
    span)."""
    width, rest = indentation(line)
    if width > 3:
        return None
    match = _FENCE_OPEN.match(rest)
    if not match:
        return None
    marker, info = match["marker"], match["info"]
    if marker[0] == "`" and "`" in info:
        return None
    return Fence(marker, info.strip())


def closes_fence(line: str, marker: str) -> bool:
    """Whether ``line`` closes a block opened with ``marker``: the same character, at least as many, nothing
    after them but spaces, at most three columns of indentation."""
    width, rest = indentation(line)
    if width > 3:
        return False
    stripped = rest.rstrip(" \t")
    run = len(stripped) - len(stripped.lstrip(marker[0]))
    return run >= len(marker) and run == len(stripped)


def open_fence(text: str) -> str | None:
    """The marker of a fenced block still open at the end of ``text``, if any."""
    marker: str | None = None
    for line in _LINE_END.split(text):
        if marker is None:
            opening = fence_opening(line)
            marker = opening.marker if opening else None
        elif closes_fence(line, marker):
            marker = None
    return marker


# ---- size --------------------------------------------------------------------------------------------------


def truncate_for_comment(text: str, limit: int = COMMENT_LIMIT, note: str = TRUNCATED_NOTE) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes, ending with ``note`` (``{omitted}``: the characters
    left out).

    Cuts at a line boundary (in the second half of what fits, so one huge line does not empty the comment) and
    closes a fenced block or ``<details>`` left open by the cut, so that the rest of the page does not render
    as code.
    """
    if utf8_len(text) <= limit:
        return text
    budget = limit - utf8_len(note.format(omitted=len(text)))
    while budget > 0:
        head = _cut(text, budget)
        if "\n" in head[len(head) // 2 :]:
            head = head[: head.rindex("\n")]
        marker = open_fence(head)
        closers = [marker] if marker else []
        closers += ["</details>"] * max(0, head.count("<details") - head.count("</details>"))
        body = "\n".join([head.rstrip(), *closers])
        result = f"{body}\n\n{note.format(omitted=len(text) - len(head))}"
        if utf8_len(result) <= limit:
            return result
        budget -= utf8_len(result) - limit  # the closers took more than was left: cut further
    return _cut(note.format(omitted=len(text)), limit)


def split_for_comments(body: str, limit: int = COMMENT_LIMIT, max_parts: int = MAX_PARTS) -> list[str]:
    """``body`` in comment-sized parts, cut at line boundaries, each marked as a continuation.

    A code block cut in two is closed at the end of one part and reopened at the start of the next, so both
    render. Past ``max_parts`` the last part is truncated with a note.
    """
    if utf8_len(body) <= limit:
        return [body]
    footer_room = 120  # the "continued" notes added below
    parts: list[str] = []
    rest = body
    while rest and len(parts) < max_parts:
        if utf8_len(rest) + footer_room <= limit or len(parts) == max_parts - 1:
            parts.append(rest)
            break
        head = _cut(rest, limit - footer_room)
        if "\n" in head[len(head) // 2 :]:
            head = head[: head.rindex("\n") + 1]
        rest = rest[len(head) :]
        marker = open_fence(head)
        if marker:
            head = head.rstrip("\n") + "\n" + marker + "\n"
            rest = marker + "\n" + rest
        parts.append(head)
    total = len(parts)
    marked = []
    for number, part in enumerate(parts, start=1):
        if number > 1:
            part = f"*(continued, part {number}/{total})*\n\n" + part
        if number < total:
            part = part.rstrip("\n") + f"\n\n*(continued in the next comment, part {number + 1}/{total})*"
        marked.append(truncate_for_comment(part, limit))
    return marked
