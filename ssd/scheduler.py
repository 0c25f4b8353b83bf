"""The scheduler process (``ssd scheduler``): the inbox drain and abandoned-job sweep loop, and the nightly
loop run declared with RQ's own cron scheduler (``rq.cron``, rq 2.12).

``nightly_scheduler(settings, conn)`` builds an ``rq.cron.CronScheduler`` holding one job: at
``SSD_NIGHTLY_CRON`` in ``SSD_NIGHTLY_TZ`` it enqueues, on the ``cpu`` queue, a call of the function
named by ``NIGHTLY_FUNCTION`` (a dotted path, imported when the job runs). ``scheduler.start()`` blocks
and handles SIGTERM, so it runs in a child process of ``ssd scheduler`` (``python -m ssd.scheduler``);
rq records each enqueue in ``rq:cron_job:ssd-nightly:jobs`` and the scheduler in
``CronScheduler.all(conn)``. rq.cron has no cross-instance lock: the loop run takes its own per-run
claim (``core.loop_lock``).

Time zone: rq 2.12 evaluates cron expressions in UTC; ``ZonedCronJob`` evaluates them in the
configured zone instead (DST included, via croniter), and stores the next time in UTC.
"""

from __future__ import annotations

import importlib
import logging
import math
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import redis
import sqlalchemy as sa
from croniter import croniter
from rq.cron import CronJob, CronScheduler
from rq.utils import now

from bot.jobs import report_abandoned
from core.config import ConfigError, Settings
from core.db import engine_for
from core.inbox import PENDING_GRACE, Inbox, enqueue_pending
from core.redis_conn import connect
from ssd.supervise import STOP_GRACE, die_with_parent

log = logging.getLogger(__name__)

SCHEDULER_INTERVAL = 5.0  # seconds between inbox drains
SWEEP_INTERVAL = 30.0  # seconds between sweeps for jobs whose worker was killed

NIGHTLY_FUNCTION = "bot.loop.run_nightly"  # the loop run; written with the run itself (issue #12)
NIGHTLY_NAME = "ssd-nightly"
NIGHTLY_QUEUE = "cpu"


def resolve(path: str) -> Any:
    """The function a dotted path names; ValueError when there is none (a typo fails at start-up)."""
    module_name, _, name = path.rpartition(".")
    if not module_name:
        raise ValueError(f"not a dotted path to a function: {path!r}")
    function = getattr(importlib.import_module(module_name), name, None)
    if not callable(function):
        raise ValueError(f"{module_name} has no function {name!r}")
    return function


def run_by_path(path: str, *args: Any, **kwargs: Any) -> Any:
    """The job rq.cron enqueues: import the function ``path`` names, at run time, and call it."""
    return resolve(path)(*args, **kwargs)


class ZonedCronJob(CronJob):
    """A CronJob whose cron expression is read in ``tz`` rather than UTC."""

    def __init__(self, *, tz: ZoneInfo, **options: Any) -> None:
        self.tz = tz
        super().__init__(**options)
        self.next_enqueue_time = self.get_next_enqueue_time()

    def get_next_enqueue_time(self) -> datetime:
        start = (self.latest_enqueue_time or now()).astimezone(self.tz)
        return croniter(self.cron, start).get_next(datetime).astimezone(UTC)


class LoopCronScheduler(CronScheduler):
    def add(self, job: CronJob) -> CronJob:
        """Register a prepared job (``register`` can only build a plain UTC CronJob)."""
        self._cron_jobs.append(job)
        return job


def build_scheduler(
    conn: redis.Redis,
    cron: str,
    tz: str = "UTC",
    function: str = NIGHTLY_FUNCTION,
    queue_name: str = NIGHTLY_QUEUE,
    job_timeout: int | None = None,
    args: tuple = (),
) -> LoopCronScheduler:
    """A cron scheduler that enqueues ``run_by_path(function, *args)`` on ``queue_name`` at ``cron``."""
    if not croniter.is_valid(cron):
        raise ValueError(f"not a cron expression: {cron!r}")
    resolve(function)  # the job imports it again when it runs; a missing function must fail here, loudly
    scheduler = LoopCronScheduler(connection=conn)
    scheduler.add(
        ZonedCronJob(
            tz=ZoneInfo(tz),
            queue_name=queue_name,
            func=run_by_path,
            args=(function, *args),
            cron=cron,
            job_timeout=job_timeout,
            name=NIGHTLY_NAME,
        )
    )
    return scheduler


