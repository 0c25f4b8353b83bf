"""SSD step 3: the base model vs the same model with a registered adapter, on a held-out suite at T_eval.

Both conditions run through ``pipeline.evaluate.run_eval`` with the same suite, problems, n, seeds and
sampling parameters, on one backend (by default llama.cpp with the adapter's GGUF export when the base is a GGUF
and the fine-tune exported one, ~6x faster on CPU; else transformers, which applies the PEFT adapter), so
the comparison is paired: the tuned-minus-base pass@1 difference is bootstrapped over problems with
``pipeline.metrics.paired_difference``, overall and per difficulty, with a 95% CI.

Temperatures: by default a small grid around the preset's T_eval (T_eval - 0.2, T_eval, T_eval + 0.2) plus
T_train itself. The best T for the tuned model is reported with the whole grid shown; picking the best on the
same problems it is reported on is optimistic, so ``select_fraction`` splits the problems (a seeded, fixed
split): the best T is chosen on that fraction and the headline figures come from the rest. The paper always
evaluates at a T_eval separate from T_train and describes the two as composing (T_eff = T_train x T_eval);
the claim that evaluating at T_train loses 30-50% of the gain comes from the notes this project started from,
not from the paper. So an equal T_eval gets a warning, and the equal-temperature point is in the default grid:
the report measures the claim instead of assuming it.

An adapter evaluated on problems whose prompts it was trained on (the dataset's prompt ids, or the same prompt
text up to case and whitespace) is flagged in the report with the overlapping task ids.
"""

from __future__ import annotations

import hashlib
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from core.markdown import md_table
from pipeline.training.presets import preset_for
from pipeline.types import DEFAULT_MAX_TOKENS, DIFFICULTIES

Progress = Callable[[float, str], None]

EQUAL_T_WARNING = (
    "T_eval equals T_train ({t:g}). The SSD paper always evaluates at a separately tuned T_eval and describes "
    "the two temperatures as composing (T_eff = T_train x T_eval); the claim that equal temperatures lose "
    "30-50% of the gain comes from this project's starting notes, not from the paper. This report measures it."
)
OPTIMISTIC_NOTE = (
    "the best temperature was chosen on the same problems it is reported on, which flatters it; "
    "use --select-fraction to choose on one part of the suite and report on the other"
)


class CompareError(ValueError):
    """A comparison cannot run; the message says why."""


@dataclass
class CompareConfig:
    adapter: str | None = field(default=None, metadata={"help": "adapter id from the registry", "metavar": "ID"})
    suite: str = field(default="basic", metadata={"help": "held-out suite: a built-in name or a JSONL path"})
    model: str | None = field(
        default=None, metadata={"help": "base model spec; none = the adapter's base model", "metavar": "SPEC"}
    )
    backend: str = field(
        default="auto",
        metadata={
            "help": "backend for BOTH conditions: transformers applies the PEFT adapter; llamacpp the adapter's "
            "GGUF export (~6x faster on CPU); auto = llamacpp when the base is a GGUF and the adapter has "
            "a GGUF export, else transformers",
            "choices": ("auto", "transformers", "llamacpp"),
        },
    )
    preset: str | None = field(default=None, metadata={"help": "decoding preset family; none = from the model"})
    t_eval: list[float] | None = field(
        default=None,
        metadata={
            "help": "evaluation temperatures; none = a grid around the preset T_eval plus T_train",
            "metavar": "T[,T...]",
        },
    )
    t_train: float | None = field(
        default=None,
        metadata={"help": "the temperature the adapter's data was sampled at; none = from its dataset provenance"},
    )
    top_p: float | None = field(default=None, metadata={"help": "nucleus truncation; none = the preset's"})
    top_k: int | None = field(default=None, metadata={"help": "top-k truncation; none = the preset's"})
    n: int = field(default=1, metadata={"help": "samples per problem (same n and seeds for both models)"})
    limit: int | None = field(default=None, metadata={"help": "evaluate the first N problems"})
    seed: int = field(default=0, metadata={"help": "sampling and bootstrap seed"})
    max_tokens: int = field(default=DEFAULT_MAX_TOKENS, metadata={"help": "longest answer in tokens"})
    select_fraction: float | None = field(
        default=None,
        metadata={
            "help": "choose the best T on this fraction of the problems and report on the rest (e.g. 0.5); "
            "none = choose and report on all (optimistic)"
        },
    )
    batch_size: int = field(default=8, metadata={"help": "prompts per generate call"})
    workers: int | None = field(default=None, metadata={"help": "executor processes; none = cores"})

    def __post_init__(self) -> None:
        if self.n < 1:
            raise CompareError(f"n must be >= 1, got {self.n}")
        if self.limit is not None and self.limit < 1:
            raise CompareError(f"limit must be >= 1, got {self.limit}")
        if self.t_eval is not None and (not self.t_eval or any(t <= 0 for t in self.t_eval)):
            raise CompareError("t_eval temperatures must be > 0 (the comparison samples)")
        if self.select_fraction is not None and not 0 < self.select_fraction < 1:
            raise CompareError(f"select_fraction must be in (0, 1), got {self.select_fraction}")


