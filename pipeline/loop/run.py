"""One run of the continuous loop: buffer snapshot -> training set -> fine-tune -> paired gate -> promote ->
verified deploy -> record. No Gitea, RQ or Settings here: ``bot.loop`` reads the settings into a
``LoopConfig``, holds the run lock and reports; this module does the ML and keeps the run records.

Order matters for "a run that dies changes nothing": the candidate is deployed (the serving target verifies
it and puts the previous deployment back on failure) before the registry's promoted pointer moves, and both
happen only after the gate said yes. A run killed anywhere before that leaves serving and the promoted
adapter as they were; its record stays ``running`` and the next run marks it ``failed``.

Runs are kept as one JSON file each under ``<loop dir>/runs/`` (written atomically; names sort by time).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import threading
import time
import traceback
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.markdown import md_table
from pipeline.loop.gate import GateDecision, ProblemResult, decide
from pipeline.serving.base import BASE_ID, DeployFailed, ServingError, ServingTarget, write_json_atomic
from pipeline.types import DEFAULT_MAX_TOKENS

log = logging.getLogger(__name__)

MODES = ("accepted", "self", "mixed")
PROMOTED, REJECTED, SKIPPED, FAILED, RUNNING = "promoted", "rejected", "skipped", "failed", "running"
RUN_ID_PREFIX = "r-"
Progress = Callable[[float, str], None]
Evaluate = Callable[[Any], Any]  # EvalConfig -> EvalResult (pipeline.evaluate.run_eval)


class LoopError(RuntimeError):
    """A run cannot go on; the message says why (it is shown to people: no paths, no tracebacks)."""


@dataclass(frozen=True)
class LoopConfig:
    """Everything a run needs, explicit (``bot.loop.loop_config`` builds it from the settings)."""

    loop_dir: Path  # run records and training sets
    registry_root: Path  # the adapter registry
    base_model: str
    mode: str = "accepted"  # accepted | self | mixed (see build_training_set)
    min_examples: int = 20
    suites: tuple[str, ...] = ("basic",)
    eval_limit: int | None = 40  # problems per suite
    eval_n: int = 1  # samples per problem (both conditions, same seeds)
    eval_max_tokens: int = DEFAULT_MAX_TOKENS
    eval_backend: str = "transformers"  # applies the PEFT adapter to the base (as ``ssd compare`` does)
    t_eval: float | None = None  # None: the model family's preset
    t_train: float | None = None  # for mode self/mixed; None: the preset's
    sample_max_tokens: int = DEFAULT_MAX_TOKENS
    margin: float = 0.05
    seed: int = 0
    finetune: dict[str, Any] = field(default_factory=dict)  # FinetuneConfig fields

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"training mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if not self.suites:
            raise ValueError("the gate needs at least one suite")


def new_run_id(now: datetime | None = None) -> str:
    """Time-ordered (to the microsecond), so run files sort in the order the runs started."""
    now = now or datetime.now(UTC)
    return f"{RUN_ID_PREFIX}{now:%Y%m%d-%H%M%S-%f}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# --------------------------------------------------------------------------- run records


class RunStore:
    """``<loop dir>/runs/<run id>.json``, one per run, oldest first by name."""

    def __init__(self, loop_dir: Path) -> None:
        self.dir = Path(loop_dir) / "runs"

    def save(self, record: dict[str, Any]) -> None:
        write_json_atomic(self.dir / f"{record['run']}.json", record)

    def all(self) -> list[dict[str, Any]]:
        if not self.dir.is_dir():
            return []
        records = []
        for path in sorted(self.dir.glob(f"{RUN_ID_PREFIX}*.json")):
            try:
                records.append(json.loads(path.read_text()))
            except ValueError:
                log.warning("loop: unreadable run record %s", path.name)
        return records

    def last(self, count: int = 5) -> list[dict[str, Any]]:
        return self.all()[-count:]

    def mark_dead_runs_failed(self) -> list[str]:
        """Runs still ``running`` while the caller holds the run lock died (killed, OOM, host lost)."""
        dead = []
        for record in self.all():
            if record.get("decision") == RUNNING:
                record.update(
                    decision=FAILED,
                    finished=_now(),
                    reason="the run died before it finished (process killed or host lost); serving and "
                    "the promoted adapter were left as they were",
                )
                self.save(record)
                dead.append(record["run"])
        return dead


# --------------------------------------------------------------------------- snapshot and training set


def example_key(example: Any) -> str:
    return f"{example.repo}#{example.pr_number}@{example.merge_sha}"


def snapshot(examples: Sequence[Any], previous: dict[str, Any] | None) -> dict[str, Any]:
    """The buffer as this run sees it: a content hash (order-independent), size, repositories, and how many
    examples are new since the previous run's snapshot."""
    digest = hashlib.sha256()
    for key, prompt, answer in sorted((example_key(e), e.prompt, e.answer) for e in examples):
        for part in (key, prompt, answer):
            digest.update(hashlib.sha256(part.encode()).digest())
    max_id = max((e.id or 0 for e in examples), default=0)
    last_max = (previous or {}).get("max_id")
    new = len(examples) if last_max is None else sum(1 for e in examples if (e.id or 0) > last_max)
    return {
        "hash": digest.hexdigest(),
        "size": len(examples),
        "new": new,
        "max_id": max_id,
        "repos": sorted({e.repo for e in examples}),
    }


