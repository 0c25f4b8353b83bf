"""Rendering of the shared Markdown helpers."""

from __future__ import annotations

import json
import re

import pytest

from bot.reports import code_block, details, escape_cell, footer, md_table, truncate_for_comment


def cells(line: str) -> list[str]:
    """Split a rendered table row the way GFM does: on pipes not preceded by a backslash."""
    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]


def test_table_escapes_pipes_and_newlines_so_the_column_count_holds() -> None:
    table = md_table(["key", "value"], [("a|b", "line1\nline2"), ("plain", None), ("x", 0.5)])
    lines = table.split("\n")
    assert lines[0] == "| key | value |"
    assert lines[1] == "| :--- | :--- |"
    assert lines[2] == "| a\\|b | line1<br>line2 |"
    assert lines[3] == "| plain |  |"
    assert lines[4] == "| x | 0.5 |"
    assert all(len(cells(line)) == 2 for line in lines)


def test_table_alignment_and_short_rows() -> None:
    table = md_table(["a", "b", "c"], [("1",)], align="lrc")
    assert table.split("\n")[1] == "| :--- | ---: | :---: |"
    assert table.split("\n")[2] == "| 1 |  |  |"


def test_table_refuses_rows_wider_than_the_header() -> None:
    with pytest.raises(ValueError, match="3 cells for 2 columns"):
        md_table(["a", "b"], [("1", "2", "3")])


def test_long_path_stays_in_one_cell() -> None:
    path = "/".join(["very-long-directory-name"] * 30) + "/config|prod.yaml"
    row = md_table(["file"], [(path,)]).split("\n")[2]
    assert cells(row) == [path.replace("|", "\\|")]


@pytest.mark.parametrize(("value", "expected"), [("a\r\nb", "a<br>b"), ("\nx\n", "x"), (3, "3"), (None, "")])
def test_escape_cell(value, expected) -> None:
    assert escape_cell(value) == expected


def test_details_leaves_blank_lines_so_markdown_renders_inside() -> None:
    text = details("Findings <12>", "| a |\n| - |")
    assert text.startswith("<details>\n<summary>Findings &lt;12&gt;</summary>\n\n| a |")
    assert text.endswith("\n\n</details>")
    assert details("s", "b", open=True).startswith("<details open>")


def test_code_block_fence_outgrows_backticks_in_the_text() -> None:
    block = code_block("x = '```'\n````y", "python")
    assert block.startswith("`````python\n")
    assert block.endswith("\n`````")


def test_footer_is_collapsed_readable_and_machine_readable() -> None:
    provenance = {"model": "smollm2", "model_sha256": "ab12", "sampling": {"temperature": 0.2, "n": 5},
                  "seeds": [0, 1], "versions": {"rq": "2.12.0"}, "skipped": None,
                  "command": "ssd eval --suite basic --temperature 0.2"}
    text = footer(provenance)
    assert text.startswith("<details>\n<summary>Reproducibility</summary>")
    assert "| **model** | smollm2 |" in text
    assert "| **sampling** | temperature=0.2, n=5 |" in text
    assert "| **seeds** | 0, 1 |" in text
    assert "skipped" not in text.split("<!--")[0]  # None values are left out of the table
    assert "```sh\nssd eval --suite basic --temperature 0.2\n```" in text
    embedded = re.search(r"<!-- ssd-provenance (.*) -->", text).group(1)
    assert json.loads(embedded)["sampling"] == {"temperature": 0.2, "n": 5}


def test_footer_json_cannot_close_the_html_comment_early() -> None:
    text = footer({"commit": "x --> y"})
    comment = text[text.index("<!-- ssd-provenance"):]
    assert comment.count("-->") == 1 and comment.endswith("-->\n\n</details>")
    assert json.loads(re.search(r"<!-- ssd-provenance (.*) -->", text).group(1)) == {"commit": "x --> y"}


def test_truncate_keeps_short_text_and_cuts_long_text_with_a_note() -> None:
    assert truncate_for_comment("short", limit=100) == "short"
    long_text = "\n".join(f"line {i}" for i in range(1000))
    cut = truncate_for_comment(long_text, limit=500)
    assert len(cut.encode()) <= 500
    assert "report truncated" in cut
    assert re.search(r"line \d+\n\n_…", cut)  # cut at a line boundary


def test_truncate_closes_an_open_fence_and_details() -> None:
    text = "<details>\n<summary>x</summary>\n\n```\n" + "\n".join("y" * 50 for _ in range(100))
    cut = truncate_for_comment(text, limit=1000)
    assert len(cut.encode()) <= 1000
    body = cut.split("\n")
    assert body.count("```") == 2  # opened and closed again
    assert cut.index("```\n</details>") < cut.index("report truncated")


def test_truncate_counts_utf8_bytes() -> None:
    text = "é" * 2000  # 4000 bytes
    cut = truncate_for_comment(text, limit=1000)
    assert len(cut.encode()) <= 1000
