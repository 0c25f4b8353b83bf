"""The nightly loop run, declared with RQ's own cron scheduler (``rq.cron``, rq 2.12).

``nightly_scheduler(settings, conn)`` builds an ``rq.cron.CronScheduler`` holding one job: at
``SSD_NIGHTLY_CRON`` in ``SSD_NIGHTLY_TZ`` it enqueues, on the ``cpu`` queue, a call of the function
named by ``NIGHTLY_FUNCTION`` (a dotted path, imported when the job runs, so this module does not
depend on the loop's code). ``scheduler.start()`` blocks and handles SIGTERM (run it in its own
process); rq records each enqueue in ``rq:cron_job:ssd-nightly:jobs`` and the scheduler in
``CronScheduler.all(conn)``.

Time zone: rq 2.12 evaluates cron expressions in UTC; ``ZonedCronJob`` evaluates them in the
configured zone instead (DST included, via croniter), and stores the next time in UTC.
"""

from __future__ import annotations

import importlib
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import redis
from croniter import croniter
from rq.cron import CronJob, CronScheduler
from rq.utils import now

from ssd.config import Settings

NIGHTLY_FUNCTION = "bot.loop.run_nightly"  # the loop run; written with the run itself (issue #12)
NIGHTLY_NAME = "ssd-nightly"
NIGHTLY_QUEUE = "cpu"


def run_by_path(path: str, *args: Any, **kwargs: Any) -> Any:
    """The job rq.cron enqueues: import the function ``path`` names, at run time, and call it."""
    module_name, _, name = path.rpartition(".")
    if not module_name:
        raise ValueError(f"not a dotted path to a function: {path!r}")
    function = getattr(importlib.import_module(module_name), name)
    return function(*args, **kwargs)


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


def build_scheduler(conn: redis.Redis, cron: str, tz: str = "UTC", function: str = NIGHTLY_FUNCTION,
                    queue_name: str = NIGHTLY_QUEUE, job_timeout: int | None = None,
                    args: tuple = ()) -> LoopCronScheduler:
    """A cron scheduler that enqueues ``run_by_path(function, *args)`` on ``queue_name`` at ``cron``."""
    if not croniter.is_valid(cron):
        raise ValueError(f"not a cron expression: {cron!r}")
    scheduler = LoopCronScheduler(connection=conn)
    scheduler.add(ZonedCronJob(tz=ZoneInfo(tz), queue_name=queue_name, func=run_by_path, args=(function, *args),
                               cron=cron, job_timeout=job_timeout, name=NIGHTLY_NAME))
    return scheduler


def nightly_scheduler(settings: Settings, conn: redis.Redis) -> LoopCronScheduler:
    return build_scheduler(conn, settings.nightly_cron, tz=settings.nightly_tz, job_timeout=settings.job_timeout)


def next_nightly(settings: Settings, after: datetime | None = None) -> datetime:
    """When the next nightly run will be enqueued (UTC), e.g. for ``/ssd status``."""
    start = (after or now()).astimezone(ZoneInfo(settings.nightly_tz))
    return croniter(settings.nightly_cron, start).get_next(datetime).astimezone(UTC)


def main() -> int:
    """``python -m ssd.schedule``: the nightly declaration, blocking (``ssd scheduler`` runs this as a child)."""
    import logging

    from ssd.redis_conn import connect

    settings = Settings.from_env()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    nightly_scheduler(settings, connect(settings)).start()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
