"""Part 2: measure which T_eval wins, on the same problems, seeds and n for every temperature.

The grid is the current setting (first, so every other temperature is a paired difference against it),
each other serving/eval temperature the static audit found, 0.3, 0.7 and 1.0, and the paper's T_eval when
the measured model belongs to a family the paper tuned. One ``run_eval`` call measures them all, which is
what makes the comparison paired: ``run_eval`` uses the same problems and seeds per condition.

The recommendation says "change" only when the 95% CI of the paired difference excludes 0; otherwise it says
the data cannot tell and estimates how many problems would, from the per-problem variance observed.
"""

from __future__ import annotations

import math
import shlex
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from typing import TYPE_CHECKING, Any

from core.markdown import md_table
from pipeline.audit.defaults import PAPER_SOURCE, paper_decoding
from pipeline.options import format_value, to_args

if TYPE_CHECKING:
    from pipeline.audit import AuditResult
    from pipeline.evaluate import EvalConfig

FIXED_GRID = (0.3, 0.7, 1.0)
Z_ALPHA, Z_POWER = 1.96, 0.8416  # two-sided 5% test, 80% power
MIN_EFFECT = 0.05  # when the observed difference is ~0: the sample size to see 5 points

# The eval settings a measured audit takes (``ssd audit --measure``, ``/ssd audit measure=yes``), declared in
# ``EvalConfig``, and the audit's own defaults for them: a quick held-out check, not a full eval.
MEASURE_FIELDS = ("model", "suite", "n", "limit", "seed", "max_tokens")
MEASURE_DEFAULTS = {"suite": "basic", "n": 2, "limit": 10}


def measure_command(path: str, cfg: EvalConfig) -> str:
    """The ``ssd audit`` command that measures ``cfg``'s temperature grid again on a checkout at ``path``."""
    flags = to_args(cfg, (*MEASURE_FIELDS, "backend", "base_url"), always=MEASURE_FIELDS, defaults=MEASURE_DEFAULTS)
    return shlex.join(["ssd", "audit", "--path", path, "--measure", *flags, "--t", format_value(cfg.temperatures)])


def current_temperature(result: AuditResult | None) -> tuple[float, str]:
    """The T_eval the repo runs with now: the most common serving/eval temperature found (set or default).

    A README's run instructions count as set: they are how the team says to run it.
    """
    if result is not None:
        evals = [
            f
            for f in result.findings
            if f.param == "temperature" and f.role != "train" and f.number is not None and 0 <= f.number <= 2
        ]
        for pool in ([f for f in evals if not f.implicit], evals):
            if pool:
                counts = Counter(round(f.number, 3) for f in pool)
                value, count = max(counts.items(), key=lambda kv: (kv[1], -kv[0]))
                # An example from configuration over one from documentation, where both hold the value.
                where = min((f for f in pool if round(f.number, 3) == value), key=lambda f: f.documentation)
                return value, (
                    f"most common serving/eval temperature ({count} of {len(pool)}), e.g. "
                    f"{where.path}:{where.line}"
                    + (" (a runtime default)" if where.implicit else "")
                    + (" (documentation)" if where.documentation else "")
                )
    return 1.0, "nothing set anywhere: the OpenAI/vLLM default"


def check_grid(values: Sequence[str]) -> list[str]:
    """Validate a requested grid: ``current`` or temperatures >= 0. Raises ValueError saying why."""
    items = [str(value).strip() for value in values if str(value).strip()]
    if not items:
        raise ValueError("expected a comma-separated list of 'current' and temperatures")
    for item in items:
        if item.lower() == "current":
            continue
        try:
            ok = float(item) >= 0
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(f"expected 'current' or temperatures >= 0, got {item!r}")
    return items