def _save_messages(out: Path, rows: list[tuple[str, str, str]], source: str) -> None:
    """A ``messages`` dataset in the form ``ssd sample`` writes (what ``finetune`` reads)."""
    import datasets

    features = datasets.Features(
        {
            "messages": [{"role": datasets.Value("string"), "content": datasets.Value("string")}],
            "prompt_id": datasets.Value("string"),
            "source": datasets.Value("string"),
        }
    )
    table = {
        "messages": [[{"role": "user", "content": p}, {"role": "assistant", "content": a}] for _, p, a in rows],
        "prompt_id": [i for i, _, _ in rows],
        "source": [source] * len(rows),
    }
    datasets.Dataset.from_dict(table, features=features).save_to_disk(str(out))


def build_training_set(
    cfg: LoopConfig,
    examples: Sequence[Any],
    out: Path,
    snap: dict[str, Any],
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> dict[str, Any]:
    """Write the run's training set to ``out``; returns its provenance (also written as provenance.json).

    - ``accepted``: each merged PR's diff as the answer to its issue prompt (what the team's plan describes).
    - ``self``: SSD proper, one self-sample per buffer prompt at T_train from the frozen base (``run_sample``).
    - ``mixed``: both.
    """
    from pipeline.training.sample import prompt_fingerprint

    # Oldest first, the order ``run_sample`` reads the buffer in: the same snapshot gives the same dataset.
    usable = sorted((e for e in examples if e.prompt.strip() and e.answer.strip()), key=lambda e: e.id or 0)
    rows: list[tuple[str, str, str]] = []
    sampling = None
    if cfg.mode in ("accepted", "mixed"):
        rows += [(example_key(e), e.prompt, e.answer) for e in usable]
    if cfg.mode in ("self", "mixed"):
        from pipeline.training.sample import SampleConfig, run_sample

        class _Examples:  # the buffer interface the prompt source reads: active()
            def active(self) -> list[Any]:
                return list(usable)

        sampled_dir = out.parent / "self-sampled"
        result = run_sample(
            SampleConfig(
                prompts="buffer",
                model=cfg.base_model,
                out=str(sampled_dir),
                t_train=cfg.t_train,
                max_tokens=cfg.sample_max_tokens,
                seed=cfg.seed,
            ),
            progress=progress,
            buffer=_Examples(),
            cancel=cancel,
        )
        import datasets

        sampled = datasets.load_from_disk(str(sampled_dir))
        rows += [(row["prompt_id"], row["messages"][0]["content"], row["messages"][1]["content"]) for row in sampled]
        sampling = result.provenance.get("sampling")
    if not rows:
        raise LoopError("the training set is empty (no buffer example has both a prompt and an answer)")
    _save_messages(out, rows, f"loop:{cfg.mode}")
    provenance = {
        "source": f"loop:{cfg.mode}",
        "mode": cfg.mode,
        "snapshot": {k: snap[k] for k in ("hash", "size")},
        "counts": {"prompts": len(usable), "kept": len(rows)},
        "prompt_ids": [i for i, _, _ in rows],
        "prompt_fingerprints": sorted({prompt_fingerprint(p) for _, p, _ in rows}),
        "sampling": sampling,
    }
    (out / "provenance.json").write_text(json.dumps(provenance, indent=2, ensure_ascii=False))
    return provenance


# --------------------------------------------------------------------------- the paired evaluation


def problem_results(result: Any) -> list[ProblemResult]:
    """Per-problem counts from an ``EvalResult`` (one temperature)."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    difficulty: dict[str, str | None] = {}
    for record in result.records:
        counts[record.task_id][0] += 1
        counts[record.task_id][1] += int(record.passed)
        difficulty[record.task_id] = record.difficulty
    return [
        ProblemResult(suite=result.suite, task_id=task, difficulty=difficulty[task], n=n, correct=correct)
        for task, (n, correct) in sorted(counts.items())
    ]


def t_eval_for(cfg: LoopConfig) -> float:
    from pipeline.training.presets import preset_for

    return cfg.t_eval if cfg.t_eval is not None else preset_for(cfg.base_model).t_eval


def evaluate_pair(
    cfg: LoopConfig, candidate_path: str, current_path: str | None, evaluate: Evaluate, progress: Progress | None = None
) -> tuple[list[ProblemResult], list[ProblemResult]]:
    """The candidate and the current model (promoted adapter or base) on every gate suite: same problems,
    same temperature, same seeds, same n."""
    from pipeline.evaluate import EvalConfig
    from pipeline.training.compare import eval_model_spec

    report = progress or (lambda fraction, message: None)
    model = eval_model_spec(cfg.base_model, cfg.eval_backend, cfg.registry_root)
    candidate: list[ProblemResult] = []
    current: list[ProblemResult] = []
    steps = len(cfg.suites) * 2
    for index, suite in enumerate(cfg.suites):
        base_cfg = EvalConfig(
            suite=suite,
            model=model,
            backend=cfg.eval_backend,
            temperatures=[t_eval_for(cfg)],
            n=cfg.eval_n,
            limit=cfg.eval_limit,
            seed=cfg.seed,
            max_tokens=cfg.eval_max_tokens,
        )
        for offset, (label, adapter, sink) in enumerate(
            (("current", current_path, current), ("candidate", candidate_path, candidate))
        ):
            report((2 * index + offset) / steps, f"gate: {label} on {suite}")
            sink.extend(problem_results(evaluate(replace(base_cfg, adapter=adapter))))
    return candidate, current


# --------------------------------------------------------------------------- the run


@dataclass
class RunContext:
    """What a run acts on, besides its config."""

    examples: Sequence[Any]  # the buffer's active examples (pipeline.buffer.Example)
    target: ServingTarget
    ensure_held: Callable[[], None] = lambda: None  # raises when the run lock was lost
    progress: Progress | None = None
    cancel: threading.Event | None = None
    evaluate: Evaluate | None = None  # default: pipeline.evaluate.run_eval
    trigger: str = "manual"
    serving_url: str = ""  # the target's OpenAI base URL, shown while nothing was ever deployed


def served_now(target: ServingTarget, url: str = "") -> dict[str, Any]:
    """What the target serves (its last verified deployment), or the base when nothing was deployed yet."""
    served = target.current()
    if served is not None:
        return served.to_dict()
    return {"target": target.name, "url": url, "model": BASE_ID}


def run_loop(cfg: LoopConfig, ctx: RunContext, run_id: str | None = None) -> dict[str, Any]:
    """One run; returns its record (also saved). Never raises for a failed step: the record says ``failed``."""
    from pipeline.training.adapters import AdapterRegistry

    store = RunStore(cfg.loop_dir)
    if store.mark_dead_runs_failed():
        # A dead run may have died mid-swap: serve the last verified deployment again before anything else.
        try:
            ctx.target.reconcile()
        except Exception as exc:
            log.warning("loop: reconciling %s after a dead run failed: %s", ctx.target.name, exc)
    registry = AdapterRegistry(cfg.registry_root)
    previous = next((r for r in reversed(store.all()) if r.get("decision") in (PROMOTED, REJECTED)), None)
    snap = snapshot(ctx.examples, previous.get("snapshot") if previous else None)
    promoted = registry.promoted()
    record: dict[str, Any] = {
        "run": run_id or new_run_id(),
        "decision": RUNNING,
        "reason": "",
        "trigger": ctx.trigger,
        "started": _now(),
        "finished": None,
        "mode": cfg.mode,
        "snapshot": snap,
        "candidate": None,
        "current": promoted.id if promoted else None,
        "training": None,
        "gate": {},
        "serving": served_now(ctx.target, ctx.serving_url),
    }
    report = ctx.progress or (lambda fraction, message: None)

    def finish(decision: str, reason: str) -> dict[str, Any]:
        record.update(
            decision=decision, reason=reason, finished=_now(), serving=served_now(ctx.target, ctx.serving_url)
        )
        store.save(record)
        log.info("loop run %s: %s: %s", record["run"], decision, reason)
        return record

    if snap["size"] < cfg.min_examples:
        return finish(
            SKIPPED,
            f"the buffer holds {snap['size']} examples; a run needs at least {cfg.min_examples} "
            "(SSD_LOOP_MIN_EXAMPLES)",
        )
    if previous is not None and previous["snapshot"]["hash"] == snap["hash"]:
        return finish(
            SKIPPED,
            f"the buffer has not changed since run {previous['run']} ({previous['decision']}); nothing new to train on",
        )
    if promoted is not None and promoted.base_model != cfg.base_model:
        return finish(
            FAILED,
            f"the promoted adapter {promoted.id} was trained on another base model than the one "
            "configured now; roll back to `base` (or the matching adapter) first",
        )
    store.save(record)
    work = Path(cfg.loop_dir) / record["run"]
    try:
        report(0.0, f"building the training set ({cfg.mode}) from {snap['size']} examples")
        dataset = build_training_set(cfg, ctx.examples, work / "dataset", snap, ctx.progress, ctx.cancel)
        report(0.2, "fine-tuning")
        candidate = _train(cfg, work / "dataset", registry, ctx)
        record["candidate"] = candidate.id
        record["training"] = _training_summary(candidate, dataset)
        store.save(record)
        from pipeline.evaluate import run_eval

        evaluate = ctx.evaluate or run_eval
        current_path = str(promoted.path) if promoted else None

        def gate_progress(fraction: float, message: str) -> None:
            report(0.5 + 0.4 * fraction, message)

        ours, theirs = evaluate_pair(cfg, str(candidate.path), current_path, evaluate, gate_progress)
        decision = decide(ours, theirs, margin=cfg.margin, seed=cfg.seed)
        record["gate"] = gate_summary(decision, cfg)
        registry.set_metrics(
            candidate.id, {"gate": {"run": record["run"], "against": record["current"] or BASE_ID, **record["gate"]}}
        )
        if not decision.promote:
            return finish(REJECTED, decision.reason)
        report(0.9, f"deploying {candidate.id} ({ctx.target.name})")
        ctx.ensure_held()  # never swap what is served after the lock expired (another run may be going)
        ctx.target.deploy(candidate.id, candidate.path, candidate.gguf, cfg.base_model, t_eval_for(cfg))
        registry.promote(candidate.id)
        return finish(PROMOTED, f"{decision.reason}; deployed and verified on `{ctx.target.name}`")
    except DeployFailed as exc:
        kept = f"`{exc.restored.model}` is served again" if exc.restored else "nothing was served before"
        return finish(FAILED, f"deploy failed, nothing promoted ({kept}): {exc}")
    except ServingError as exc:
        return finish(FAILED, f"serving refused the candidate, nothing promoted: {exc}")
    except Exception as exc:  # any step: the record says failed; serving and the pointer were not touched
        log.error("loop run %s failed:\n%s", record["run"], traceback.format_exc())
        return finish(FAILED, f"{type(exc).__name__}: {_first_line(exc)}")
    finally:
        shutil.rmtree(work / "self-sampled", ignore_errors=True)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else "no message"


def _train(cfg: LoopConfig, dataset_dir: Path, registry: Any, ctx: RunContext) -> Any:
    from pipeline.training.config import FinetuneConfig
    from pipeline.training.finetune import finetune

    def step(fraction: float, message: str) -> None:
        if ctx.progress:
            ctx.progress(0.2 + 0.3 * fraction, f"fine-tune: {message}")

    return finetune(
        dataset_dir, cfg.base_model, FinetuneConfig.from_dict(cfg.finetune), registry, progress=step, cancel=ctx.cancel
    )


def _training_summary(record: Any, dataset: dict[str, Any]) -> dict[str, Any]:
    train = record.metrics.get("train", {})
    curve = record.loss_curve
    return {
        "examples": dataset["counts"]["kept"],
        "mode": dataset["mode"],
        "steps": train.get("steps"),
        "first_loss": curve[0]["loss"] if curve else None,
        "final_loss": curve[-1]["loss"] if curve else None,
        "runtime_s": train.get("runtime_s"),
        "loss_curve": curve,
    }


def gate_summary(decision: GateDecision, cfg: LoopConfig) -> dict[str, Any]:
    return {
        **decision.to_dict(),
        "suites": list(cfg.suites),
        "limit": cfg.eval_limit,
        "n": cfg.eval_n,
        "t_eval": t_eval_for(cfg),
        "seed": cfg.seed,
    }


def result_json(record: dict[str, Any]) -> dict[str, Any]:
    """The shape ``ssd loop run-once --json`` prints."""
    snap = record.get("snapshot") or {}
    serving = record.get("serving") or {}
    return {
        "run": record["run"],
        "decision": record["decision"],
        "reason": record["reason"],
        "snapshot": {"hash": snap.get("hash"), "size": snap.get("size", 0)},
        "candidate": record.get("candidate"),
        "gate": record.get("gate") or {},
        "serving": {"target": serving.get("target"), "url": serving.get("url"), "model": serving.get("model")},
    }


# --------------------------------------------------------------------------- rollback


def rollback(
    registry: Any, target: ServingTarget, base_model: str, temperature: float, version: str | None = None
) -> dict[str, Any]:
    """Serve the previously promoted adapter again (or ``version``: an earlier promoted id, or ``base``), then
    move the registry's pointer. The deploy is verified first; if it fails nothing changes."""
    from pipeline.training.adapters import RegistryError

    current = registry.promoted()
    if current is None:
        raise RegistryError("no adapter is promoted: the base model is already current")
    history = registry.history()
    if version is None:
        wanted = history[-1] if history else None
    elif version == BASE_ID:
        wanted = None
    elif version in history:
        wanted = version
    else:
        raise RegistryError(
            f"{version!r} was not promoted before {current.id} (earlier: {', '.join(history) or 'none'}; or `base`)"
        )
    adapter = registry.get(wanted) if wanted else None
    started = time.monotonic()
    served = target.deploy(
        adapter.id if adapter else None,
        adapter.path if adapter else None,
        adapter.gguf if adapter else None,
        base_model,
        temperature,
    )
    while (registry.promoted().id if registry.promoted() else None) != wanted:
        registry.rollback()
    return {
        "promoted": wanted,
        "previous": current.id,
        "history": registry.history(),
        "serving": served.to_dict(),
        "seconds": round(time.monotonic() - started, 2),
    }


# --------------------------------------------------------------------------- the report


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def render_report(record: dict[str, Any]) -> str:
    """The tracking-issue comment for one run (markdown; no server paths)."""
    snap = record.get("snapshot") or {}
    lines = [
        f"### Loop run `{record['run']}`: **{record['decision']}**",
        "",
        f"{record['reason']}",
        "",
        f"- **Buffer snapshot**: {snap.get('size', 0)} examples ({snap.get('new', 0)} new since the last run) "
        f"from {len(snap.get('repos') or [])} repositories"
        + (f" ({', '.join(snap['repos'][:10])})" if snap.get("repos") else "")
        + f"; hash `{str(snap.get('hash', ''))[:12]}`",
        f"- **Trigger**: {record.get('trigger', '?')}; training mode `{record.get('mode', '?')}`",
    ]
    training = record.get("training")
    if training:
        loss = ""
        if training.get("first_loss") is not None:
            loss = f", loss {training['first_loss']:.3f} → {training['final_loss']:.3f}"
        lines.append(
            f"- **Training**: candidate `{record['candidate']}` on {training['examples']} examples, "
            f"{training.get('steps')} steps{loss}"
        )
    gate = record.get("gate") or {}
    if gate.get("rows"):
        lines += [
            "",
            f"**Gate** (pass@{gate['k']}, paired, {round(100 * gate['level'])}% CI; candidate vs current "
            f"`{record.get('current') or BASE_ID}`; margin {gate['margin']:.3f}; T_eval {gate['t_eval']:g}, "
            f"n {gate['n']}, seed {gate['seed']})",
            "",
            md_table(
                ["scope", "problems", "current", "candidate", "Δ", "CI", "gated", "ok"],
                [
                    [
                        row["scope"],
                        row["problems"],
                        _pct(row["current"]),
                        _pct(row["candidate"]),
                        f"{100 * row['difference']:+.1f}",
                        f"[{100 * row['ci_low']:+.1f}, {100 * row['ci_high']:+.1f}]",
                        "yes" if row["gated"] else "no",
                        "✅" if row["passed"] else "❌",
                    ]
                    for row in gate["rows"]
                ],
                align="lrrrrlcc",
            ),
        ]
    serving = record.get("serving") or {}
    lines += [
        "",
        f"**Served now**: `{serving.get('model')}` on `{serving.get('target')}`"
        + (f" at {serving['url']}" if serving.get("url") else ""),
    ]
    return "\n".join(lines)
