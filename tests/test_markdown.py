"""core.markdown: tables, sections, code and fences as a CommonMark reader sees them, and the comment limit.

markdown-it-py (a CommonMark-compliant parser, installed with the dev tools through rich) is the reader that
the rendered text and the fence scanner are checked against, instead of expected strings alone.
"""

from __future__ import annotations

import re

import pytest

from core.markdown import (
    COMMENT_LIMIT,
    Fence,
    closes_fence,
    code_block,
    details,
    escape_cell,
    fence_opening,
    inline_code,
    md_table,
    open_fence,
    split_for_comments,
    truncate_for_comment,
)

markdown_it = pytest.importorskip("markdown_it")
READER = markdown_it.MarkdownIt("commonmark").enable("table")


def table_cells(markdown: str) -> list[list[str]]:
    """Each table row as the reader sees it: the inline content of its cells."""
    rows: list[list[str]] = []
    for token in READER.parse(markdown):
        if token.type == "tr_open":
            rows.append([])
        elif token.type == "inline" and rows:
            rows[-1].append(token.content)
    return rows


def code_contents(markdown: str) -> list[str]:
    """The content of every fenced or indented code block the reader finds."""
    return [token.content for token in READER.parse(markdown) if token.type in ("fence", "code_block")]


# ---- tables and sections -----------------------------------------------------------------------------------


def test_table_escapes_pipes_and_newlines_so_the_column_count_holds() -> None:
    table = md_table(["key", "value"], [("a|b", "line1\nline2"), ("plain", None), ("x", 0.5)])
    lines = table.split("\n")
    assert lines[0] == "| key | value |"
    assert lines[1] == "| :--- | :--- |"
    assert lines[2] == "| a\\|b | line1<br>line2 |"
    assert lines[3] == "| plain |  |"
    assert table_cells(table) == [["key", "value"], ["a|b", "line1<br>line2"], ["plain", ""], ["x", "0.5"]]


def test_table_alignment_and_short_rows() -> None:
    table = md_table(["a", "b", "c"], [("1",)], align="lrc")
    assert table.split("\n")[1] == "| :--- | ---: | :---: |"
    assert table.split("\n")[2] == "| 1 |  |  |"
    aligns = [token.attrGet("style") for token in READER.parse(table) if token.type == "th_open"]
    assert aligns == ["text-align:left", "text-align:right", "text-align:center"]


def test_table_refuses_rows_wider_than_the_header() -> None:
    with pytest.raises(ValueError, match="3 cells for 2 columns"):
        md_table(["a", "b"], [("1", "2", "3")])


def test_long_path_and_code_with_pipes_stay_in_one_cell() -> None:
    path = "/".join(["very-long-directory-name"] * 30) + "/config|prod.yaml"
    table = md_table(["file", "value"], [(path, inline_code("{{ t | default(0.7) }}"))])
    assert table_cells(table)[1] == [path, "`{{ t | default(0.7) }}`"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [("a\r\nb", "a<br>b"), ("\nx\n", "x"), ("a\rb", "a<br>b"), (3, "3"), (None, ""), ("x|y", "x\\|y")],
)
def test_escape_cell(value, expected) -> None:
    assert escape_cell(value) == expected


def test_details_leaves_blank_lines_so_markdown_renders_inside() -> None:
    text = details("Findings <12>", "| a |\n| - |\n| 1 |")
    assert text.startswith("<details>\n<summary>Findings &lt;12&gt;</summary>\n\n| a |")
    assert text.endswith("\n\n</details>")
    assert table_cells(text) == [["a"], ["1"]]  # the table inside is read as a table, not as HTML
    assert details("s", "b", open=True).startswith("<details open>")
    assert details("two\nlines", "b").split("\n")[1] == "<summary>two lines</summary>"


# ---- code ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["x = 1", "x = '```'\n````y", "~~~\n```", "`", "a\n\n\nb", "```python\n```"])
def test_code_block_fence_outgrows_backticks_in_the_text(text: str) -> None:
    block = code_block(text, "python")
    assert code_contents(block) == [text + "\n"]
    assert [t.info for t in READER.parse(block) if t.type == "fence"] == ["python"]


def test_code_block_fence_length() -> None:
    assert code_block("x") == "```\nx\n```"
    block = code_block("x = '```'\n````y", "python")
    assert block.startswith("`````python\n") and block.endswith("\n`````")


@pytest.mark.parametrize("text", ["plain", "a`b", "a``b", "`x", "x`", "``", " x ", "a ``` b", "x  y"])
def test_inline_code_reads_back_as_the_text(text: str) -> None:
    [paragraph] = [t for t in READER.parse("see " + inline_code(text) + " here") if t.type == "inline"]
    spans = [child.content for child in paragraph.children if child.type == "code_inline"]
    assert spans == [text]


def test_inline_code_shapes() -> None:
    assert inline_code("x") == "`x`" and inline_code("a`b") == "`` a`b ``" and inline_code("") == ""
    assert inline_code("a``b") == "``` a``b ```"


# ---- fences ----------------------------------------------------------------------------------------------------


def test_fence_opening_and_its_info_string() -> None:
    assert fence_opening("```python title=x") == Fence("```", "python title=x")
    assert fence_opening("   ~~~~ ") == Fence("~~~~", "")
    assert fence_opening("~~~ a`b") == Fence("~~~", "a`b")  # tildes allow backticks in the info string
    assert fence_opening("```x`") is None  # an inline code span
    assert fence_opening("    ```") is None and fence_opening("\t```") is None and fence_opening(" \t```") is None
    assert fence_opening("``") is None and fence_opening("text ```") is None
    assert Fence("```", "python {.numberLines}").language == "python"
    assert Fence("```", "{r}").language == "" and Fence("```", "").language == ""


