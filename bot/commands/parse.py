"""Comment text -> slash commands.

A command is a line that starts (after at most three spaces, as Markdown allows) with ``/ssd <name>``,
followed by ``key=value`` options and positional arguments with shell-like quoting. What Markdown would
render as code or as a quotation never triggers: fenced code blocks (``` or ~~~, three or more, with or
without an info string), indented code blocks, inline code spans (which may cross lines), block quotes
(including their lazy continuation lines) and HTML comments (which may span lines).

This is a small CommonMark-shaped scanner, not a full Markdown parser: it only has to decide, for each
line, whether the line's first character is ordinary paragraph text. Fences are read by ``core.markdown``
(the same rules as the audit's README reader and comment truncation).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from core.markdown import closes_fence, fence_opening, indentation

PREFIX = "/ssd"

_OPTION = re.compile(r"^(?P<key>[A-Za-z_][A-Za-z0-9_-]*)=(?P<value>.*)$", re.DOTALL)
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


@dataclass
class ParsedCommand:
    """One ``/ssd`` line. ``error`` is set when the line could not be split (bad quoting, no name)."""

    name: str
    positional: list[str] = field(default_factory=list)
    options: dict[str, str] = field(default_factory=dict)
    line: int = 0  # 1-based line number in the comment; with the comment id it names the command
    text: str = ""  # the command line as written, for replies
    error: str | None = None


def _quote_content(line: str) -> str | None:
    """The text inside all leading ``>`` markers, or None when the line is not a block quote."""
    width, rest = indentation(line)
    if width > 3 or not rest.startswith(">"):
        return None
    while True:
        width, rest = indentation(rest)
        if width > 3 or not rest.startswith(">"):
            return rest
        rest = rest[1:]


def _classify(lines: list[str]) -> list[str]:
    """Label each line: ``text`` (paragraph text), ``code``, ``quote``, ``html`` or ``blank``."""
    kinds: list[str] = []
    fence: str | None = None
    in_html_comment = False
    lazy_quote = False  # a non-blank quoted paragraph is open: plain lines continue it lazily
    after_text = False  # an indented line right after paragraph text continues the paragraph
    for line in lines:
        if fence is not None:
            kinds.append("code")
            if closes_fence(line, fence):
                fence = None
            continue
        if in_html_comment:
            kinds.append("html")
            if "-->" in line:
                in_html_comment = False
            continue
        if not line.strip():
            kinds.append("blank")
            lazy_quote = after_text = False
            continue
        opening = fence_opening(line)
        if opening:
            kinds.append("code")
            fence, lazy_quote, after_text = opening.marker, False, False
            continue
        quoted = _quote_content(line)
        if quoted is not None:
            kinds.append("quote")
            # A quoted fence or blank line ends the quote's paragraph; quoted text keeps it open.
            lazy_quote = bool(quoted.strip()) and fence_opening(quoted) is None
            after_text = False
            continue
        if lazy_quote:
            kinds.append("quote")
            continue
        width, rest = indentation(line)
        if width > 3 and not after_text:
            kinds.append("code")
            continue
        if width <= 3 and rest.startswith("<!--"):
            # An HTML block (CommonMark type 2): runs to the line holding the closing -->.
            kinds.append("html")
            in_html_comment = "-->" not in rest[4:]
            after_text = False
            continue
        kinds.append("text")
        after_text = True
    return kinds


def _hidden_spans(text: str) -> list[tuple[int, int]]:
    """[start, end) ranges of inline code spans and inline HTML comments in one paragraph."""
    spans: list[tuple[int, int]] = []
    position = 0
    while position < len(text):
        char = text[position]
        if char == "\\":
            position += 2  # a backslash escape: the next character is literal
            continue
        if char == "`":
            run_end = position
            while run_end < len(text) and text[run_end] == "`":
                run_end += 1
            run = run_end - position
            closer = re.compile(rf"(?<!`)`{{{run}}}(?!`)").search(text, run_end)
            if closer:
                spans.append((position, closer.end()))
                position = closer.end()
            else:
                position = run_end  # no matching closer: the backticks are literal
            continue
        if text.startswith("<!--", position):
            end = text.find("-->", position + 4)
            if end >= 0:
                spans.append((position, end + 3))
                position = end + 3
                continue
        position += 1
    return spans


def _command_lines(body: str) -> list[tuple[int, str]]:
    """(1-based line number, line) for each line that is ordinary paragraph text starting with /ssd."""
    lines = body.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    kinds = _classify(lines)
    found: list[tuple[int, str]] = []
    index = 0
    while index < len(lines):
        if kinds[index] != "text":
            index += 1
            continue
        start = index
        while index < len(lines) and kinds[index] == "text":
            index += 1
        paragraph = lines[start:index]
        offsets, total = [], 0
        for line in paragraph:
            offsets.append(total)
            total += len(line) + 1
        spans = _hidden_spans("\n".join(paragraph))
        for number, (line, offset) in enumerate(zip(paragraph, offsets, strict=True), start=start + 1):
            width, rest = indentation(line)
            if width > 3 or not _starts_command(rest):
                continue
            first = offset + len(line) - len(rest)
            if any(begin <= first < end for begin, end in spans):
                continue  # the line starts inside a code span or comment opened on an earlier line
            found.append((number, rest.rstrip()))
    return found


def _starts_command(text: str) -> bool:
    return text.startswith(PREFIX) and (len(text) == len(PREFIX) or text[len(PREFIX)] in " \t")


def parse_line(text: str, line: int = 0) -> ParsedCommand:
    """Split one ``/ssd name args…`` line. Errors are returned in ``error``, never raised."""
    rest = text[len(PREFIX) :].strip()
    try:
        tokens = shlex.split(rest, comments=False, posix=True)
    except ValueError as exc:  # "No closing quotation", "No escaped character"
        name = rest.split(maxsplit=1)[0].lower() if rest else ""
        return ParsedCommand(name=name, line=line, text=text, error=f"cannot split the arguments: {exc}")
    if not tokens:
        return ParsedCommand(name="", line=line, text=text, error="no command name after /ssd")
    name, *arguments = tokens
    if not _NAME.match(name):
        return ParsedCommand(name=name, line=line, text=text, error=f"{name!r} is not a command name")
    parsed = ParsedCommand(name=name.lower(), line=line, text=text)
    for token in arguments:
        match = _OPTION.match(token)
        if not match:
            parsed.positional.append(token)
            continue
        key = match["key"].lower()
        if key in parsed.options:
            parsed.error = f"option {key!r} given twice"
            break
        parsed.options[key] = match["value"]
    return parsed


def parse_comment(body: str) -> list[ParsedCommand]:
    """Every command in a comment, in order. Pure: no I/O, never raises on user input."""
    return [parse_line(text, number) for number, text in _command_lines(body or "")]


def parse_comment_capped(body: str, limit: int) -> tuple[list[ParsedCommand], int]:
    """The first ``limit`` commands of a comment and how many command lines it holds in all (the rest are
    only counted, not split, so a comment of thousands of lines costs one scan)."""
    lines = _command_lines(body or "")
    return [parse_line(text, number) for number, text in lines[:limit]], len(lines)
