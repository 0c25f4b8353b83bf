"""Part 2 of the audit: the T_eval grid, the recommendation rule, and a real run on the embedded model (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.audit import audit_path
from pipeline.audit.measure import current_temperature, plan_grid, problems_needed, recommend
from pipeline.evaluate import SampleRecord
from ssd.cli import main
from tests.audit_fixture import FIXTURE
from tests.harness import needs_matplotlib, needs_model


def test_grid_current_first_then_found_fixed_and_paper() -> None:
    result = audit_path(str(FIXTURE))
    current, why = current_temperature(result)
    assert current == 0.7 and "(5 of 24)" in why  # 0.7 is set in 5 places (0.2 in 4), README commands count
    grid = plan_grid(result, None, "Qwen/Qwen3-4B-Instruct-2507")
    temps = [t for t, _ in grid]
    assert temps[0] == 0.7 and len(temps) == len(set(temps))
    assert {0.0, 0.2, 0.3, 0.4, 0.6, 0.8, 1.0, 1.1, 1.6} <= set(temps)  # found, fixed, and the paper's 1.1
    assert dict(grid)[1.1].startswith("the paper's T_eval")
    assert 1.6 in temps  # serving at 1.6 is found (and flagged), so it is measured too
    assert all(0 <= t <= 2 for t in temps)


def test_grid_requested_and_empty_repo(tmp_path: Path) -> None:
    result = audit_path(str(FIXTURE))
    assert plan_grid(result, ["current", "0.3", "0.7"], "smollm2") == [
        (0.7, "current: " + current_temperature(result)[1]),
        (0.3, "requested"),
    ]  # 0.7 is the current one
    assert [t for t, _ in plan_grid(result, ["0.2"], "smollm2")] == [0.7, 0.2]  # current is always the baseline
    with pytest.raises(ValueError):
        plan_grid(result, ["-1"], "smollm2")
    empty = audit_path(str(tmp_path))
    assert current_temperature(empty) == (1.0, "nothing set anywhere: the OpenAI/vLLM default")
    assert [t for t, _ in plan_grid(empty, None, "smollm2")] == [1.0, 0.3, 0.7]


def _records(rates: dict[float, list[int]], n: int) -> list[SampleRecord]:
    """Per temperature: passes per problem (out of n)."""
    out = []
    for t, per_problem in rates.items():
        for i, passes in enumerate(per_problem):
            for s in range(n):
                out.append(
                    SampleRecord(f"p{i}", s, t, "easy", s, "", "", "pass" if s < passes else "wrong", s < passes)
                )
    return out


def _data(records: list[SampleRecord], paired: list[dict]) -> dict:
    temps = sorted({r.temperature for r in records}, key=[r.temperature for r in records].index)
    conditions = [
        {
            "label": f"T={t:g}",
            "temperature": t,
            "passed": sum(r.passed for r in records if r.temperature == t),
            "samples": sum(1 for r in records if r.temperature == t),
        }
        for t in temps
    ]
    return {"conditions": conditions, "paired": paired}


def test_recommend_changes_only_when_the_ci_excludes_zero() -> None:
    records = _records({0.2: [0, 0, 1, 0], 0.7: [2, 2, 2, 1]}, n=2)
    clear = recommend(
        _data(
            records,
            [{"label": "T=0.7", "against": "T=0.2", "problems": 4, "delta": 0.75, "ci_low": 0.5, "ci_high": 1.0}],
        ),
        records,
        2,
    )
    assert clear["verdict"] == "change" and clear["text"].startswith("Change T_eval from T=0.2 to T=0.7: pass@1 +75.0")
    unclear = recommend(
        _data(
            records,
            [{"label": "T=0.7", "against": "T=0.2", "problems": 4, "delta": 0.1, "ci_low": -0.05, "ci_high": 0.3}],
        ),
        records,
        2,
    )
    assert unclear["verdict"] == "cannot tell" and "the data cannot tell" in unclear["text"]
    assert unclear["problems_needed"] and f"about {unclear['problems_needed']:,} problems at n=2" in unclear["text"]
    nothing = _records({0.2: [0, 0], 0.7: [0, 0]}, n=2)
    verdict = recommend(
        _data(
            nothing,
            [{"label": "T=0.7", "against": "T=0.2", "problems": 2, "delta": 0.0, "ci_low": 0.0, "ci_high": 0.0}],
        ),
        nothing,
        2,
    )
    assert verdict["verdict"] == "cannot tell" and "passed none of 8 samples" in verdict["text"]


def test_problems_needed_grows_as_the_effect_shrinks() -> None:
    noisy = [0.5, -0.5, 0.5, -0.5, 0.5, 0.0]
    assert problems_needed(noisy, 2, 0.5) > problems_needed([0.5, 0.4, 0.6, 0.5], 2, 0.5) > 0
    # No spread seen: the binomial spread of two rates of n=2 at p=0.5 (sd 0.5), for a 5-point effect.
    assert problems_needed([0.0, 0.0], 2, 0.5) == 785
    assert problems_needed([0.0, 0.0], 2, 0.0) is None and problems_needed([], 2, 0.5) is None


@pytest.mark.slow
@needs_model
@needs_matplotlib
def test_measure_on_the_embedded_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "repo"
    (repo / "serve").mkdir(parents=True)
    (repo / "serve" / "Modelfile").write_text("FROM smollm2\nPARAMETER temperature 0.2\n")
    plot = tmp_path / "plot.png"
    rc = main(
        [
            "audit",
            "--path",
            str(repo),
            "--measure",
            "--model",
            "smollm2",
            "--suite",
            "basic",
            "--n",
            "2",
            "--limit",
            "3",
            "--t",
            "current,0.7",
            "--max-tokens",
            "64",
            "--threads",
            "1",
            "--json",
            "--plot",
            str(plot),
            "-q",
        ]
    )
    assert rc == 0
    data = json.loads(capsys.readouterr().out)
    measured = data["measured"]
    assert [g["temperature"] for g in measured["grid"]] == [0.2, 0.7]
    conditions = measured["eval"]["conditions"]
    assert [c["label"] for c in conditions] == ["T=0.2", "T=0.7"]
    assert all(c["problems"] == 3 and c["samples"] == 6 for c in conditions)  # same problems and n
    [paired] = measured["eval"]["paired"]
    assert paired["against"] == "T=0.2" and paired["problems"] == 3
    assert measured["recommendation"]["verdict"] in ("change", "keep", "cannot tell")
    assert measured["command"].startswith("ssd audit --path") and "--t 0.2,0.7" in measured["command"]
    assert plot.read_bytes().startswith(b"\x89PNG")


@needs_matplotlib
def test_plot_is_a_png_and_leaves_the_report_order_alone() -> None:
    from pipeline.audit.measure import plot_png

    def condition(t: float, p: float) -> dict:
        stat = {"estimate": p, "ci_low": max(0.0, p - 0.1), "ci_high": min(1.0, p + 0.1)}
        return {
            "label": f"T={t:g}",
            "temperature": t,
            "pass_at": {"1": stat},
            "by_difficulty": {"easy": {"pass_at": {"1": stat}}},
        }

    measured = {
        "eval": {
            "model": "smollm2",
            "suite": "basic",
            "conditions": [condition(0.7, 0.35), condition(0.3, 0.4), condition(1.0, 0.2)],
        }
    }
    assert plot_png(measured).startswith(b"\x89PNG")
    assert [c["temperature"] for c in measured["eval"]["conditions"]] == [0.7, 0.3, 1.0]  # current stays first
