"""``ssd worker``: an RQ worker that meters its jobs, dies with its work horse, and rides out Redis restarts."""

from __future__ import annotations

import logging
import os
import signal
import time

import redis
from rq import Worker
from rq.exceptions import StopRequested
from rq.job import Job
from rq.queue import Queue

from core.config import ConfigError, Settings
from core.queues import ALL, queue
from core.redis_conn import connect
from ssd.supervise import die_with_parent
from webhooks import metrics

log = logging.getLogger(__name__)

WORKER_RECONNECT_PAUSE = 1.0  # seconds before a worker that lost Redis starts over


class MeteredWorker(Worker):
    """An RQ worker that adds each job's run time to the ``ssd_job_duration_seconds`` histogram.

    Its work horse dies with it: RQ moves the horse to a process group of its own, so a worker killed
    outright (SIGKILL, OOM) would otherwise leave the horse running the job to the end, unsupervised,
    while the job is already being reported as abandoned.
    """

    def main_work_horse(self, job: Job, queue: Queue) -> None:
        parent = os.getppid()
        die_with_parent(signal.SIGKILL)
        if os.getppid() != parent:  # the worker died before the line above took effect
            os._exit(1)
        super().main_work_horse(job, queue)

    def perform_job(self, job: Job, queue: Queue) -> bool:
        started = time.monotonic()
        ok = super().perform_job(job, queue)
        metrics.record_job(self.connection, queue.name, "finished" if ok else "failed", time.monotonic() - started)
        return ok


def parse_queues(text: str) -> list[str]:
    """``default,cpu`` (or ``default:cpu``: systemd unit instance names cannot hold a comma)."""
    names = [name.strip() for name in text.replace(":", ",").split(",") if name.strip()]
    unknown = [name for name in names if name not in ALL]
    if not names or unknown:
        raise ConfigError(f"--queues: expected a comma list of {', '.join(ALL)}, got {text!r}")
    return names


def run_worker(settings: Settings, queue_names: list[str], burst: bool = False) -> int:
    """``ssd worker``: one forking RQ worker (a fresh work horse per job) on the given queues.

    RQ's loop rides out a Redis outage while it waits for jobs, but a connection lost at some other
    moment (a heartbeat, its maintenance) ends ``work()`` ("found an unhandled exception, quitting"),
    or its clean-up raises. Unless a stop was asked for, the worker then starts over with a new
    registration instead of exiting, so a restarted Redis does not take the workers down with it.
    """
    while True:
        worker: MeteredWorker | None = None
        error: Exception | None = None
        try:
            conn = connect(settings)
            worker = MeteredWorker([queue(name, conn) for name in queue_names], connection=conn)
            # with_scheduler: RQ's own scheduler moves delayed retries (Retry(interval=...)) back onto queues.
            worker.work(burst=burst, with_scheduler=True, logging_level=settings.log_level)
        except redis.RedisError as exc:  # also while registering: Redis may be restarting right now
            error = exc
        stop_asked = worker is not None and worker._shutdown_requested_date is not None  # SIGTERM/SIGINT
        if burst or stop_asked:
            if error is not None:
                raise error
            return 0
        log.warning(
            "worker: stopped on its own (%s); starting over in %.0f s",
            error or "see the error above",
            WORKER_RECONNECT_PAUSE,
        )
        try:
            time.sleep(WORKER_RECONNECT_PAUSE)
        except StopRequested:  # SIGTERM in the pause, seen by the old worker's handler
            return 0