def plan_grid(
    result: AuditResult | None, requested: Sequence[str | float] | None, model: str | None
) -> list[tuple[float, str]]:
    """[(temperature, why it is measured)], the current setting first, no duplicates."""
    current, why_current = current_temperature(result)
    grid: dict[float, str] = {current: f"current: {why_current}"}
    if requested:
        for item in requested:
            if str(item).strip().lower() == "current":
                continue
            value = round(float(item), 3)
            if value < 0:
                raise ValueError(f"temperatures must be >= 0, got {item}")
            grid.setdefault(value, "requested")
        return list(grid.items())
    if result is not None:
        for f in result.findings:
            if f.param == "temperature" and f.role != "train" and f.number is not None and 0 <= f.number <= 2:
                grid.setdefault(round(f.number, 3), f"found at {f.path}:{f.line}")
    for value in FIXED_GRID:
        grid.setdefault(value, "standard grid")
    paper = paper_decoding(model)
    if paper:
        grid.setdefault(paper["t_eval"], f"the paper's T_eval for this model family ({PAPER_SOURCE})")
    return list(grid.items())


def _rates(records: list[Any]) -> dict[float, dict[str, float]]:
    """temperature -> task_id -> pass rate over its samples."""
    passed: dict[float, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        passed[record.temperature][record.task_id].append(record.passed)
    return {t: {task: sum(v) / len(v) for task, v in by_task.items()} for t, by_task in passed.items()}


def problems_needed(diffs: list[float], n: int, pooled: float) -> int | None:
    """Problems (each with ``n`` samples) for a paired test to detect the observed difference (or 5 points)."""
    if not diffs:
        return None
    effect = abs(statistics.fmean(diffs))
    effect = effect if effect >= 0.01 else MIN_EFFECT
    sd = statistics.stdev(diffs) if len(diffs) > 1 else 0.0
    if sd == 0.0:  # every problem agreed; fall back to the binomial spread of two rates of n samples
        sd = math.sqrt(2 * pooled * (1 - pooled) / max(n, 1))
    if sd == 0.0:
        return None
    return math.ceil(((Z_ALPHA + Z_POWER) * sd / effect) ** 2)


def recommend(data: dict[str, Any], records: list[Any], n: int) -> dict[str, Any]:
    """ "change" only when the paired 95% CI excludes 0 in favour of another temperature."""
    conditions = data["conditions"]
    current = conditions[0]
    rates = _rates(records)
    total = sum(c["passed"] for c in conditions)
    samples = sum(c["samples"] for c in conditions)
    if total == 0:
        return {
            "verdict": "cannot tell",
            "text": (
                f"The data cannot tell: the model passed none of {samples} samples at any temperature, so no "
                "temperature can be preferred. Measure a stronger model or an easier suite."
            ),
        }
    better = [p for p in data["paired"] if p["ci_low"] > 0]
    if better:
        best = max(better, key=lambda p: p["delta"])
        return {
            "verdict": "change",
            "to": best["label"],
            "delta": best["delta"],
            "text": (
                f"Change T_eval from {current['label']} to {best['label']}: pass@1 {best['delta'] * 100:+.1f} points "
                f"[{best['ci_low'] * 100:+.1f}, {best['ci_high'] * 100:+.1f}] (paired 95% CI over "
                f"{best['problems']} problems excludes 0)."
            ),
        }
    if not data["paired"]:
        return {"verdict": "cannot tell", "text": "Only one temperature was measured: nothing to compare."}
    best = max(data["paired"], key=lambda p: p["delta"])
    base_rates = rates.get(current["temperature"], {})
    other_rates = rates.get(next(c["temperature"] for c in conditions if c["label"] == best["label"]), {})
    shared = sorted(set(base_rates) & set(other_rates))
    diffs = [other_rates[t] - base_rates[t] for t in shared]
    pooled = total / samples if samples else 0.0
    needed = problems_needed(diffs, n, pooled)
    worse = all(p["ci_high"] < 0 for p in data["paired"])
    head = (
        f"Keep {current['label']}: it beats every other temperature measured."
        if worse
        else f"Keep {current['label']}: the data cannot tell. Best other: {best['label']} "
        f"{best['delta'] * 100:+.1f} points [{best['ci_low'] * 100:+.1f}, {best['ci_high'] * 100:+.1f}], "
        "a CI that includes 0."
    )
    size = ""
    if needed and not worse:
        effect = abs(statistics.fmean(diffs)) if diffs else 0.0
        shown = effect if effect >= 0.01 else MIN_EFFECT
        size = (
            f" From the observed per-problem variance, about {needed:,} problems at n={n} would detect a "
            f"{shown * 100:.1f}-point difference (95% CI, 80% power); this run had {best['problems']}."
        )
    return {"verdict": "keep" if worse else "cannot tell", "problems_needed": needed, "text": head + size}


def measure(
    result: AuditResult | None,
    base: EvalConfig,
    requested: Sequence[str | float] | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> dict[str, Any]:
    """Run the grid through ``run_eval`` with ``base``'s model, suite, n, seeds and sampling settings (its
    temperatures are replaced by the grid); returns a JSON-able dict (config, grid, eval data, recommendation)."""
    from pipeline.evaluate import run_eval

    grid = plan_grid(result, requested, base.model)
    eval_cfg = replace(base, temperatures=[t for t, _ in grid])
    evaluated = run_eval(eval_cfg, progress=progress)
    data = evaluated.to_dict()
    return {
        "config": asdict(eval_cfg),
        "grid": [{"temperature": t, "why": why} for t, why in grid],
        "eval": data,
        "recommendation": recommend(data, evaluated.records, eval_cfg.n),
    }


def plot_png(measured: dict[str, Any]) -> bytes:
    """pass@1 vs T_eval. Conditions are sorted by temperature for the plot (the report lists current first)."""
    from pipeline.plots import pass_vs_temperature_png

    data = measured["eval"]
    ordered = dict(data, conditions=sorted(data["conditions"], key=lambda c: c["temperature"]))
    return pass_vs_temperature_png(ordered, title=f"pass@1 vs T_eval: {data['model']} on {data['suite']}")


def measured_markdown(measured: dict[str, Any], plot_url: str | None = None) -> str:
    from pipeline.evaluate import report_rows

    data = measured["eval"]
    headers, rows, _ = report_rows(data)
    current = data["conditions"][0]["label"]
    paired = [
        f"- {p['label']} − {current} (current): pass@1 {p['delta'] * 100:+.1f} points "
        f"[{p['ci_low'] * 100:+.1f}, {p['ci_high'] * 100:+.1f}] (paired 95% CI, {p['problems']} problems)"
        for p in data["paired"]
    ]
    parts = [
        f"**Measured T_eval** · `{data['model']}` on `{data['suite']}`, n={measured['config']['n']} per "
        "problem, same problems and seeds per temperature · pass@k with bootstrap 95% CI over problems",
        md_table(headers, rows),
    ]
    if paired:
        parts.append("\n".join(paired))
    parts.append(md_table(["T", "why measured"], [[f"{g['temperature']:g}", g["why"]] for g in measured["grid"]]))
    if plot_url:
        parts.append(f"![pass@1 vs temperature]({plot_url})")
    parts.append(f"**Recommendation**: {measured['recommendation']['text']}")
    return "\n\n".join(parts)


def measured_text(measured: dict[str, Any]) -> str:
    from pipeline.evaluate import report_rows

    data = measured["eval"]
    headers, rows, paired = report_rows(data)
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    lines = ["", f"Measured T_eval: {data['model']} on {data['suite']}, n={measured['config']['n']}"]
    lines += ["  " + "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) for row in [headers, *rows]]
    lines += [f"  {line}" for line in paired]
    lines += [f"  T={g['temperature']:g}: {g['why']}" for g in measured["grid"]]
    lines.append(f"Recommendation: {measured['recommendation']['text']}")
    return "\n".join(lines)
