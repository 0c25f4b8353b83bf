"""Rendering the audit report: Markdown tables survive ``|`` in values, long paths stay short, long tables fold."""

from __future__ import annotations

import re
from pathlib import Path

from pipeline.audit import audit_path
from pipeline.audit.report import FINDING_HEADERS, render_markdown, render_text, short_path

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
    markdown = render_markdown(result, link=link)
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
    markdown = render_markdown(result, link=lambda p, n: f"https://g/src/branch/main/{p}#L{n}")
    shown = short_path(full)
    assert shown.startswith("…/") and len(shown) <= 48 and full.endswith(shown[1:])
    assert f"[`{shown}:2`](https://g/src/branch/main/{full}#L2)" in markdown
    visible = [
        re.sub(r"\]\([^)]*\)", "]", cell)
        for line in markdown.splitlines()
        if line.startswith("| ")
        for cell in _cells(line)
    ]  # what the reader sees: link targets are not shown
    assert visible and max(len(text) for text in visible) < 80
    assert full in render_text(result)  # the terminal shows the whole path


def test_long_tables_fold_into_details(tmp_path: Path) -> None:
    result = audit_path(str(_repo(tmp_path, extra_files=16)))
    assert len(result.findings) == 18
    markdown = render_markdown(result)
    assert "<details>\n<summary>18 findings in 17 files</summary>" in markdown
    assert markdown.index("<details>") < markdown.index("| where |") < markdown.index("</details>")


def test_measured_section_renders_its_tables_without_a_model() -> None:
    from pipeline.audit.measure import measured_markdown

    def condition(label: str, t: float, passed: int) -> dict:
        stat = {"estimate": passed / 4, "ci_low": 0.0, "ci_high": 1.0}
        return {
            "label": label,
            "temperature": t,
            "problems": 2,
            "samples": 4,
            "passed": passed,
            "pass_at": {"1": stat},
            "by_difficulty": {},
            "exec_s": 1.5,
        }

    measured = {
        "config": {"n": 2},
        "eval": {
            "model": "smollm2",
            "suite": "basic",
            "conditions": [condition("T=0.2", 0.2, 1), condition("T=0.7", 0.7, 3)],
            "paired": [
                {"label": "T=0.7", "against": "T=0.2", "delta": 0.5, "ci_low": -0.1, "ci_high": 0.9, "problems": 2}
            ],
        },
        "grid": [
            {"temperature": 0.2, "why": "current | found in serve/Modelfile"},
            {"temperature": 0.7, "why": "paper"},
        ],
        "recommendation": {"text": "cannot tell"},
    }
    markdown = measured_markdown(measured, "https://g/plot.png")
    assert "| T=0.2 | all | 2 | 4 | 1 | 25.0% [0.0, 100.0] | exec 1.5s |" in markdown
    assert "| 0.2 | current \\| found in serve/Modelfile |" in markdown  # the pipe stays inside its cell
    assert "T=0.7 − T=0.2 (current): pass@1 +50.0 points" in markdown
    assert "![pass@1 vs temperature](https://g/plot.png)" in markdown
    assert "**Recommendation**: cannot tell" in markdown