def test_closes_fence() -> None:
    assert closes_fence("```", "```") and closes_fence("`````  \t", "```") and closes_fence("   ```", "```")
    assert not closes_fence("``", "```") and not closes_fence("````", "`````")
    assert not closes_fence("~~~", "```") and not closes_fence("``` x", "```")
    assert not closes_fence("    ```", "```") and not closes_fence("\t```", "```")


# Documents without container blocks (lists, quotes, HTML): the scanner reads fences only; the command parser
# handles quotes and HTML comments itself.
FENCE_DOCUMENTS = [
    "```\ncode\n```\nafter",
    "````\n```\nstill code\n````\nafter",
    "~~~\n```\n~~~\nafter",
    "~~~~\n~~~\n~~~~~\nafter",
    "```python title=x\nx = 1\n```",
    "   ```\nx\n  ```\ny",
    "    ```\nindented code\n\ntext",
    "\t```\nx",
    "```\n``` x\n```",
    "```x`\ny",
    "~~~ x`\ny\n~~~",
    "text\n```\ninterrupts the paragraph\n```",
    "``\nnot a fence",
    "```\n    ```\nstill open",
    "```\r\nx\r\n```\r\nafter",
    "```\n\n\n```\n\n```\nx",
]


@pytest.mark.parametrize("document", FENCE_DOCUMENTS)
def test_open_fence_agrees_with_commonmark_after_every_line(document: str) -> None:
    """After each prefix of the document, a marker line is code for the reader iff open_fence says a fence is
    still open there."""
    lines = re.split(r"\r\n|\n", document)
    newline = "\r\n" if "\r\n" in document else "\n"
    for count in range(len(lines) + 1):
        prefix = newline.join(lines[:count])
        probe = (prefix + newline if prefix else "") + "PROBE"
        in_code = any(content.rstrip("\n").endswith("PROBE") for content in code_contents(probe))
        assert (open_fence(prefix) is not None) == in_code, (prefix, open_fence(prefix))


def test_open_fence_returns_the_marker_to_close_with() -> None:
    assert open_fence("````\n```") == "````"
    assert open_fence("~~~ x`\ny") == "~~~"
    assert open_fence("```\ny\n```") is None


# ---- size ------------------------------------------------------------------------------------------------------


def _lines(count: int, width: int = 99) -> str:
    return "".join(f"{n:06d} " + "x" * (width - 8) + "\n" for n in range(count))


def test_comment_limit_is_under_mysql_text() -> None:
    assert COMMENT_LIMIT < 65_535


def test_truncate_keeps_short_text_and_cuts_long_text_with_a_note() -> None:
    assert truncate_for_comment("short", limit=100) == "short"
    long_text = "\n".join(f"line {i}" for i in range(1000))
    cut = truncate_for_comment(long_text, limit=500)
    assert len(cut.encode()) <= 500
    assert re.search(r"line \d+\n\n_… truncated by ssd-bot: [\d,]+ more characters", cut)  # at a line boundary
    kept = cut.count("\nline ") + 1
    omitted = int(re.search(r"([\d,]+) more characters", cut).group(1).replace(",", ""))
    assert omitted == len(long_text) - len("\n".join(f"line {i}" for i in range(kept)))


def test_truncate_closes_an_open_fence_and_details() -> None:
    text = "<details>\n<summary>x</summary>\n\n```\n" + "\n".join("y" * 50 for _ in range(100))
    cut = truncate_for_comment(text, limit=1000)
    assert len(cut.encode()) <= 1000
    assert cut.split("\n").count("```") == 2  # opened and closed again
    assert cut.index("```\n</details>") < cut.index("truncated by ssd-bot")
    assert not any("truncated" in content for content in code_contents(cut))  # the note is not code


def test_truncate_counts_utf8_bytes() -> None:
    cut = truncate_for_comment("é" * 2000, limit=1000)  # 4000 bytes
    assert len(cut.encode()) <= 1000 and "é" * 100 in cut


def test_truncate_keeps_a_long_line_rather_than_emptying_the_comment() -> None:
    cut = truncate_for_comment("title\n" + "x" * 5000, limit=1000)
    assert cut.startswith("title\n" + "x" * 500)


def test_truncate_makes_room_for_a_long_fence_marker() -> None:
    marker = "`" * 300
    cut = truncate_for_comment(marker + "\n" + _lines(100), limit=1000)
    assert len(cut.encode()) <= 1000
    assert cut.split("\n").count(marker) == 2
    assert not any("truncated" in content for content in code_contents(cut))


def test_split_keeps_code_fences_balanced() -> None:
    body = "Report\n\n```text\n" + _lines(1000) + "```\n\nend\n"
    parts = split_for_comments(body)
    assert len(parts) == 2
    for part in parts:
        assert open_fence(part) is None, part[-200:]
        assert not any("continued" in content for content in code_contents(part))
    assert parts[1].rstrip().endswith("end")


def test_split_multibyte_stays_under_the_byte_limit() -> None:
    body = ("é" * 50 + "\n") * 3000  # 2 bytes a character
    parts = split_for_comments(body)
    assert all(len(p.encode()) <= COMMENT_LIMIT for p in parts)
    assert "".join(parts).count("é") == body.count("é")


def test_split_caps_the_number_of_comments() -> None:
    parts = split_for_comments(_lines(1600), limit=2000, max_parts=4)
    assert len(parts) == 4 and "truncated by ssd-bot" in parts[-1]
    assert all(len(p.encode()) <= 2000 for p in parts)
    assert split_for_comments("short") == ["short"]
