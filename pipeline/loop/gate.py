"""The promotion gate: should the candidate adapter replace the one served now?

A pure function over paired per-problem results: the candidate and the current model (the promoted
adapter, or the base) were evaluated on the same problems with the same seeds and the same n. For each
suite and for all problems together it computes the paired difference in pass@k (candidate - current)
with a paired bootstrap CI (``pipeline.metrics.paired_difference``).

Rule (a non-inferiority test): the candidate is promoted only if, on every suite and overall, the lower
end of the CI is at least ``-margin``, i.e. we are confident (95 %) it loses no more than ``margin``
pass@k anywhere. A candidate whose CI is too wide to say so is rejected: with few problems the gate
errs towards keeping what is served. Per-difficulty rows are reported, not gated (too few problems each).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from pipeline.metrics import LEVEL, RESAMPLES, paired_difference

OVERALL = "overall"


@dataclass(frozen=True)
class ProblemResult:
    """One problem's outcome for one model: ``correct`` of ``n`` samples passed."""

    suite: str
    task_id: str
    difficulty: str | None
    n: int
    correct: int


@dataclass(frozen=True)
class GateRow:
    """One line of the gate table."""

    scope: str  # "overall", a suite id, or "suite/difficulty"
    problems: int
    current: float
    candidate: float
    difference: float
    ci_low: float
    ci_high: float
    gated: bool  # whether this row can block a promotion
    passed: bool


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    reason: str
    margin: float
    k: int
    level: float
    rows: list[GateRow] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "promote": self.promote,
            "reason": self.reason,
            "margin": self.margin,
            "k": self.k,
            "level": self.level,
            "rows": [asdict(row) for row in self.rows],
        }


def _pair(
    candidate: Sequence[ProblemResult], current: Sequence[ProblemResult]
) -> list[tuple[ProblemResult, ProblemResult]]:
    """Match problems by (suite, task_id); refuse anything that is not a paired measurement."""

    def index(results: Sequence[ProblemResult], label: str) -> dict[tuple[str, str], ProblemResult]:
        table: dict[tuple[str, str], ProblemResult] = {}
        for result in results:
            key = (result.suite, result.task_id)
            if key in table:
                raise ValueError(f"{label}: {result.suite}/{result.task_id} appears twice")
            if not 0 <= result.correct <= result.n or result.n < 1:
                raise ValueError(
                    f"{label}: {result.suite}/{result.task_id} has correct={result.correct} of n={result.n}"
                )
            table[key] = result
        return table

    ours, theirs = index(candidate, "candidate"), index(current, "current")
    if ours.keys() != theirs.keys():
        missing = sorted(ours.keys() ^ theirs.keys())[:5]
        raise ValueError(f"candidate and current were not evaluated on the same problems (e.g. {missing})")
    pairs = []
    for key in sorted(ours):
        a, b = ours[key], theirs[key]
        if a.n != b.n:
            raise ValueError(f"{key[0]}/{key[1]}: candidate has n={a.n}, current n={b.n}; the gate needs the same n")
        pairs.append((a, b))
    return pairs


def _row(
    scope: str,
    pairs: list[tuple[ProblemResult, ProblemResult]],
    margin: float,
    k: int,
    gated: bool,
    resamples: int,
    seed: int,
    level: float,
) -> GateRow:
    current = [(b.n, b.correct) for _, b in pairs]
    candidate = [(a.n, a.correct) for a, _ in pairs]
    diff = paired_difference(current, candidate, k=k, resamples=resamples, seed=seed, level=level)
    return GateRow(
        scope=scope,
        problems=len(pairs),
        current=diff["a"],
        candidate=diff["b"],
        difference=diff["difference"],
        ci_low=diff["ci_low"],
        ci_high=diff["ci_high"],
        gated=gated,
        passed=diff["ci_low"] >= -margin - 1e-12,
    )


def decide(
    candidate: Sequence[ProblemResult],
    current: Sequence[ProblemResult],
    margin: float = 0.05,
    k: int = 1,
    resamples: int = RESAMPLES,
    seed: int = 0,
    level: float = LEVEL,
) -> GateDecision:
    """Promote or not, why, and the table (overall, per suite, per suite and difficulty)."""
    if not 0 <= margin < 1:
        raise ValueError(f"margin must be in [0, 1), got {margin}")
    pairs = _pair(candidate, current)
    if not pairs:
        raise ValueError("no problems to compare")
    if any(a.n < k for a, _ in pairs):
        raise ValueError(f"pass@{k} needs at least {k} samples per problem")

    def row(scope: str, selected: list[tuple[ProblemResult, ProblemResult]], gated: bool) -> GateRow:
        return _row(scope, selected, margin, k, gated, resamples, seed, level)

    suites = sorted({a.suite for a, _ in pairs})
    rows = [row(OVERALL, pairs, True)]
    for suite in suites:
        in_suite = [p for p in pairs if p[0].suite == suite]
        rows.append(row(suite, in_suite, True))
        for difficulty in sorted({a.difficulty for a, _ in in_suite if a.difficulty}):
            rows.append(row(f"{suite}/{difficulty}", [p for p in in_suite if p[0].difficulty == difficulty], False))

    failed = [r for r in rows if r.gated and not r.passed]
    overall = rows[0]
    pct = f"{level:.0%}"
    if failed:
        worst = ", ".join(
            f"{r.scope}: Δ {r.difference:+.3f}, {pct} CI [{r.ci_low:+.3f}, {r.ci_high:+.3f}]" for r in failed
        )
        reason = (
            f"rejected: the candidate may lose more than {margin:.3f} pass@{k} (the CI's lower end is "
            f"below -{margin:.3f}) on {worst}"
        )
        return GateDecision(False, reason, margin, k, level, rows)
    reason = (
        f"promoted: on every suite the candidate loses at most {margin:.3f} pass@{k} at the CI's lower end "
        f"(overall Δ {overall.difference:+.3f}, {pct} CI [{overall.ci_low:+.3f}, {overall.ci_high:+.3f}], "
        f"{overall.problems} problems)"
    )
    return GateDecision(True, reason, margin, k, level, rows)