def default_grid(t_eval: float, t_train: float | None, step: float = 0.2) -> list[float]:
    grid = {round(t_eval + d, 4) for d in (-step, 0.0, step) if t_eval + d > 0}
    if t_train is not None:
        grid.add(round(t_train, 4))
    return sorted(grid)


def split_problems(task_ids: list[str], fraction: float, seed: int) -> tuple[set[str], set[str]]:
    """(select, report): a fixed split by a seeded hash of each task id, so reruns split the same way."""
    ranked = sorted(task_ids, key=lambda t: hashlib.sha256(f"{seed}:{t}".encode()).hexdigest())
    cut = max(1, min(len(ranked) - 1, round(len(ranked) * fraction)))
    return set(ranked[:cut]), set(ranked[cut:])


def trained_overlap(dataset: dict[str, Any], problems: list[Any]) -> list[str]:
    """Task ids of ``problems`` whose prompt the adapter's dataset was sampled from."""
    from pipeline.prompts import build_messages
    from pipeline.training.sample import prompt_fingerprint

    ids = set(dataset.get("prompt_ids") or [])
    prints = set(dataset.get("prompt_fingerprints") or [])
    hits = []
    for problem in problems:
        texts = (problem.prompt, build_messages(problem)[-1]["content"])
        if problem.task_id in ids or any(prompt_fingerprint(t) in prints for t in texts):
            hits.append(problem.task_id)
    return hits


def choose_backend(requested: str, model: str, record: Any) -> str:
    """``auto``: llama.cpp when both conditions can run there (a GGUF base and the adapter's GGUF export)."""
    if requested != "auto":
        return requested
    from pipeline.backends import resolve_model

    if record.gguf and not model.startswith("openai:") and resolve_model(model).suffix == ".gguf":
        return "llamacpp"
    return "transformers"


def eval_model_spec(model: str, backend: str, registry_root: Any) -> str:
    """What both conditions load. A GGUF base under transformers is evaluated from the dequantized Hugging
    Face copy the fine-tune made (made now if missing): it loads in seconds instead of ~30 s per condition and
    carries the eos/pad ids of the GGUF metadata, which transformers' GGUF tokenizer conversion gets wrong
    (ML-STACK.md), so both conditions stop where the model stops."""
    from pathlib import Path

    from pipeline.backends import resolve_model
    from pipeline.provenance import sha256_path

    if backend != "transformers" or model.startswith("openai:"):
        return model
    path = resolve_model(model)
    if path.suffix != ".gguf":
        return model
    from pipeline.training.trainer_child import hf_copy_of_gguf

    return str(hf_copy_of_gguf(path, Path(registry_root) / "runs" / "base-cache" / sha256_path(path)[:16]))


def _outcomes(records: list[Any], temperature: float) -> dict[str, list[bool]]:
    outcomes: dict[str, list[bool]] = defaultdict(list)
    for record in records:
        if record.temperature == temperature:
            outcomes[record.task_id].append(record.passed)
    return outcomes


