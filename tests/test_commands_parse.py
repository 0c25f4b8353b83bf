"""The comment grammar: which lines are commands, and how they split."""

from __future__ import annotations

import pytest

from bot.commands.parse import parse_comment, parse_line

# (comment body, [(line number, name)] expected to trigger)
TRIGGER_CASES = [
    ("plain", "/ssd help", [(1, "help")]),
    ("trailing spaces", "/ssd help   ", [(1, "help")]),
    ("three spaces of indent", "   /ssd help", [(1, "help")]),
    ("four spaces is code", "    /ssd help", []),
    ("a tab is code", "\t/ssd help", []),
    ("two spaces and a tab is code", "  \t/ssd help", []),
    ("name is lowercased", "/ssd HELP", [(1, "help")]),
    ("prefix must be its own word", "/ssdhelp", []),
    ("prefix mid-line", "please run /ssd help", []),
    ("crlf line endings", "hi\r\n/ssd help\r\n/ssd status\r\n", [(2, "help"), (3, "status")]),
    ("several commands", "/ssd help\ntext\n/ssd status", [(1, "help"), (3, "status")]),
    ("backtick fence", "```\n/ssd help\n```\n/ssd status", [(4, "status")]),
    ("tilde fence", "~~~\n/ssd help\n~~~", []),
    ("fence with info string", "```python title=x\n/ssd help\n```", []),
    ("long fence needs a long closer", "````\n```\n/ssd help\n````\n/ssd status", [(5, "status")]),
    ("tilde fence not closed by backticks", "~~~\n```\n/ssd help\n~~~\n/ssd status", [(5, "status")]),
    ("unclosed fence runs to the end", "```\n/ssd help\n\n/ssd status", []),
    ("indented fence", "   ```\n/ssd help\n   ```", []),
    ("closer with text is not a closer", "```\n``` x\n/ssd help\n```", []),
    ("backtick info with backtick is inline code", "```x`\n/ssd help", [(2, "help")]),
    ("fence interrupts a paragraph", "text\n```\n/ssd help\n```", []),
    ("indented code block", "text\n\n    /ssd help\n\n/ssd status", [(5, "status")]),
    ("inline code", "`/ssd help`", []),
    ("inline code after text", "run `/ssd help` please", []),
    ("inline code across lines", "see `this\n/ssd help` ok", []),
    ("double-backtick span across lines", "``a ` b\n/ssd help``", []),
    ("unmatched backtick is literal", "a ` b\n/ssd help", [(2, "help")]),
    ("escaped backtick opens nothing", "a \\` b\n/ssd help\nc ` d", [(2, "help")]),
    ("paragraph break ends a code span", "a `b\n\n/ssd help\nc` d", [(3, "help")]),
    ("block quote", "> /ssd help", []),
    ("nested block quote", "> > /ssd help", []),
    ("quote without space", ">/ssd help", []),
    ("indented quote", "  > /ssd help", []),
    ("lazy continuation of a quote", "> quoted\n/ssd help", []),
    ("quote ended by a blank line", "> quoted\n\n/ssd help", [(3, "help")]),
    ("quote with a blank quoted line", ">\n/ssd help", [(2, "help")]),
    ("html comment", "<!-- /ssd help -->", []),
    ("multi-line html comment", "<!--\n/ssd help\n-->\n/ssd status", [(4, "status")]),
    ("html comment with blank lines", "<!--\n\n/ssd help\n\n-->", []),
    ("unclosed html comment block", "<!--\n/ssd help", []),
    ("inline html comment across lines", "text <!-- x\n/ssd help\n--> y\n/ssd status", [(4, "status")]),
    ("comment closing then command", "<!-- a -->\n/ssd help", [(2, "help")]),
    ("fence inside html comment", "<!--\n```\n-->\n/ssd help", [(4, "help")]),
    ("comment inside fence", "```\n<!--\n```\n/ssd help", [(4, "help")]),
    ("list item is not a command line", "- /ssd help", []),
    ("heading is not a command line", "# /ssd help", []),
    ("empty body", "", []),
]


@pytest.mark.parametrize(("body", "expected"), [c[1:] for c in TRIGGER_CASES], ids=[c[0] for c in TRIGGER_CASES])
def test_which_lines_trigger(body: str, expected: list[tuple[int, str]]) -> None:
    assert [(c.line, c.name) for c in parse_comment(body)] == expected


# (line, name, positional, options, error substring or None)
SPLIT_CASES = [
    ("/ssd cancel cmd-1-2", "cancel", ["cmd-1-2"], {}, None),
    ("/ssd eval t=0.2,0.7 n=5", "eval", [], {"t": "0.2,0.7", "n": "5"}, None),
    ("/ssd eval model='my model' suite=\"a b\"", "eval", [], {"model": "my model", "suite": "a b"}, None),
    ("/ssd eval x=a=b", "eval", [], {"x": "a=b"}, None),
    ("/ssd eval x=", "eval", [], {"x": ""}, None),
    ("/ssd eval Model=a", "eval", [], {"model": "a"}, None),
    ("/ssd eval --flag 1=2", "eval", ["--flag", "1=2"], {}, None),
    ("/ssd eval pos1 k=v pos2", "eval", ["pos1", "pos2"], {"k": "v"}, None),
    ("/ssd eval 'unterminated", "eval", [], {}, "No closing quotation"),
    ("/ssd eval trailing\\", "eval", [], {}, "No escaped character"),
    ("/ssd", "", [], {}, "no command name"),
    ("/ssd 'a b'", "a b", [], {}, "not a command name"),
    ("/ssd eval n=1 n=2", "eval", [], {"n": "1"}, "given twice"),
    ("/ssd eval # not a comment", "eval", ["#", "not", "a", "comment"], {}, None),
]


@pytest.mark.parametrize(
    ("text", "name", "positional", "options", "error"), SPLIT_CASES, ids=[c[0] for c in SPLIT_CASES]
)
def test_splitting(text: str, name: str, positional: list[str], options: dict, error: str | None) -> None:
    parsed = parse_line(text, line=7)
    assert parsed.name == name
    assert parsed.line == 7
    assert parsed.text == text
    if error is None:
        assert parsed.error is None
        assert parsed.positional == positional
        assert parsed.options == options
    else:
        assert error in (parsed.error or "")


def test_a_quoting_error_is_reported_not_raised_and_other_lines_still_parse() -> None:
    commands = parse_comment("/ssd eval model='oops\n/ssd help")
    assert [c.name for c in commands] == ["eval", "help"]
    assert "No closing quotation" in commands[0].error
    assert commands[1].error is None
