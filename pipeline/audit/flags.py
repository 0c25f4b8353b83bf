"""Flags: the findings a person should look at, with the reason from the paper or the runtime."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from pipeline.audit.collect import FileScan
from pipeline.audit.defaults import DEFAULTS
from pipeline.audit.findings import PRIMARY, Finding, Flag

EVAL_MAX_TEMPERATURE = 1.5  # above this a decoding temperature is rarely intended (the paper's T_eval ≤ 1.1)


def _fmt(value: float) -> str:
    return f"{value:g}"


def _where(findings: Iterable[Finding], show: int = 6) -> str:
    """Places as `path:line`, the first ``show`` of them (a flag on a big repo stays one readable line)."""
    places = [f"`{f.path}:{f.line}`" for f in findings]
    more = f" and {len(places) - show} more" if len(places) > show else ""
    return ", ".join(places[:show]) + more


def _places(findings: Iterable[Finding]) -> tuple[tuple[str, int], ...]:
    return tuple(sorted({(f.path, f.line) for f in findings}))


def compute_flags(findings: list[Finding], scans: list[FileScan]) -> list[Flag]:
    flags: list[Flag] = []
    temps = [f for f in findings if f.param == "temperature" and f.number is not None]

    # 1. T_eval == T_train: SSD samples at T_train and decodes at a separately tuned T_eval (they compose as
    #    T_eff = T_train x T_eval), so equal values mean the eval side was never tuned.
    train = [f for f in temps if f.role == "train" and not f.implicit]
    evals = [f for f in temps if f.role == "eval"]
    for value in sorted({f.number for f in train} & {f.number for f in evals}):
        t = [f for f in train if f.number == value]
        e = [f for f in evals if f.number == value and _same_model(f, t)]
        if e:
            flags.append(
                Flag(
                    "teval_equals_ttrain",
                    f"T_eval equals T_train ({_fmt(value)}): training/sampling at {_where(t)}, "
                    f"serving/eval at {_where(e)}. The SSD paper tunes T_eval separately (Qwen3-4B-"
                    "Instruct: T_train 1.6, T_eval 1.1; they compose as T_eff = T_train × T_eval); "
                    "measure T_eval with `--measure`.",
                    _places([*t, *e]),
                )
            )

    # 2. Greedy where an agent retries: every retry of the same prompt returns the same answer.
    retrying = {s.path for s in scans if s.mentions_retry}
    for f in temps:
        agent = "agent" in f.path.lower() or "agent" in f.key.lower()
        if f.number == 0 and f.role != "train" and (f.path in retrying or agent):
            why = "the file retries" if f.path in retrying else "an agent"
            flags.append(
                Flag(
                    "greedy_retry",
                    f"temperature 0 (greedy) at `{f.path}:{f.line}` where {why}: every retry of the same "
                    "prompt gets the same answer, so retries (pass@k) buy nothing; sample at T > 0.",
                    _places([f]),
                )
            )

    # 3. Extreme or invalid values.
    for f in findings:
        value = f.number
        if value is None or f.implicit:
            continue
        problem = None
        if f.param == "temperature" and value < 0:
            problem = "a negative temperature is invalid"
        elif f.param == "temperature" and value > EVAL_MAX_TEMPERATURE and f.role != "train":
            problem = (
                f"temperature {_fmt(value)} > {EVAL_MAX_TEMPERATURE} for serving/eval (the paper's T_eval "
                "values are 0.7–1.1; high values belong to T_train)"
            )
        elif f.param == "top_p" and not 0 < value <= 1:
            problem = f"top_p {_fmt(value)} is outside (0, 1]"
        elif f.param == "min_p" and not 0 <= value <= 1:
            problem = f"min_p {_fmt(value)} is outside [0, 1]"
        elif f.param == "top_k" and value < -1:
            problem = f"top_k {_fmt(value)} is negative"
        elif f.param == "repeat_penalty" and value <= 0:
            problem = f"repeat_penalty {_fmt(value)} must be > 0"
        if problem:
            flags.append(Flag("extreme", f"`{f.path}:{f.line}` `{f.key}`: {problem}.", _places([f])))

    # 4. One model, several serving settings: requests get different behaviour depending on the path taken.
    by_model: dict[tuple[str, str], list[Finding]] = defaultdict(list)
    for f in findings:
        if f.model and f.role != "train" and f.number is not None and f.param in PRIMARY:
            by_model[(f.model.lower(), f.param)].append(f)
    for (model, param), group in sorted(by_model.items()):
        values = sorted({f.number for f in group})
        if len(values) > 1:
            detail = "; ".join(
                f"{_fmt(f.number)} at `{f.path}:{f.line}`" + (" (default)" if f.implicit else "")
                for f in sorted(group, key=lambda f: (f.number, f.path, f.line))
            )
            flags.append(
                Flag(
                    "inconsistent_model",
                    f"`{model}` is served with different {param} values: {detail}.",
                    _places(group),
                )
            )

    # 5. Settings read from environment variables that nothing in the repo defines.
    defined = set().union(*(s.env_defined for s in scans)) if scans else set()
    undefined: dict[str, list[Finding]] = defaultdict(list)
    for f in findings:
        if f.env_var and f.env_var not in defined:
            undefined[f.env_var].append(f)
    for name, group in sorted(undefined.items()):
        fallback = ", ".join(sorted({f"{f.env_default}" for f in group if f.env_default is not None}))
        then = f"falls back to {fallback}" if fallback else _no_fallback(group)
        flags.append(
            Flag(
                "undefined_env",
                f"`{name}` sets {group[0].param} at {_where(group)} but is defined nowhere in the repo "
                f"(.env, compose, Dockerfile, systemd, scripts): unless the deployment sets it, it {then}.",
                _places(group),
            )
        )
    return flags


def _same_model(f: Finding, others: list[Finding]) -> bool:
    return any(not f.model or not o.model or f.model.lower() == o.model.lower() for o in others)


def _no_fallback(group: list[Finding]) -> str:
    if any(f.format == "python" and "environ[" in (f.expr or "") for f in group):
        return "raises KeyError"
    return (
        "is empty (the runtime default applies: "
        + ", ".join(
            f"{d.label} {d.values['temperature']:g}"
            for d in (DEFAULTS["ollama"], DEFAULTS["llamacpp"], DEFAULTS["openai"])
        )
        + ")"
    )
