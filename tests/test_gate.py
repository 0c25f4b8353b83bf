"""The promotion gate on controlled paired data: it must decide both ways, per suite and overall."""

from __future__ import annotations

import pytest

from pipeline.loop.gate import ProblemResult, decide


def results(
    suite: str, solved: list[int], n: int = 1, difficulty: str | None = None, count: int | None = None
) -> list[ProblemResult]:
    """``solved[i]`` = correct samples of problem i (of ``n``)."""
    return [ProblemResult(suite, f"{suite}/{i}", difficulty, n, c) for i, c in enumerate(solved)][:count]


def test_a_clearly_better_candidate_is_promoted():
    current = results("basic", [1] * 10 + [0] * 30)
    candidate = results("basic", [1] * 20 + [0] * 20)
    decision = decide(candidate, current, margin=0.05)
    assert decision.promote, decision.reason
    overall = decision.rows[0]
    assert overall.scope == "overall" and overall.problems == 40
    assert overall.current == pytest.approx(0.25) and overall.candidate == pytest.approx(0.5)
    assert overall.difference == pytest.approx(0.25) and overall.ci_low > 0
    assert decision.reason.startswith("promoted")


def test_a_clearly_worse_candidate_is_rejected_and_the_reason_says_where():
    current = results("basic", [1] * 20 + [0] * 20)
    candidate = results("basic", [1] * 8 + [0] * 32)
    decision = decide(candidate, current, margin=0.05)
    assert not decision.promote
    assert decision.reason.startswith("rejected") and "basic: Δ -0.300" in decision.reason


def test_an_identical_candidate_is_not_worse():
    same = results("basic", [1, 0, 1, 1, 0] * 8)
    decision = decide(same, same, margin=0.0)
    assert decision.promote
    assert (decision.rows[0].ci_low, decision.rows[0].ci_high) == (0.0, 0.0)


def test_too_few_problems_to_be_sure_is_rejected_unless_the_margin_allows_it():
    current = results("basic", [1, 1, 0, 0, 1, 0])
    candidate = results("basic", [1, 0, 0, 0, 1, 0])  # one loss in six: the CI reaches far below zero
    assert not decide(candidate, current, margin=0.05).promote
    assert decide(candidate, current, margin=0.5).promote


def test_every_suite_is_gated_not_just_the_overall_mean():
    current = results("basic", [0] * 60) + results("humaneval", [1] * 20)
    candidate = results("basic", [1] * 20 + [0] * 40) + results("humaneval", [1] * 12 + [0] * 8)
    decision = decide(candidate, current, margin=0.05)
    by_scope = {row.scope: row for row in decision.rows}
    assert by_scope["overall"].difference == pytest.approx((20 - 8) / 80) and by_scope["overall"].passed
    assert by_scope["basic"].passed and not by_scope["humaneval"].passed
    assert not decision.promote and "humaneval" in decision.reason and "basic:" not in decision.reason


def test_difficulty_rows_are_reported_but_do_not_block():
    current = results("basic", [1] * 5, difficulty="hard") + results("basic", [0] * 40, difficulty="easy")
    candidate = results("basic", [0] * 5, difficulty="hard") + results("basic", [1] * 40, difficulty="easy")
    # task ids must differ between the two difficulty groups
    current = [ProblemResult(r.suite, f"{r.difficulty}/{r.task_id}", r.difficulty, r.n, r.correct) for r in current]
    candidate = [ProblemResult(r.suite, f"{r.difficulty}/{r.task_id}", r.difficulty, r.n, r.correct) for r in candidate]
    decision = decide(candidate, current, margin=0.05)
    rows = {row.scope: row for row in decision.rows}
    assert not rows["basic/hard"].passed and not rows["basic/hard"].gated
    assert rows["basic/easy"].gated is False
    assert decision.promote
    assert decision.to_dict()["rows"][0]["scope"] == "overall"


def test_pass_at_1_with_several_samples_per_problem():
    current = results("basic", [2] * 30, n=4)  # 0.5 each
    candidate = results("basic", [4] * 30, n=4)
    decision = decide(candidate, current)
    assert decision.rows[0].difference == pytest.approx(0.5) and decision.promote


@pytest.mark.parametrize(
    "candidate, current, message",
    [
        (results("basic", [1, 0]), results("basic", [1, 0, 1]), "same problems"),
        (results("basic", [1, 0], n=2), results("basic", [1, 0], n=1), "same n"),
        (results("basic", [1]) * 2, results("basic", [1]) * 2, "twice"),
        (results("basic", [3], n=2), results("basic", [1], n=2), "correct=3"),
        ([], [], "no problems"),
    ],
)
def test_unpaired_or_malformed_results_are_refused(candidate, current, message):
    with pytest.raises(ValueError, match=message):
        decide(candidate, current)


def test_margin_must_be_a_fraction():
    with pytest.raises(ValueError, match="margin"):
        decide(results("basic", [1]), results("basic", [1]), margin=5)
