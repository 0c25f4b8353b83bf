"""The nightly declaration with rq.cron: a real CronScheduler process fires the job in test time, a real
RQ worker runs it through the dotted-path trampoline, and the cron expression is read in its zone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from rq import Queue, SimpleWorker, get_current_job
from rq.cron import CronScheduler, get_cron_job_ids
from rq.job import Job

from core.config import Settings, next_nightly
from ssd.scheduler import NIGHTLY_NAME, build_scheduler, nightly_scheduler, run_by_path

ROOT = Path(__file__).resolve().parents[1]


def record_fire(key: str) -> str:
    """The stand-in for the loop run: leaves a mark in Redis that a worker really ran it."""
    job = get_current_job()
    job.connection.set(key, f"fired by {job.id}")
    return "fired"


def test_a_real_cron_scheduler_enqueues_the_job_and_a_worker_runs_it(redis_conn, redis_url):
    # Every second (croniter's optional sixth field), so the test waits one or two seconds, not a night.
    script = (
        "import sys, redis; from ssd.scheduler import build_scheduler;"
        "build_scheduler(redis.Redis.from_url(sys.argv[1]), '* * * * * */1',"
        " function='tests.test_schedule.record_fire', args=('nightly-mark',)).start()"
    )
    cron = subprocess.Popen(
        [sys.executable, "-c", script, redis_url],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 15
        while not get_cron_job_ids(NIGHTLY_NAME, redis_conn):
            assert cron.poll() is None, "the cron scheduler exited"
            assert time.monotonic() < deadline, "rq.cron never enqueued the nightly job"
            time.sleep(0.1)
        assert [s.name for s in CronScheduler.all(redis_conn)]  # it registered itself
    finally:
        cron.send_signal(signal.SIGTERM)
        cron.wait(10)
    assert CronScheduler.all(redis_conn) == []  # a clean stop unregisters it

    job = Job.fetch(get_cron_job_ids(NIGHTLY_NAME, redis_conn)[-1], connection=redis_conn)
    assert job.func_name == "ssd.scheduler.run_by_path" and job.origin == "cpu"
    assert job.args == ("tests.test_schedule.record_fire", "nightly-mark")
    SimpleWorker([Queue("cpu", connection=redis_conn)], connection=redis_conn).work(burst=True)
    assert redis_conn.get("nightly-mark").decode().startswith("fired by ")
    assert Job.fetch(job.id, connection=redis_conn).return_value() == "fired"


def test_the_cron_expression_is_read_in_the_configured_zone(tmp_path):
    settings = Settings.from_env(
        {"SSD_DATA_DIR": str(tmp_path), "SSD_NIGHTLY_CRON": "0 3 * * *", "SSD_NIGHTLY_TZ": "Europe/Berlin"}
    )
    assert next_nightly(settings, datetime(2026, 12, 3, 12, 0, tzinfo=UTC)) == datetime(2026, 12, 4, 2, 0, tzinfo=UTC)
    assert next_nightly(settings, datetime(2026, 7, 3, 12, 0, tzinfo=UTC)) == datetime(2026, 7, 4, 1, 0, tzinfo=UTC)
    utc = Settings.from_env({"SSD_DATA_DIR": str(tmp_path)})
    assert next_nightly(utc, datetime(2026, 12, 3, 12, 0, tzinfo=UTC)) == datetime(2026, 12, 4, 3, 0, tzinfo=UTC)


def test_the_nightly_scheduler_holds_one_zoned_job(tmp_path, redis_conn):
    settings = Settings.from_env({"SSD_DATA_DIR": str(tmp_path), "SSD_NIGHTLY_TZ": "America/New_York"})
    jobs = nightly_scheduler(settings, redis_conn).get_jobs()
    assert [(j.name, j.queue_name, j.cron, j.args) for j in jobs] == [
        (NIGHTLY_NAME, "cpu", "0 3 * * *", ("bot.loop.run_nightly",))
    ]
    local = jobs[0].next_enqueue_time.astimezone(ZoneInfo("America/New_York"))
    assert (local.hour, local.minute) == (3, 0) and jobs[0].next_enqueue_time.tzinfo == UTC
    with pytest.raises(ValueError, match="cron"):
        build_scheduler(redis_conn, "every night")


def test_the_trampoline_fails_clearly_on_a_missing_function():
    with pytest.raises(ModuleNotFoundError):
        run_by_path("bot.no_such_module.run")
    with pytest.raises(ValueError, match="no function 'no_such_function'"):
        run_by_path("ssd.scheduler.no_such_function")
    with pytest.raises(ValueError, match="dotted"):
        run_by_path("run")


def test_a_nightly_function_that_does_not_exist_fails_when_the_schedule_is_built(redis_conn):
    with pytest.raises(ValueError, match="no function 'run_nigthly'"):
        build_scheduler(redis_conn, "0 3 * * *", function="bot.loop.run_nigthly")
    build_scheduler(redis_conn, "0 3 * * *")  # the real one resolves
