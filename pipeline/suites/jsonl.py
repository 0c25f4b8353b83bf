"""Our JSONL suite format: one problem per line, validated with line numbers.

The format is described by ``schema.json`` (JSON Schema) and README.md in this folder. Validation
is written out here rather than delegated to a JSON Schema library because it also checks what a
schema cannot say: that ``call`` inputs are JSON argument lists, that code compiles, that task ids
are unique. Every bad line is reported, not only the first, so a suite author fixes them in one go.
"""

from __future__ import annotations

import json
import keyword
from pathlib import Path
from typing import Any

from pipeline.suites import Suite, SuiteError, sha256_file
from pipeline.types import DIFFICULTIES, Problem, TestCase, TestSpec

STYLES = ("instruct", "complete", "lcb")
TEST_KINDS = ("assert", "stdio", "call")
REQUIRED = ("task_id", "prompt", "tests")
OPTIONAL = (
    "entry_point",
    "starter_code",
    "difficulty",
    "reference",
    "timeout_s",
    "style",
    "signature",
    "metadata",
)
TEST_FIELDS = {
    "assert": {"kind", "code"},
    "stdio": {"kind", "cases"},
    "call": {"kind", "fn_name", "cases"},
}
DEFAULT_TIMEOUT_S = TestSpec.timeout_s


class _Invalid(Exception):
    """One reason a line is bad; collected per line."""


def _is_identifier(value: Any) -> bool:
    return isinstance(value, str) and value.isidentifier() and not keyword.iskeyword(value)


def _compiles(code: str, what: str, problems: list[str]) -> None:
    try:
        compile(code, f"<{what}>", "exec")
    except SyntaxError as exc:
        problems.append(f"{what}: does not compile ({exc.msg} at line {exc.lineno})")


def _parse_cases(raw: Any, kind: str, problems: list[str]) -> tuple[TestCase, ...]:
    if not isinstance(raw, list) or not raw:
        problems.append("tests.cases: must be a non-empty list")
        return ()
    cases: list[TestCase] = []
    for index, case in enumerate(raw):
        where = f"tests.cases[{index}]"
        if not isinstance(case, dict) or set(case) != {"input", "output"}:
            problems.append(f"{where}: must be an object with exactly 'input' and 'output'")
            continue
        if not isinstance(case["input"], str) or not isinstance(case["output"], str):
            problems.append(f"{where}: 'input' and 'output' must be strings")
            continue
        if kind == "call":
            try:
                args = json.loads(case["input"])
            except json.JSONDecodeError as exc:
                problems.append(f"{where}.input: not valid JSON ({exc.msg})")
                continue
            if not isinstance(args, list):
                problems.append(f"{where}.input: must be a JSON list of positional arguments")
                continue
            try:
                json.loads(case["output"])
            except json.JSONDecodeError as exc:
                problems.append(f"{where}.output: not valid JSON ({exc.msg})")
                continue
        cases.append(TestCase(input=case["input"], output=case["output"]))
    return tuple(cases)


def _parse_tests(raw: Any, row: dict, timeout_s: float, problems: list[str]) -> TestSpec | None:
    if not isinstance(raw, dict):
        problems.append("tests: must be an object with a 'kind'")
        return None
    kind = raw.get("kind")
    if kind not in TEST_KINDS:
        problems.append(f"tests.kind: must be one of {', '.join(TEST_KINDS)}, got {kind!r}")
        return None
    extra = set(raw) - TEST_FIELDS[kind]
    if extra:
        problems.append(f"tests: unknown field(s) for kind {kind!r}: {', '.join(sorted(extra))}")
    if kind == "assert":
        code = raw.get("code")
        if not isinstance(code, str) or not code.strip():
            problems.append("tests.code: must be a non-empty string")
            return None
        _compiles(code, "tests.code", problems)
        return TestSpec(kind="assert", assert_code=code, timeout_s=timeout_s)
    cases = _parse_cases(raw.get("cases"), kind, problems)
    if kind == "stdio":
        return TestSpec(kind="stdio", cases=cases, timeout_s=timeout_s)
    # A call test names its function; the problem's entry point is the natural default.
    fn_name = raw.get("fn_name", row.get("entry_point"))
    if not _is_identifier(fn_name):
        problems.append(f"tests.fn_name: must be a Python identifier (or set entry_point), got {fn_name!r}")
        return None
    return TestSpec(kind="call", cases=cases, fn_name=fn_name, timeout_s=timeout_s)


