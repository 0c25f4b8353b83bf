"""Rendering the audit report: Markdown tables survive ``|`` in values, long paths stay short, long tables fold."""

from __future__ import annotations

import re
from pathlib import Path

from bot.reports import details, md_table
from pipeline.audit import audit_path
from pipeline.audit.report import FINDING_HEADERS, code, render_markdown, render_text, short_path

LONG_DIR = "services/inference/" + "/".join(f"level{i}-with-a-long-directory-name" for i in range(4))


def _repo(tmp_path: Path, extra_files: int = 0) -> Path:
    target = tmp_path / "repo" / LONG_DIR
    target.mkdir(parents=True)
    (target / "agent.yaml").write_text('serve:\n  temperature: "{{ t | default(0.7) }}"\n  top_p: 0.9\n')
    for i in range(extra_files):
        (tmp_path / "repo" / f"eval{i}.env").write_text(f"EVAL_TEMPERATURE=0.{i + 1}\n")
    return tmp_path / "repo"


def _cells(line: str) -> list[str]:
    """Split a table row on unescaped pipes (what a Markdown renderer does)."""
    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]


def test_pipes_are_escaped_and_rows_keep_their_columns(tmp_path: Path) -> None:
    result = audit_path(str(_repo(tmp_path)))
    link = lambda path, line: f"https://git.example/acme/w/src/branch/main/{path}#L{line}"  # noqa: E731
    markdown = render_markdown(result, link=link, table=md_table, details=details)
    table = [line for line in markdown.splitlines() if line.startswith("| ")]
    assert _cells(table[0]) == FINDING_HEADERS
    rows = [_cells(line) for line in table[1:] if not line.startswith("| :")]
    finding_rows = [r for r in rows if len(r) == len(FINDING_HEADERS) and r[1] in ("temperature", "top_p")]
    assert len(finding_rows) == 2 and all(len(r) == len(FINDING_HEADERS) for r in finding_rows)
    [templated] = [r for r in finding_rows if r[1] == "temperature"]
    assert templated[3] == r"`{{ t \| default(0.7) }}`"  # the pipe is escaped, the value intact
    assert "<details>" not in markdown.split("**Flags**")[0]  # a short table is not folded


def test_long_paths_are_shortened_but_links_keep_them(tmp_path: Path) -> None:
    result = audit_path(str(_repo(tmp_path)))
    full = f"{LONG_DIR}/agent.yaml"
    markdown = render_markdown(result, link=lambda p, n: f"https://g/src/branch/main/{p}#L{n}", table=md_table)
    shown = short_path(full)
    assert shown.startswith("…/") and len(shown) <= 48 and full.endswith(shown[1:])
    assert f"[`{shown}:2`](https://g/src/branch/main/{full}#L2)" in markdown
    visible = [re.sub(r"\]\([^)]*\)", "]", cell) for line in markdown.splitlines() if line.startswith("| ")
               for cell in _cells(line)]  # what the reader sees: link targets are not shown
    assert visible and max(len(text) for text in visible) < 80
    assert full in render_text(result)  # the terminal shows the whole path


def test_long_tables_fold_into_details(tmp_path: Path) -> None:
    result = audit_path(str(_repo(tmp_path, extra_files=16)))
    assert len(result.findings) == 18
    markdown = render_markdown(result, table=md_table, details=details)
    assert "<details>\n<summary>18 findings in 17 files</summary>" in markdown
    assert markdown.index("<details>") < markdown.index("| where |") < markdown.index("</details>")


def test_code_spans_survive_backticks() -> None:
    assert code("a`b") == "`` a`b ``" and code("x") == "`x`" and code("") == ""