def _pass_at_1(outcomes: dict[str, list[bool]], tasks: list[str], seed: int) -> dict[str, float]:
    from pipeline import metrics

    counts = [(len(outcomes[t]), sum(outcomes[t])) for t in tasks]
    low, high = metrics.bootstrap_ci(counts, 1, seed=seed)
    return {"estimate": metrics.pass_at_k_mean(counts, 1), "ci_low": low, "ci_high": high, "problems": len(tasks)}


def _paired(
    base: dict[str, list[bool]], tuned: dict[str, list[bool]], tasks: list[str], seed: int
) -> dict[str, float] | None:
    from pipeline import metrics

    shared = [t for t in tasks if t in base and t in tuned]
    if not shared:
        return None
    a = [(len(base[t]), sum(base[t])) for t in shared]
    b = [(len(tuned[t]), sum(tuned[t])) for t in shared]
    diff = metrics.paired_difference(a, b, k=1, seed=seed)
    return {
        "base": diff["a"],
        "tuned": diff["b"],
        "delta": diff["difference"],
        "ci_low": diff["ci_low"],
        "ci_high": diff["ci_high"],
        "problems": len(shared),
    }


def _comparison(
    base: dict, tuned: dict, tasks: list[str], difficulty: dict[str, str | None], seed: int
) -> dict[str, Any]:
    """Paired tuned-minus-base pass@1 on ``tasks``, overall and per difficulty."""
    by_difficulty = {}
    levels = {difficulty[t] for t in tasks if difficulty.get(t)}
    for level in sorted(levels, key=lambda d: (DIFFICULTIES.index(d) if d in DIFFICULTIES else 99, d)):
        bucket = [t for t in tasks if difficulty.get(t) == level]
        by_difficulty[level] = _paired(base, tuned, bucket, seed)
    return {"overall": _paired(base, tuned, tasks, seed), "by_difficulty": by_difficulty}