def parse_row(row: Any) -> Problem:
    """Validate one decoded line; raise ``_Invalid`` carrying every reason it is bad."""
    if not isinstance(row, dict):
        raise _Invalid("must be a JSON object")
    problems: list[str] = []
    for name in REQUIRED:
        if name not in row:
            problems.append(f"missing required field {name!r}")
    unknown = set(row) - set(REQUIRED) - set(OPTIONAL)
    if unknown:
        problems.append(f"unknown field(s): {', '.join(sorted(unknown))} (put extras under 'metadata')")
    task_id = row.get("task_id")
    if "task_id" in row and (not isinstance(task_id, str) or not task_id.strip()):
        problems.append("task_id: must be a non-empty string")
    prompt = row.get("prompt")
    if "prompt" in row and (not isinstance(prompt, str) or not prompt.strip()):
        problems.append("prompt: must be a non-empty string")
    entry_point = row.get("entry_point")
    if entry_point is not None and not _is_identifier(entry_point):
        problems.append(f"entry_point: must be a Python identifier, got {entry_point!r}")
    for name in ("starter_code", "reference", "signature"):
        if row.get(name) is not None and not isinstance(row[name], str):
            problems.append(f"{name}: must be a string")
    if isinstance(row.get("reference"), str):
        _compiles(row["reference"], "reference", problems)
    difficulty = row.get("difficulty")
    if difficulty is not None and difficulty not in DIFFICULTIES:
        problems.append(f"difficulty: must be one of {', '.join(DIFFICULTIES)} or null, got {difficulty!r}")
    style = row.get("style", "instruct")
    if style not in STYLES:
        problems.append(f"style: must be one of {', '.join(STYLES)}, got {style!r}")
    timeout_s = row.get("timeout_s", DEFAULT_TIMEOUT_S)
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, int | float) or not 0 < timeout_s <= 600:
        problems.append(f"timeout_s: must be a number in (0, 600], got {timeout_s!r}")
        timeout_s = DEFAULT_TIMEOUT_S
    metadata = row.get("metadata", {})
    if not isinstance(metadata, dict):
        problems.append("metadata: must be an object")
        metadata = {}
    tests = _parse_tests(row.get("tests"), row, float(timeout_s), problems) if "tests" in row else None
    if problems or tests is None:
        raise _Invalid("; ".join(problems))
    metadata = dict(metadata)
    if row.get("signature"):
        metadata["signature"] = row["signature"]
    return Problem(
        task_id=task_id,
        prompt=prompt,
        tests=tests,
        entry_point=entry_point,
        starter_code=row.get("starter_code"),
        difficulty=difficulty,
        reference=row.get("reference"),
        style=style,
        metadata=metadata,
    )


def parse_lines(lines: list[str]) -> tuple[list[Problem], list[tuple[int, str]]]:
    """Parse every line; return the good problems and ``(line_number, reason)`` for each bad one."""
    result: list[Problem] = []
    errors: list[tuple[int, str]] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue  # blank lines (a trailing newline, spacing) are not problems
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            errors.append((number, f"not valid JSON ({exc.msg} at column {exc.colno})"))
            continue
        try:
            problem = parse_row(row)
        except _Invalid as exc:
            errors.append((number, str(exc)))
            continue
        if problem.task_id in seen:
            errors.append((number, f"duplicate task_id {problem.task_id!r} (first on line {seen[problem.task_id]})"))
            continue
        seen[problem.task_id] = number
        result.append(problem)
    return result, errors


def load(path: str | Path, suite_id: str | None = None) -> Suite:
    """Load and validate a JSONL suite; raise ``SuiteError`` listing every bad line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SuiteError(f"cannot read suite {path}: {exc}") from exc
    problems, errors = parse_lines(text.splitlines())
    if errors:
        raise SuiteError(f"{path}: {len(errors)} bad line(s)", errors)
    if not problems:
        raise SuiteError(f"{path}: no problems")
    return Suite(id=suite_id or path.stem, problems=problems, sha256=sha256_file(path))


def problem_to_row(problem: Problem) -> dict[str, Any]:
    """The inverse of ``parse_row`` (used by the basic-suite builder and for exporting suites)."""
    tests: dict[str, Any] = {"kind": problem.tests.kind}
    if problem.tests.kind == "assert":
        tests["code"] = problem.tests.assert_code
    else:
        if problem.tests.kind == "call":
            tests["fn_name"] = problem.tests.fn_name
        tests["cases"] = [{"input": case.input, "output": case.output} for case in problem.tests.cases]
    row: dict[str, Any] = {"task_id": problem.task_id, "prompt": problem.prompt}
    metadata = dict(problem.metadata)
    signature = metadata.pop("signature", None)
    for name, value in (
        ("entry_point", problem.entry_point),
        ("starter_code", problem.starter_code),
        ("signature", signature),
        ("difficulty", problem.difficulty),
        ("reference", problem.reference),
    ):
        if value is not None:
            row[name] = value
    if problem.style != "instruct":
        row["style"] = problem.style
    if problem.tests.timeout_s != DEFAULT_TIMEOUT_S:
        row["timeout_s"] = problem.tests.timeout_s
    row["tests"] = tests
    if metadata:
        row["metadata"] = metadata
    return row
