"""Merged PRs -> validated instances, SWE-bench's way, in this environment.

For each merged PR: base commit (``merge_base``, else the merge commit's first parent); the diff split into
the source patch and the test patch; the test files run with the test patch alone and with test + gold
patch (twice, to catch flaky tests). FAIL_TO_PASS = tests that pass after and did not pass before (a test
that did not exist before counts as failing); PASS_TO_PASS = tests that passed both times. A PR that yields
no FAIL_TO_PASS test is dropped with the reason.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from pipeline.repo_suite.environment import EnvironmentCache, EnvironmentSetupError
from pipeline.repo_suite.instances import Instance, instance_id
from pipeline.repo_suite.patches import split_test_patch, touched_files
from pipeline.repo_suite.repo_config import RepoConfig, RepoConfigError, load_repo_config
from pipeline.repo_suite.source import MergedPull, RepoSource
from pipeline.repo_suite.testrun import TestRun, run_tests
from pipeline.repo_suite.workspace import Checkout, CheckoutError, RepoCache

log = logging.getLogger(__name__)
Progress = Callable[[float, str], None]

# Drop reasons, in the order a PR meets them.
DROP_REASONS = {
    "no_tests": "the PR changes no test file",
    "no_source_change": "the PR changes only tests",
    "setup_failed": "base commit, checkout, .ssd.yml or environment could not be set up",
    "patch_does_not_apply": "the PR's own diff does not apply to its base commit",
    "no_test_results": "the test command produced no per-test results",
    "tests_timed_out": "the tests ran past the time limit",
    "flaky": "the tests gave different results in two runs with the gold patch",
    "tests_pass_before": "no test fails before the fix (nothing for a patch to turn green)",
    "tests_fail_after": "the new or changed tests do not pass with the gold patch",
}
ZERO_SHA = "0" * 40


@dataclass
class Dropped:
    pr_number: int
    reason: str  # a key of DROP_REASONS
    detail: str = ""


@dataclass
class BuildReport:
    repo: str
    instances: list[Instance] = field(default_factory=list)
    dropped: list[Dropped] = field(default_factory=list)
    seconds: float = 0.0
    test_seconds: float = 0.0  # inside the repository's test commands
    environments_built: int = 0

    def counts(self) -> dict[str, int]:
        counts = Counter(d.reason for d in self.dropped)
        return {"kept": len(self.instances), **{reason: counts[reason] for reason in DROP_REASONS if counts[reason]}}

    def to_dict(self) -> dict[str, Any]:
        return {
            "repo": self.repo,
            "counts": self.counts(),
            "kept": [i.instance_id for i in self.instances],
            "dropped": [asdict(d) for d in self.dropped],
            "seconds": self.seconds,
            "test_seconds": self.test_seconds,
            "environments_built": self.environments_built,
        }


@dataclass
class Candidate:
    pull: MergedPull
    diff: str | None = None  # None: fetched from the source


def modules_to_run(test_patch: str) -> list[str]:
    """The Python test modules a test patch leaves in place: what the validation runs (conftest and data
    files take effect through them)."""
    return [
        path
        for path in touched_files(test_patch, existing_after=True)
        if path.endswith(".py") and not path.endswith("conftest.py")
    ]


def classify(before: TestRun, after: list[TestRun]) -> tuple[list[str], list[str], str | None, str]:
    """(FAIL_TO_PASS, PASS_TO_PASS, drop reason or None, detail) from the validation runs."""
    runs = [before, *after]
    if any(run.timed_out for run in runs):
        return [], [], "tests_timed_out", ""
    if not after[0].results:
        return [], [], "no_test_results", after[0].junit_error or after[0].output[-300:]
    passing = [{t for t, s in run.results.items() if s == "passed"} for run in after]
    changed = sorted(set.union(*passing) - set.intersection(*passing))
    if changed:
        return [], [], "flaky", ", ".join(changed[:5])
    passed_after = passing[0]
    f2p = sorted(t for t in passed_after if not before.passed(t))
    p2p = sorted(t for t in passed_after if before.passed(t))
    if not f2p:
        failing = sorted(t for t, s in after[0].results.items() if s in ("failed", "error"))
        if failing:
            return [], [], "tests_fail_after", ", ".join(failing[:5])
        return [], [], "tests_pass_before", ""
    return f2p, p2p, None, ""


class Validator:
    """Holds one checkout per base commit so the runs of one PR (and scoring later) share it."""

    def __init__(
        self,
        repo: str,
        cache: RepoCache,
        environments: EnvironmentCache,
        source: Any = None,
        overrides: dict[str, Any] | None = None,
        allow_unsafe: bool = False,
    ) -> None:
        self.repo = repo
        self.allow_unsafe = allow_unsafe  # the operator's opt-in to a weaker sandbox (SSD_UNSAFE_EXECUTION=1)
        self.cache = cache
        self.environments = environments
        self.source = source
        self.overrides = overrides or {}
        self.test_seconds = 0.0
        self.environments_built = 0

    def open(self, base: str) -> tuple[Checkout, RepoConfig]:
        checkout = self.cache.checkout(self.repo, base, self.source)
        try:
            config = load_repo_config(checkout.work_tree).with_overrides(**self.overrides)
        except RepoConfigError:
            checkout.close()
            raise
        return checkout, config

    def run(self, checkout: Checkout, config: RepoConfig, patches: list[str], files: list[str]) -> TestRun | str:
        """Fresh tree, apply ``patches`` in order, run ``files``; a string says which patch did not apply."""
        checkout.reset()
        # The environment comes from the base commit's dependency files, before any patch.
        environment = self.environments.ensure(checkout.work_tree, config.requirements, self.allow_unsafe)
        self.environments_built += environment.built
        for patch in patches:
            applied = checkout.apply(patch, fuzz=False)
            if not applied.applied:
                return applied.detail or applied.method
        run = run_tests(checkout, environment, files, config, allow_unsafe=self.allow_unsafe)
        self.test_seconds += run.duration_s
        return run


def build_instances(
    source: RepoSource,
    cache: RepoCache,
    environments: EnvironmentCache,
    *,
    candidates: list[Candidate] | None = None,
    since: str | None = None,
    limit: int | None = None,
    overrides: dict[str, Any] | None = None,
    reruns: int = 2,
    progress: Progress | None = None,
    allow_unsafe: bool = False,
) -> BuildReport:
    """Validate each merged PR of ``source`` (or the given ``candidates``) into an instance or a drop."""
    started = time.monotonic()
    report = BuildReport(repo=source.repo)
    progress = progress or (lambda fraction, message: None)
    if candidates is None:
        candidates = [Candidate(pull) for pull in source.merged_pulls(since=since, limit=limit)]
    validator = Validator(source.repo, cache, environments, source, overrides, allow_unsafe)
    for position, candidate in enumerate(candidates):
        pull = candidate.pull
        progress(position / max(len(candidates), 1), f"PR {pull.number}: validating")
        outcome = _validate(source, validator, candidate, reruns)
        if isinstance(outcome, Instance):
            report.instances.append(outcome)
        else:
            report.dropped.append(outcome)
            log.info("issues build %s!%d dropped: %s %s", source.repo, pull.number, outcome.reason, outcome.detail)
    report.seconds = round(time.monotonic() - started, 3)
    report.test_seconds = round(validator.test_seconds, 3)
    report.environments_built = validator.environments_built
    progress(1.0, f"{len(report.instances)} kept, {len(report.dropped)} dropped")
    return report


def _validate(source: RepoSource, validator: Validator, candidate: Candidate, reruns: int) -> Instance | Dropped:
    pull = candidate.pull
    number = pull.number
    try:
        base = pull.merge_base if pull.merge_base and pull.merge_base != ZERO_SHA else None
        base = base or source.first_parent(pull.merge_commit_sha)
        diff = candidate.diff if candidate.diff is not None else source.pull_diff(number)
        checkout, config = validator.open(base)
    except (CheckoutError, RepoConfigError, ValueError, OSError) as exc:
        return Dropped(number, "setup_failed", str(exc)[:300])
    with checkout:
        patch, test_patch = split_test_patch(diff, config.test_patterns)
        files = modules_to_run(test_patch)
        if not test_patch.strip() or not files:
            return Dropped(number, "no_tests")
        if not patch.strip():
            return Dropped(number, "no_source_change")
        try:
            before = validator.run(checkout, config, [test_patch], files)
            after = [validator.run(checkout, config, [test_patch, patch], files) for _ in range(max(1, reruns))]
        except (EnvironmentSetupError, CheckoutError) as exc:
            return Dropped(number, "setup_failed", str(exc)[:300])
        for run in (before, *after):
            if isinstance(run, str):
                return Dropped(number, "patch_does_not_apply", run[:300])
        f2p, p2p, reason, detail = classify(before, after)  # type: ignore[arg-type]
        if reason:
            return Dropped(number, reason, detail[:300])
    return Instance(
        instance_id=instance_id(source.repo, number),
        repo=source.repo,
        base_commit=base,
        problem_statement=pull.problem_statement,
        patch=patch,
        test_patch=test_patch,
        FAIL_TO_PASS=f2p,
        PASS_TO_PASS=p2p,
        pr_number=number,
        pr_numbers=[number],
        issue_numbers=list(pull.issue_numbers),
        merge_commit=pull.merge_commit_sha,
        created_at=pull.merged_at,
        test_files=files,
        test_command=list(config.test_command) if config.test_command != RepoConfig().test_command else [],
    )


def format_build_report(report: BuildReport) -> str:
    counts = report.counts()
    lines = [
        f"{report.repo}: {counts['kept']} kept, {len(report.dropped)} dropped "
        f"({report.seconds:.1f}s, {report.test_seconds:.1f}s in tests, "
        f"{report.environments_built} environment(s) built)"
    ]
    for reason, count in counts.items():
        if reason != "kept":
            lines.append(f"  {reason}: {count}  ({DROP_REASONS[reason]})")
    for instance in report.instances:
        lines.append(
            f"  kept    !{instance.pr_number:<5} {instance.instance_id}  F2P {len(instance.FAIL_TO_PASS)}  "
            f"P2P {len(instance.PASS_TO_PASS)}"
        )
    for dropped in report.dropped:
        lines.append(
            f"  dropped !{dropped.pr_number:<5} {dropped.reason}" + (f": {dropped.detail}" if dropped.detail else "")
        )
    return "\n".join(lines)