def nightly_scheduler(settings: Settings, conn: redis.Redis) -> LoopCronScheduler:
    return build_scheduler(conn, settings.nightly_cron, tz=settings.nightly_tz, job_timeout=settings.job_timeout)


def nightly_schedule(settings: Settings) -> str:
    """``SSD_NIGHTLY_CRON``, checked (a bad expression fails ``ssd serve`` at once, not in a child)."""
    from croniter import croniter

    if not croniter.is_valid(settings.nightly_cron):
        raise ConfigError(f"SSD_NIGHTLY_CRON: not a cron expression (got {settings.nightly_cron!r})")
    return settings.nightly_cron


def cron_command() -> list[str]:
    """The process that declares the nightly run with rq.cron (``python -m ssd.scheduler``)."""
    return [sys.executable, "-m", "ssd.scheduler"]


class Scheduler:
    """Every few seconds: queue journaled deliveries; every half minute: report jobs whose worker died.

    The nightly run is not timed here: RQ's own cron scheduler (``ssd.scheduler``) does that, in a child
    process the scheduler keeps running (``run_scheduler``). Several schedulers may run (one per host):
    rq.cron's scheduler takes a lock per job, so the nightly run is enqueued once.
    """

    def __init__(
        self, settings: Settings, conn: redis.Redis | None = None, sweep_interval: float = SWEEP_INTERVAL
    ) -> None:
        self.conn = conn if conn is not None else connect(settings)
        self.inbox = Inbox(engine_for(settings.database_url))
        self.sweep_interval = sweep_interval
        self._next_sweep = 0.0

    def sweep_abandoned(self) -> None:
        """Report command jobs whose worker died mid-run (``bot.jobs.report_abandoned``)."""
        try:
            reported = report_abandoned(self.conn)
        except Exception:  # the sweep is best effort; the loop must keep draining the inbox
            log.exception("scheduler: sweeping abandoned jobs failed")
            return
        if reported:
            log.info("scheduler: reported %d abandoned jobs: %s", len(reported), ", ".join(reported))

    def tick(self) -> None:
        try:
            enqueue_pending(self.inbox, self.conn, min_age=PENDING_GRACE)
        except (redis.RedisError, sa.exc.SQLAlchemyError) as exc:
            log.warning("scheduler: inbox not drained this time: %s", exc)
        if self.sweep_interval != math.inf and time.monotonic() >= self._next_sweep:
            self._next_sweep = time.monotonic() + self.sweep_interval
            self.sweep_abandoned()

    def run(self, stop: threading.Event, interval: float = SCHEDULER_INTERVAL, cron: list[str] | None = None) -> None:
        """Tick until ``stop``; with ``cron``, keep that process (rq.cron) running beside, restarting it
        when it dies (it blocks and installs its own signal handlers, so it cannot share this process)."""
        log.info("scheduler: draining the inbox every %.0f s", interval)
        child: subprocess.Popen | None = None
        try:
            while not stop.is_set():
                if cron and (child is None or child.poll() is not None):
                    if child is not None:
                        log.warning(
                            "scheduler: the rq.cron process exited with status %s; starting it again", child.returncode
                        )
                    child = subprocess.Popen(cron, preexec_fn=die_with_parent)
                self.tick()
                stop.wait(interval)
        finally:
            if child is not None and child.poll() is None:
                child.terminate()  # rq's CronScheduler stops cleanly on SIGTERM (unregisters itself)
                try:
                    child.wait(STOP_GRACE)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()


def run_scheduler(settings: Settings, interval: float = SCHEDULER_INTERVAL) -> int:
    """``ssd scheduler``: the loop above plus the rq.cron process, until SIGTERM/SIGINT."""
    cron = nightly_schedule(settings)
    scheduler = Scheduler(settings)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    log.info("scheduler: nightly loop run at cron %r in %s (rq.cron)", cron, settings.nightly_tz)
    scheduler.run(stop, interval, cron=cron_command())
    log.info("scheduler: stopped")
    return 0


def main() -> int:
    """``python -m ssd.scheduler``: the nightly declaration, blocking (``ssd scheduler`` runs this as a child)."""
    settings = Settings.from_env()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    nightly_scheduler(settings, connect(settings)).start()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
