"""A patch against an instance -> a verdict, SWE-bench's way.

Apply the model patch (with fuzz), put the test patch's files back to the base commit and apply the test
patch over them (the model cannot change the tests that judge it), run the instance's test files in the
sandbox. Resolved = every FAIL_TO_PASS test passes and every PASS_TO_PASS test still passes.

Verdicts: ``resolved``, ``unresolved``, ``patch_failed`` (the patch does not apply, even with fuzz: not a test
failure), ``empty_patch`` (nothing to apply), ``timeout``, ``error`` (the environment or the test patch failed:
an infrastructure problem, not the model's).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from pipeline.executor.sandbox import describe_isolation
from pipeline.repo_suite.environment import EnvironmentCache, EnvironmentSetupError
from pipeline.repo_suite.instances import Instance
from pipeline.repo_suite.patches import touched_files
from pipeline.repo_suite.repo_config import RepoConfig, RepoConfigError, load_repo_config
from pipeline.repo_suite.testrun import run_tests
from pipeline.repo_suite.workspace import ArchiveSource, Checkout, CheckoutError, RepoCache

REPO_VERDICTS = ("resolved", "unresolved", "patch_failed", "empty_patch", "timeout", "error")


@dataclass
class Outcome:
    instance_id: str
    verdict: str
    applied: bool = False
    apply_method: str = ""
    f2p_passed: int = 0
    f2p_total: int = 0
    p2p_broken: list[str] = field(default_factory=list)
    p2p_total: int = 0
    detail: str = ""
    test_s: float = 0.0  # the test command, sandbox start-up included
    total_s: float = 0.0  # everything: reset, patching, environment look-up, tests
    isolation: dict[str, Any] = field(default_factory=dict)  # what the tests' sandbox obtained (none ran: empty)

    @property
    def resolved(self) -> bool:
        return self.verdict == "resolved"

    def summary(self) -> str:
        if not self.applied or self.verdict in ("error", "timeout"):
            return f"{self.verdict}: {self.detail}"[:300]
        return (
            f"applied ({self.apply_method}); FAIL_TO_PASS {self.f2p_passed}/{self.f2p_total}; "
            f"PASS_TO_PASS broke {len(self.p2p_broken)}/{self.p2p_total}"
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Scorer:
    """Scores patches; keeps one prepared checkout per instance, so n predictions share it."""

    def __init__(
        self,
        cache: RepoCache,
        environments: EnvironmentCache,
        source_for: Callable[[str], ArchiveSource | None] | None = None,
        overrides: dict[str, Any] | None = None,
        allow_unsafe: bool = False,
    ) -> None:
        self.cache = cache
        self.allow_unsafe = allow_unsafe  # the operator's opt-in to a weaker sandbox (SSD_UNSAFE_EXECUTION=1)
        self.environments = environments
        self.source_for = source_for or (lambda repo: None)
        self.overrides = overrides or {}
        self._open: dict[str, tuple[Checkout, RepoConfig]] = {}
        self._sandboxes: set[str] = set()  # the isolation each test run obtained, described

    def __enter__(self) -> Scorer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def open_checkouts(self) -> int:
        """Checkouts prepared so far (one per instance, however many predictions it had)."""
        return len(self._open)

    def close(self) -> None:
        for checkout, _ in self._open.values():
            checkout.close()
        self._open.clear()

    def checkout(self, instance: Instance) -> tuple[Checkout, RepoConfig]:
        if instance.instance_id not in self._open:
            checkout = self.cache.checkout(instance.repo, instance.base_commit, self.source_for(instance.repo))
            try:
                config = load_repo_config(checkout.work_tree)
            except RepoConfigError:
                checkout.close()
                raise
            overrides = dict(self.overrides)
            if instance.test_command and not overrides.get("test_command"):
                overrides["test_command"] = instance.test_command
            self._open[instance.instance_id] = (checkout, config.with_overrides(**overrides))
        return self._open[instance.instance_id]

    def isolation_summary(self) -> str:
        """The isolation the tests scored so far actually ran with, in one line (for a report's footer)."""
        return "; ".join(sorted(self._sandboxes)) or "sandbox: no tests ran"

    def score(self, instance: Instance, patch: str | None) -> Outcome:
        started = time.monotonic()
        outcome = self._score(instance, patch or "")
        if outcome.isolation:
            self._sandboxes.add(describe_isolation(outcome.isolation))
        outcome.f2p_total, outcome.p2p_total = len(instance.FAIL_TO_PASS), len(instance.PASS_TO_PASS)
        outcome.total_s = round(time.monotonic() - started, 3)
        return outcome

    def _score(self, instance: Instance, patch: str) -> Outcome:
        outcome = Outcome(instance.instance_id, "error")
        if not patch.strip():
            outcome.verdict, outcome.detail = "empty_patch", "the prediction has no patch"
            return outcome
        try:
            checkout, config = self.checkout(instance)
            checkout.reset()
            # From the base commit's dependency files: a patch cannot make the service install anything.
            environment = self.environments.ensure(checkout.work_tree, config.requirements, self.allow_unsafe)
            applied = checkout.apply(patch, fuzz=True, allow_unsafe=self.allow_unsafe)
            outcome.applied, outcome.apply_method = applied.applied, applied.method
            if not applied.applied:
                outcome.verdict, outcome.detail = "patch_failed", applied.detail or applied.method
                return outcome
            checkout.restore_paths(touched_files(instance.test_patch))
            test_applied = checkout.apply(instance.test_patch, fuzz=False)
            if not test_applied.applied:
                outcome.detail = f"the test patch does not apply: {test_applied.detail}"
                return outcome
            run = run_tests(checkout, environment, instance.test_files, config, allow_unsafe=self.allow_unsafe)
        except (CheckoutError, EnvironmentSetupError, RepoConfigError, OSError) as exc:
            outcome.detail = str(exc)[:300]
            return outcome
        outcome.test_s = run.duration_s
        outcome.isolation = run.isolation
        if run.timed_out:
            outcome.verdict, outcome.detail = "timeout", f"the tests ran past {config.timeout_s:g}s"
            return outcome
        outcome.f2p_passed = sum(run.passed(t) for t in instance.FAIL_TO_PASS)
        outcome.p2p_broken = [t for t in instance.PASS_TO_PASS if not run.passed(t)]
        resolved = outcome.f2p_passed == len(instance.FAIL_TO_PASS) and not outcome.p2p_broken
        outcome.verdict = "resolved" if resolved else "unresolved"
        if not run.results:
            outcome.detail = run.junit_error or run.output[-300:]
        return outcome