def run_compare(cfg: CompareConfig, registry: Any, progress: Progress | None = None) -> dict[str, Any]:
    """Evaluate base and tuned on ``cfg.suite`` over the temperature grid; store the summary in the adapter's
    metrics (key ``compare/<suite id>``) in ``registry`` and return it (JSON-serialisable;
    ``render_markdown`` turns it into a report)."""
    from pipeline.evaluate import EvalConfig, run_eval
    from pipeline.suites import load_suite

    if not cfg.adapter:
        raise CompareError("an adapter id is needed (--adapter ID)")
    report = progress or (lambda fraction, message: None)
    started = time.perf_counter()
    record = registry.get(cfg.adapter)
    model = cfg.model or record.base_model
    preset = preset_for(model, cfg.preset)
    sampled_at = (record.dataset.get("sampling") or {}).get("temperature")
    t_train = cfg.t_train if cfg.t_train is not None else sampled_at
    grid = sorted(set(cfg.t_eval)) if cfg.t_eval else default_grid(preset.t_eval, t_train)
    warnings = []
    if t_train is not None and any(abs(t - t_train) < 1e-9 for t in grid):
        warnings.append(EQUAL_T_WARNING.format(t=t_train))
    backend = choose_backend(cfg.backend, model, record)
    if backend == "llamacpp":
        if not record.gguf:
            raise CompareError(f"adapter {record.id} has no GGUF export; use --backend transformers")
        adapter_path = record.gguf
    else:
        adapter_path = str(record.path)

    suite = load_suite(cfg.suite, cfg.limit)
    overlap = trained_overlap(record.dataset, suite.problems)
    if overlap:
        warnings.append(
            f"{len(overlap)} of {len(suite.problems)} problems were in the adapter's training prompts "
            f"({', '.join(overlap[:10])}{' ...' if len(overlap) > 10 else ''}): on those the "
            "comparison measures memorisation, not held-out skill"
        )

    report(0.0, f"preparing {model}")
    base_cfg = EvalConfig(
        suite=cfg.suite,
        model=eval_model_spec(model, backend, registry.root),
        backend=backend,
        temperatures=grid,
        n=cfg.n,
        limit=cfg.limit,
        seed=cfg.seed,
        top_p=cfg.top_p if cfg.top_p is not None else preset.top_p,
        top_k=cfg.top_k if cfg.top_k is not None else preset.top_k,
        max_tokens=cfg.max_tokens,
        batch_size=cfg.batch_size,
        workers=cfg.workers,
    )
    tuned_cfg = replace(base_cfg, adapter=adapter_path)
    results = {}
    for index, (label, eval_cfg) in enumerate((("base", base_cfg), ("tuned", tuned_cfg))):

        def step(fraction: float, message: str, index: int = index, label: str = label) -> None:
            report((index + fraction) / 2, f"{label}: {message}")

        results[label] = run_eval(eval_cfg, progress=step)

    tasks = [p.task_id for p in suite.problems]
    difficulty = {p.task_id: p.difficulty for p in suite.problems}
    if cfg.select_fraction:
        select, held = split_problems(tasks, cfg.select_fraction, cfg.seed)
        select_tasks, report_tasks = [t for t in tasks if t in select], [t for t in tasks if t in held]
    else:
        select_tasks = report_tasks = tasks

    rows = []
    for t in grid:
        base_o, tuned_o = _outcomes(results["base"].records, t), _outcomes(results["tuned"].records, t)
        rows.append(
            {
                "temperature": t,
                "equal_to_t_train": t_train is not None and abs(t - t_train) < 1e-9,
                "base": _pass_at_1(base_o, report_tasks, cfg.seed),
                "tuned": _pass_at_1(tuned_o, report_tasks, cfg.seed),
                "paired": _comparison(base_o, tuned_o, report_tasks, difficulty, cfg.seed),
                "select_tuned": _pass_at_1(tuned_o, select_tasks, cfg.seed)["estimate"],
                "select_base": _pass_at_1(base_o, select_tasks, cfg.seed)["estimate"],
            }
        )
    # Ties go to the temperature nearest the preset's T_eval (the prior), then the lower one.
    best = max(rows, key=lambda r: (r["select_tuned"], -abs(r["temperature"] - preset.t_eval), -r["temperature"]))
    best_base = max(rows, key=lambda r: (r["select_base"], -abs(r["temperature"] - preset.t_eval), -r["temperature"]))
    # The decode-only control: tuned at its best T against base at ITS best T (the paper's sharper comparison).
    best_vs_best = _comparison(
        _outcomes(results["base"].records, best_base["temperature"]),
        _outcomes(results["tuned"].records, best["temperature"]),
        report_tasks,
        difficulty,
        cfg.seed,
    )
    equal = next((r for r in rows if r["equal_to_t_train"]), None)
    summary = {
        "adapter": record.id,
        "base_model": model,
        "eval_model": base_cfg.model,  # differs for a GGUF base: its dequantized copy (eval_model_spec)
        "suite": {
            "id": results["base"].suite,
            "sha256": results["base"].suite_sha256,
            "problems": len(tasks),
            "limit": cfg.limit,
        },
        "backend": backend,
        "n": cfg.n,
        "seed": cfg.seed,
        "t_train": t_train,
        "preset": preset.to_dict(),
        "grid": rows,
        "best": {
            "temperature": best["temperature"],
            **(best["paired"]["overall"] or {}),
            "by_difficulty": best["paired"]["by_difficulty"],
        },
        "best_base_temperature": best_base["temperature"],
        "best_vs_best_base": best_vs_best,
        "equal_temperature": (
            {"temperature": equal["temperature"], **(equal["paired"]["overall"] or {})} if equal else None
        ),
        "selection": (
            {
                "fraction": cfg.select_fraction,
                "select_problems": len(select_tasks),
                "report_problems": len(report_tasks),
            }
            if cfg.select_fraction
            else None
        ),
        "optimistic": not cfg.select_fraction and len(grid) > 1,
        "trained_overlap": overlap,
        "warnings": warnings,
        "config": asdict(cfg),
        "provenance": {"base": results["base"].provenance, "tuned": results["tuned"].provenance},
        "wall_s": round(time.perf_counter() - started, 3),
    }
    # Under one key per suite, so a later comparison on another suite does not overwrite this one.
    stored = {k: v for k, v in summary.items() if k != "provenance"}
    registry.set_metrics(record.id, {f"compare/{suite.id}": stored})
    report(1.0, "done")
    return summary


