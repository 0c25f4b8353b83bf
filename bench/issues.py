"""Benchmark: the repository suite's cost per instance beyond the repository's own tests.

Builds the test fixture (``tests/repo_fixture.py``: a real git repository served by the Gitea stand-in over
HTTP), validates its instances (cold: archives fetched, environment built), then scores the gold patches
with a warm cache and compares, per instance, the whole scoring (fresh work tree, patching, environment
look-up, the sandboxed test command, JUnit parsing) with the same test command run directly on an already
patched tree, unsandboxed: the repository's own tests, measured in the same run. Then n predictions of one
instance, which share one prepared checkout.

Target (issue #11): <= 1 s of overhead per instance with a warm environment cache.

    .venv/bin/python bench/issues.py [--repeats 3] [--n 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.gitea import GiteaClient  # noqa: E402
from bot.repo_source import GiteaRepoSource  # noqa: E402
from pipeline.executor.sandbox import child_environment  # noqa: E402
from pipeline.repo_suite.build import build_instances  # noqa: E402
from pipeline.repo_suite.environment import EnvironmentCache  # noqa: E402
from pipeline.repo_suite.score import Scorer  # noqa: E402
from pipeline.repo_suite.testrun import expand_command  # noqa: E402
from pipeline.repo_suite.workspace import RepoCache  # noqa: E402
from tests.conftest_gitea import BOT_TOKEN, seeded_standin  # noqa: E402
from tests.repo_fixture import REPO, build_fixture_repo, serve_fixture  # noqa: E402

TARGET_OVERHEAD_S = 1.0


def direct_test_seconds(scorer: Scorer, instance, environments: EnvironmentCache) -> float:
    """The instance's test command on the gold-patched tree, run directly (no sandbox): the baseline."""
    checkout, config = scorer.checkout(instance)
    checkout.reset()
    for patch in (instance.patch, instance.test_patch):
        assert checkout.apply(patch, fuzz=False).applied
    environment = environments.ensure(checkout.work_tree, config.requirements)
    junit = checkout.base / "direct-junit.xml"
    argv = expand_command(config, environment.python, junit, instance.test_files)
    env = {**child_environment(str(checkout.base)), **config.env}
    started = time.perf_counter()
    subprocess.run(argv, cwd=checkout.work_tree, env=env, capture_output=True, check=False)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed scorings per instance (median reported)")
    parser.add_argument("--n", type=int, default=5, help="predictions for one instance sharing a checkout")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="bench-issues-"))
    fixture = build_fixture_repo(root)
    standin = seeded_standin().start()
    serve_fixture(standin, fixture)
    client = GiteaClient(standin.url, BOT_TOKEN, timeout=10.0, retries=1)
    cache, environments = RepoCache(root / "cache"), EnvironmentCache(root / "cache" / "envs")
    try:
        started = time.perf_counter()
        report = build_instances(GiteaRepoSource(client, REPO), cache, environments)
        build_s = time.perf_counter() - started
    finally:
        standin.stop()

    rows = []
    with Scorer(cache, environments) as scorer:
        for instance in report.instances:
            scorer.score(instance, instance.patch)  # warm: checkout prepared, environment found
            totals, tests, directs = [], [], []
            for _ in range(args.repeats):
                outcome = scorer.score(instance, instance.patch)
                assert outcome.resolved, outcome
                totals.append(outcome.total_s)
                tests.append(outcome.test_s)
                directs.append(direct_test_seconds(scorer, instance, environments))
            total, test, direct = map(statistics.median, (totals, tests, directs))
            rows.append(
                {
                    "instance": instance.instance_id,
                    "total_s": round(total, 3),
                    "direct_tests_s": round(direct, 3),
                    "overhead_s": round(total - direct, 3),
                    "patch_and_tree_s": round(total - test, 3),
                    "sandbox_s": round(test - direct, 3),
                }
            )
        first = report.instances[0]
        started = time.perf_counter()
        outcomes = [scorer.score(first, first.patch) for _ in range(args.n)]
        n_s = time.perf_counter() - started
        checkouts = scorer.open_checkouts
    direct_first = next(r["direct_tests_s"] for r in rows if r["instance"] == first.instance_id)
    overheads = [r["overhead_s"] for r in rows]
    summary = {
        "build": {"seconds": round(build_s, 2), "test_seconds": report.test_seconds, "counts": report.counts()},
        "per_instance": rows,
        "median_overhead_s": round(statistics.median(overheads), 3),
        "max_overhead_s": round(max(overheads), 3),
        "target_overhead_s": TARGET_OVERHEAD_S,
        "n_predictions": {
            "n": args.n,
            "seconds": round(n_s, 2),
            "per_prediction_s": round(n_s / args.n, 3),
            "overhead_per_prediction_s": round(n_s / args.n - direct_first, 3),
            "resolved": sum(o.resolved for o in outcomes),
            "prepared_checkouts": checkouts,
        },
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"build: {summary['build']['counts']} in {build_s:.1f}s ({report.test_seconds:.1f}s in test commands)")
    print(f"{'instance':<16} {'scoring':>8} {'own tests':>10} {'overhead':>9} {'patch+tree':>11} {'sandbox':>8}  ratio")
    for r in rows:
        ratio = r["total_s"] / r["direct_tests_s"] if r["direct_tests_s"] else float("nan")
        print(
            f"{r['instance']:<16} {r['total_s']:>7.3f}s {r['direct_tests_s']:>9.3f}s {r['overhead_s']:>8.3f}s "
            f"{r['patch_and_tree_s']:>10.3f}s {r['sandbox_s']:>7.3f}s  {ratio:.2f}x"
        )
    verdict = "meets" if summary["max_overhead_s"] <= TARGET_OVERHEAD_S else "MISSES"
    print(
        f"overhead per instance: median {summary['median_overhead_s']:.3f}s, max {summary['max_overhead_s']:.3f}s "
        f"({verdict} the {TARGET_OVERHEAD_S:.0f} s target)"
    )
    n = summary["n_predictions"]
    print(
        f"{n['n']} predictions of {first.instance_id}: {n['per_prediction_s']:.3f}s each "
        f"({n['overhead_per_prediction_s']:.3f}s beyond its own tests), {n['prepared_checkouts']} prepared "
        f"checkout(s) for {len(report.instances)} instances, {n['resolved']}/{n['n']} resolved"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
