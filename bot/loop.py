"""The continuous loop as the service runs it: settings in, run lock held, tracking issue told.

- ``run_nightly()``: the job ``ssd.scheduler`` enqueues at ``SSD_NIGHTLY_CRON`` (on the ``cpu`` queue).
- ``run_once(settings)``: one run now (``ssd loop run-once``, ``/ssd train source=buffer``); returns the
  ``ssd loop run-once --json`` shape.
- ``rollback(settings, version)``: ``/ssd rollback`` and ``ssd adapters rollback``.

The ML lives in ``pipeline.loop.run``; this module only wires it to Redis (the lock), the buffer, the serving
target the settings choose, and Gitea (one comment per run on ``SSD_TRACKING_ISSUE``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import redis as redis_lib

from bot.serving import serving_target, serving_url
from core.config import Settings
from core.loop_lock import LockHeld, RunLock
from core.markdown import md_table
from pipeline.loop.run import (
    FAILED,
    SKIPPED,
    LoopConfig,
    RunContext,
    RunStore,
    new_run_id,
    render_report,
    result_json,
    run_loop,
    served_now,
)

log = logging.getLogger(__name__)

LOCK_TTL = 600.0  # seconds a dead run blocks the next one (the heartbeat keeps a live run's lock)


def loop_dir(settings: Settings) -> Path:
    return settings.data_dir / "loop"


def loop_config(settings: Settings, **overrides: Any) -> LoopConfig:
    values: dict[str, Any] = dict(
        loop_dir=loop_dir(settings),
        registry_root=settings.data_dir / "adapters",
        base_model=settings.default_model,
        mode=settings.loop_mode,
        min_examples=settings.loop_min_examples,
        suites=tuple(settings.loop_suites),
        eval_limit=settings.loop_eval_limit,
        margin=settings.gate_margin,
    )
    return LoopConfig(**{**values, **overrides})


def _buffer_examples(settings: Settings) -> list[Any]:
    from core.db import engine_for
    from pipeline.buffer import TrainingBuffer

    return TrainingBuffer(engine_for(settings.database_url), window=settings.buffer_size).active()


def run_once(
    settings: Settings,
    conn: redis_lib.Redis | None = None,
    trigger: str = "manual",
    progress: Any = None,
    cancel: Any = None,
    config: LoopConfig | None = None,
    evaluate: Any = None,
) -> dict[str, Any]:
    """One loop run under the run lock, reported to the tracking issue; the ``run-once --json`` shape."""
    from core.redis_conn import connect

    conn = conn if conn is not None else connect(settings)
    cfg = config or loop_config(settings)
    run_id = new_run_id()
    target = serving_target(settings)
    lock = RunLock(conn, run_id, ttl=LOCK_TTL)
    try:
        lock.acquire()
    except LockHeld as exc:
        # Not recorded as a run: the one in progress will report itself.
        return {
            "run": run_id,
            "decision": SKIPPED,
            "reason": str(exc),
            "snapshot": {"hash": None, "size": 0},
            "candidate": None,
            "gate": {},
            "serving": served_now(target, serving_url(settings)),
        }
    try:
        try:
            examples = _buffer_examples(settings)
        except Exception as exc:  # the buffer's database is away: a failed run, recorded and reported
            log.exception("loop run %s: reading the buffer failed", run_id)
            record = {
                "run": run_id,
                "decision": FAILED,
                "trigger": trigger,
                "snapshot": {"hash": None, "size": 0},
                "reason": f"the training buffer could not be read ({type(exc).__name__})",
                "candidate": None,
                "gate": {},
                "serving": served_now(target, serving_url(settings)),
            }
            RunStore(cfg.loop_dir).save(record)
        else:
            ctx = RunContext(
                examples=examples,
                target=target,
                ensure_held=lock.ensure_held,
                progress=progress,
                cancel=cancel,
                evaluate=evaluate,
                trigger=trigger,
                serving_url=serving_url(settings),
            )
            record = run_loop(cfg, ctx, run_id)
    finally:
        lock.release()
    report(settings, record)
    return result_json(record)


def run_nightly() -> dict[str, Any]:
    """The rq.cron job (``ssd.scheduler.NIGHTLY_FUNCTION``)."""
    return run_once(Settings.from_env(), trigger="nightly")


def report(settings: Settings, record: dict[str, Any]) -> None:
    """One comment per run on ``SSD_TRACKING_ISSUE`` (best effort: a Gitea outage does not fail the run)."""
    if settings.tracking_issue is None:
        return
    from bot.gitea import gitea_from_settings

    owner, repo, index = settings.tracking_issue
    body = render_report(record)
    gitea = gitea_from_settings(settings)
    try:
        comment = gitea.create_comment(owner, repo, index, body)
        curve = (record.get("training") or {}).get("loss_curve") or []
        if curve and comment.get("id"):
            from pipeline.plots import loss_curve_png

            png = loss_curve_png(curve, f"loop run {record['run']}: {record['candidate']}")
            uploaded = gitea.upload_comment_attachment(owner, repo, int(comment["id"]), "loss.png", png, "image/png")
            link = uploaded.get("browser_download_url")
            if link:
                gitea.edit_comment(owner, repo, int(comment["id"]), body + f"\n\n![training loss]({link})")
    except Exception:
        log.exception("loop run %s: the tracking-issue report failed", record["run"])


def rollback(settings: Settings, version: str | None = None, conn: redis_lib.Redis | None = None) -> dict[str, Any]:
    """``/ssd rollback``: the same as ``ssd adapters rollback`` (serving first, verified, then the registry)."""
    from bot.serving import rollback_everywhere

    return rollback_everywhere(settings, version, conn)


def status_lines(settings: Settings, runs: int = 5) -> list[str]:
    """For ``/ssd status``: the last runs, the promoted adapter and its gate metrics, the next nightly run."""
    from core.config import next_nightly
    from pipeline.training.adapters import AdapterRegistry

    lines = []
    records = RunStore(loop_dir(settings)).last(runs)
    if records:
        rows = [
            [
                f"`{r['run']}`",
                r.get("trigger", "?"),
                f"**{r['decision']}**",
                r.get("candidate") or "—",
                _one_line(r.get("reason", "")),
            ]
            for r in reversed(records)
        ]
        lines.append("**Last loop runs**\n\n" + md_table(["Run", "Trigger", "Decision", "Candidate", "Why"], rows))
    else:
        lines.append("**Last loop runs**: none yet.")
    promoted = AdapterRegistry(settings.data_dir / "adapters").promoted()
    if promoted is None:
        lines.append("**Promoted adapter**: none (the base model is served).")
    else:
        gate = promoted.metrics.get("gate") or {}
        overall = next((row for row in gate.get("rows", []) if row["scope"] == "overall"), None)
        metric = (
            f"; gate pass@1 {100 * overall['candidate']:.1f}% vs {100 * overall['current']:.1f}% "
            f"({gate.get('against', '?')}), Δ {100 * overall['difference']:+.1f} "
            f"[{100 * overall['ci_low']:+.1f}, {100 * overall['ci_high']:+.1f}] on {overall['problems']} problems"
            if overall
            else ""
        )
        lines.append(f"**Promoted adapter**: `{promoted.id}` (created {promoted.created}){metric}.")
    try:
        served = served_now(serving_target(settings), serving_url(settings))
        lines.append(f"**Served**: `{served['model']}` on `{served['target']}`.")
    except Exception as exc:  # a broken serving state file must not break /ssd status
        lines.append(f"**Served**: unknown ({type(exc).__name__}).")
    lines.append(
        f"**Next nightly run**: {next_nightly(settings):%Y-%m-%d %H:%M} UTC "
        f"(`{settings.nightly_cron}` in {settings.nightly_tz})."
    )
    return lines


def _one_line(text: str, limit: int = 120) -> str:
    text = " ".join(str(text).split())  # md_table escapes the pipes
    return text if len(text) <= limit else text[: limit - 1] + "…"


__all__ = ["FAILED", "loop_config", "report", "rollback", "run_nightly", "run_once", "serving_target", "status_lines"]