# ---------------------------------------------------------------- report


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def _stat(stat: dict[str, float] | None) -> str:
    if not stat:
        return "–"
    return f"{stat['estimate'] * 100:.1f}% [{stat['ci_low'] * 100:.1f}, {stat['ci_high'] * 100:.1f}]"


def _delta(paired: dict[str, float] | None) -> str:
    if not paired:
        return "–"
    return (
        f"{paired['delta'] * 100:+.1f} [{paired['ci_low'] * 100:+.1f}, {paired['ci_high'] * 100:+.1f}] "
        f"(n={paired['problems']})"
    )


def render_markdown(summary: dict[str, Any], footer: str | None = None) -> str:
    """The base-vs-tuned report: the grid with CIs, the best T, per difficulty, warnings, a provenance footer."""
    suite = summary["suite"]
    lines = [f"### Base vs tuned: `{summary['adapter']}` on `{suite['id']}`", ""]
    for warning in summary.get("warnings", []):
        lines += [f"> ⚠️ {warning}", ""]
    best_t = summary["best"]["temperature"]
    rows = []
    for row in summary["grid"]:
        marks = []
        if row["temperature"] == best_t:
            marks.append("**best**")
        if row["equal_to_t_train"]:
            marks.append("= T_train")
        label = f"{row['temperature']:g}" + (f" ({', '.join(marks)})" if marks else "")
        rows.append([label, _stat(row["base"]), _stat(row["tuned"]), _delta(row["paired"]["overall"])])
    lines.append(
        md_table(["T_eval", "base pass@1 [95% CI]", "tuned pass@1 [95% CI]", "tuned − base, points [95% CI]"], rows)
    )
    best = next(r for r in summary["grid"] if r["temperature"] == best_t)
    lines += [
        "",
        f"Per difficulty at the best T_eval = {best_t:g}:",
        "",
        md_table(
            ["difficulty", "tuned − base, points [95% CI]"],
            [[level, _delta(paired)] for level, paired in best["paired"]["by_difficulty"].items()],
        ),
    ]
    control = summary.get("best_vs_best_base", {}).get("overall")
    lines += [
        "",
        f"Tuned at T={best_t:g} vs base at its own best T={summary['best_base_temperature']:g}: "
        f"{_delta(control)} points.",
    ]
    if summary.get("equal_temperature"):
        eq = summary["equal_temperature"]
        lines.append(f"At T_eval = T_train = {eq['temperature']:g}: {_delta(eq)} points.")
    if summary.get("selection"):
        sel = summary["selection"]
        lines.append(
            f"Best T chosen on {sel['select_problems']} problems, figures reported on the other "
            f"{sel['report_problems']}."
        )
    elif summary.get("optimistic"):
        lines.append(f"Note: {OPTIMISTIC_NOTE}.")
    lines += ["", "<sub>" + (footer or _footer(summary)) + "</sub>"]
    return "\n".join(lines)


def _footer(summary: dict[str, Any]) -> str:
    suite = summary["suite"]
    prov = summary.get("provenance", {}).get("base", {})
    versions = prov.get("versions", {})
    return (
        f"{summary['base_model']} + {summary['adapter']} · {summary['backend']} · suite {suite['id']} "
        f"sha256 {suite['sha256'][:12]} ({suite['problems']} problems) · n={summary['n']} seed={summary['seed']} "
        f"· T_train {summary['t_train']} · preset {summary['preset']['family']} · "
        f"commit {prov.get('commit') or '?'} · transformers {versions.get('transformers', '?')} · "
        f"{summary['wall_s']:.0f}s"
    )
