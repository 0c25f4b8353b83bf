"""Report plots as PNG bytes: pass@1 against temperature, the training loss curve (matplotlib's Agg backend;
imported lazily: it is slow)."""

from __future__ import annotations

import io
from typing import Any


def pass_vs_temperature_png(result: dict[str, Any], title: str | None = None, k: int = 1) -> bytes:
    """PNG bytes of pass@k (default 1) per temperature with 95% CI bars, overall and per difficulty.

    ``result`` is ``EvalResult.to_dict()``.
    """
    import matplotlib

    matplotlib.use("Agg")  # no display on workers
    from matplotlib.figure import Figure

    conditions = [c for c in result["conditions"] if c.get("temperature") is not None]
    key = str(k)
    fig = Figure(figsize=(6, 4), dpi=100)
    ax = fig.add_subplot()
    series: list[tuple[str, list[float], list[dict[str, float]]]] = []
    series.append(("all", [c["temperature"] for c in conditions], [c["pass_at"][key] for c in conditions]))
    difficulties = sorted({d for c in conditions for d in c.get("by_difficulty", {})})
    for difficulty in difficulties:
        rows = [
            (c["temperature"], c["by_difficulty"][difficulty]["pass_at"].get(key))
            for c in conditions
            if difficulty in c.get("by_difficulty", {})
        ]
        rows = [(t, v) for t, v in rows if v is not None]
        series.append((difficulty, [t for t, _ in rows], [v for _, v in rows]))
    for label, temps, stats in series:
        if not temps:
            continue
        values = [s["estimate"] * 100 for s in stats]
        low = [max(0.0, (s["estimate"] - s["ci_low"]) * 100) for s in stats]
        high = [max(0.0, (s["ci_high"] - s["estimate"]) * 100) for s in stats]
        ax.errorbar(
            temps, values, yerr=[low, high], marker="o", capsize=4, linewidth=2 if label == "all" else 1, label=label
        )
    ax.set_xlabel("temperature")
    ax.set_ylabel(f"pass@{k} (%), 95% CI")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    if len(series) > 1:
        ax.legend()
    ax.set_title(title or f"{result.get('model', '')} on {result.get('suite', '')}")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    return buffer.getvalue()


def loss_curve_png(curve: list[dict[str, float]], title: str) -> bytes:
    """The training loss per optimizer step as a PNG."""
    import matplotlib

    matplotlib.use("Agg")  # no display on workers
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.5), dpi=100)
    ax = fig.add_subplot()
    ax.plot([p["step"] for p in curve], [p["loss"] for p in curve], marker="o" if len(curve) < 30 else None)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss (assistant tokens)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()
