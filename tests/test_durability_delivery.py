"""Deliveries survive what happens to Redis and workers: a killed work horse, a Redis that lost its data,
a killed embedded Redis, and payloads that can never succeed. Real Redis servers the tests own, real RQ
workers (a forking worker subprocess where a work horse must die), the Gitea stand-in over HTTP."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import redis
from rq import Retry
from rq.job import Job, JobStatus

from bot.jobs import _claim, job_id_for, report_abandoned, status_comment_key
from bot.status import Header, StatusComment
from core import redis_conn
from core.inbox import enqueue, enqueue_pending, sync_marks
from core.queues import queue
from core.redis_conn import start_embedded
from ssd import scheduler as scheduler_module
from tests.conftest_gitea import REPO
from tests.deliveries import comment_payload, gitea_json_bytes, merged_pr_payload
from tests.gitea_standin import GiteaStandin
from tests.harness import Bot, make_bot

ROOT = Path(__file__).resolve().parent.parent

# A forking RQ worker on the default queue, as `ssd worker` runs it (burst: it exits once the queue is empty).
DELIVERY_WORKER = """
from rq import Worker
from bot import context
from core.queues import queue
Worker([queue("default", context.redis())], connection=context.redis(), job_monitoring_interval=1).work(burst=True)
"""


@pytest.fixture
def bot(gitea: GiteaStandin, redis_process, tmp_path: Path) -> Iterator[Bot]:
    """The bot on a redis-server of this test's own, which it may kill and restart."""
    conn = redis.Redis.from_url(redis_process.url)
    yield make_bot(gitea, conn, tmp_path, redis_process.url)
    conn.close()


class PermissionGate:
    """Hold every permission request of the stand-in until opened: a delivery job that has claimed its
    command line (the claim comes before authorization) sits there, between claim and enqueue."""

    def __init__(self, standin: GiteaStandin) -> None:
        self.asked = threading.Event()
        self.opened = threading.Event()
        dispatch = standin._dispatch

        def gated(request):
            if request.path.endswith("/permission") and not self.opened.is_set():
                self.asked.set()
                self.opened.wait(60)
            return dispatch(request)

        standin._dispatch = gated  # looked up per request by the stand-in's WSGI handler

    def open(self) -> None:
        self.opened.set()


def journal(
    bot: Bot,
    payload: dict,
    event_type: str = "issue_comment",
    action: str = "created",
    dedupe_key: str | None = None,
    text: str | None = None,
) -> int:
    inbox_id, is_new = bot.inbox.record(
        str(uuid.uuid4()),
        event_type,
        event_type,
        action,
        dedupe_key or f"comment:{payload['comment']['id']}:created",
        text if text is not None else gitea_json_bytes(payload).decode(),
    )
    assert is_new
    return inbox_id


def journal_comment(bot: Bot, body: str, index: int) -> int:
    comment_id = bot.gitea.add_comment(REPO, index, body, user="alice")["id"]
    return journal(bot, comment_payload(body=body, user="alice", number=index, comment_id=comment_id))


def queue_like_the_web(bot: Bot, inbox_id: int) -> None:
    """The web's enqueue (with the delivery retry policy) and the bulk mark that follows it."""
    enqueue(bot.conn, inbox_id)
    sync_marks(bot.inbox, bot.conn)
    assert bot.inbox.get(inbox_id).enqueued_at is not None


def start_delivery_worker(bot: Bot) -> subprocess.Popen:
    env = {**os.environ, **bot.env, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", DELIVERY_WORKER],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def work_horse_of(worker: subprocess.Popen) -> psutil.Process:
    [horse] = psutil.Process(worker.pid).children()
    return horse


def run_due_retries(conn: redis.Redis) -> list[str]:
    """What RQ's scheduler does once a retry's delay is over, done now instead of in 10 s."""
    default = queue("default", conn)
    registry = default.scheduled_job_registry
    job_ids = registry.get_job_ids()
    for job in Job.fetch_many(job_ids, connection=conn):
        registry.remove(job)
        default.enqueue_job(job)
    return job_ids


def status_comments(bot: Bot, index: int) -> list[str]:
    return [c["body"] for c in bot.bot_comments(index)]


# --------------------------------------------------------------------------- a killed work horse


def test_a_work_horse_killed_between_claim_and_enqueue_is_taken_over_by_its_own_retry(bot: Bot) -> None:
    gate = PermissionGate(bot.gitea)
    index = bot.new_issue()
    inbox_id = journal_comment(bot, "/ssd help", index)
    queue_like_the_web(bot, inbox_id)
    worker = start_delivery_worker(bot)
    try:
        assert gate.asked.wait(30), "the delivery job never asked for the permission"
        work_horse_of(worker).kill()  # SIGKILL: the OOM killer picks the horse, the worker lives on
        worker.wait(timeout=30)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
        gate.open()
    delivery_job = Job.fetch(f"delivery-{inbox_id}", connection=bot.conn)
    assert delivery_job.get_status() == JobStatus.SCHEDULED  # RQ's own retry, due in 10 s
    assert status_comments(bot, index) == []

    assert run_due_retries(bot.conn) == [f"delivery-{inbox_id}"]
    bot.work()
    [status] = status_comments(bot, index)  # the retry ran the command, once
    assert "✅ **done**" in status
    command_job = Job.fetch(job_id_for(bot.last_comment_id() - 1, 1), connection=bot.conn)
    assert command_job.get_status() == JobStatus.FINISHED
    assert bot.inbox.get(inbox_id).processed_at is not None
    # A replay of the same delivery afterwards still runs nothing.
    from bot.jobs import process_delivery

    assert process_delivery(inbox_id)["skipped"] == [1]
    assert len(status_comments(bot, index)) == 1


def test_a_retry_takes_over_the_status_comment_its_dead_attempt_posted(bot: Bot) -> None:
    """The horse died after posting the status comment, before enqueueing: what it left is a claim naming
    its job and the status comment's id. The retry edits that comment instead of posting a second one."""
    index = bot.new_issue()
    inbox_id = journal_comment(bot, "/ssd help", index)
    comment_id = bot.last_comment_id()
    command_job = job_id_for(comment_id, 1)
    orphan = StatusComment.post(bot.client, "acme", "widgets", index, Header("/ssd help", "alice", command_job), 1)
    bot.conn.set(status_comment_key(command_job), orphan.comment_id)
    bot.conn.set(f"cmd:{comment_id}:1", f"claimed:{time.time():.3f}:delivery-{inbox_id}")
    queue_like_the_web(bot, inbox_id)
    bot.work()
    [status] = bot.bot_comments(index)
    assert status["id"] == orphan.comment_id and "✅ **done**" in status["body"]


def test_a_claim_is_taken_over_only_by_its_own_job_and_never_past_an_enqueued_command(redis_conn) -> None:
    assert _claim(redis_conn, "cmd:77:1", owner="delivery-1") is True
    assert _claim(redis_conn, "cmd:77:1", owner="delivery-2") is False  # another delivery job holds it
    assert _claim(redis_conn, "cmd:77:1") is False  # no job (a replay run by hand): not stale yet
    assert _claim(redis_conn, "cmd:77:1", owner="delivery-1") is True  # RQ's retry of the holder
    # The holder got as far as enqueueing the command job before it died: the line is done, not redone.
    queue("cpu", redis_conn).enqueue("bot.jobs.run_command", {}, job_id=job_id_for(77, 1))
    assert _claim(redis_conn, "cmd:77:1", owner="delivery-1") is False
    assert redis_conn.get("cmd:77:1") == f"done:{job_id_for(77, 1)}".encode()


# --------------------------------------------------------------------------- the journal is the truth


def test_deliveries_whose_jobs_redis_lost_unprocessed_are_queued_again(bot: Bot, monkeypatch) -> None:
    index = bot.new_issue()
    first = journal_comment(bot, "/ssd help", index)
    second = journal_comment(bot, "/ssd help", index)
    for inbox_id in (first, second):
        queue_like_the_web(bot, inbox_id)
    assert bot.inbox.pending() == []  # the journal says "queued" for both
    bot.conn.flushall()  # a restart without persistence, an eviction, a flush: the jobs are gone

    monkeypatch.setattr(scheduler_module, "PENDING_GRACE", 0.0)
    scheduler = scheduler_module.Scheduler(bot.settings, conn=bot.conn, sweep_interval=float("inf"))
    scheduler.tick()
    assert sorted(queue("default", bot.conn).job_ids) == [f"delivery-{first}", f"delivery-{second}"]
    bot.work()
    bodies = status_comments(bot, index)
    assert len(bodies) == 2 and all("✅ **done**" in body for body in bodies)
    assert bot.inbox.unprocessed() == []
    assert bot.inbox.get(first).outcome.startswith("enqueued")
    # Processed rows are never queued again, even once their finished jobs expire from Redis.
    bot.conn.flushall()
    assert enqueue_pending(bot.inbox, bot.conn) == 0


def test_a_command_in_flight_when_redis_is_killed_ends_on_the_issue(bot: Bot, redis_process) -> None:
    """Two `/ssd help`: one delivery mid-way in a work horse, one queued. kill -9 of redis-server (and of
    the worker, as a host restart would), restart: the sweep and the retry finish both on the issue."""
    gate = PermissionGate(bot.gitea)
    index = bot.new_issue()
    running = journal_comment(bot, "/ssd help", index)
    waiting = journal_comment(bot, "/ssd help", index)
    for inbox_id in (running, waiting):
        queue_like_the_web(bot, inbox_id)
    worker = start_delivery_worker(bot)
    try:
        assert gate.asked.wait(30)
        horse = work_horse_of(worker)
        time.sleep(1.1)  # appendfsync everysec: what the server acknowledged is in its AOF by now
        redis_process.stop()  # SIGKILL
        os.killpg(worker.pid, signal.SIGKILL)
        horse.kill()
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
        gate.open()
    redis_process.start()
    bot.conn.connection_pool.disconnect()
    assert bot.conn.lindex("rq:queue:default", 0) == f"delivery-{waiting}".encode()

    # The scheduler's sweep declares the dead worker's job abandoned (as of when its heartbeat lapses),
    # which hands it to its retry; the retry takes over its own claim.
    report_abandoned(bot.conn, timestamp=time.time() + 120)
    run_due_retries(bot.conn)
    bot.work()
    bodies = status_comments(bot, index)
    assert len(bodies) == 2 and all("✅ **done**" in body for body in bodies), bodies
    assert bot.inbox.unprocessed() == []


def test_a_delivery_that_fails_on_its_last_attempt_is_marked_processed_as_failed(bot: Bot) -> None:
    index = bot.new_issue()
    inbox_id = journal_comment(bot, "/ssd help", index)
    queue("default", bot.conn).enqueue(
        "bot.jobs.process_delivery", inbox_id, job_id=f"delivery-{inbox_id}", retry=Retry(max=1)
    )  # one immediate retry, then RQ gives up
    bot.inbox.mark_enqueued(inbox_id, f"delivery-{inbox_id}")
    bot.gitea.fail_path("/api/v1/user", 503)  # the bot cannot even learn its own login
    bot.work()
    assert Job.fetch(f"delivery-{inbox_id}", connection=bot.conn).get_status() == JobStatus.FAILED
    row = bot.inbox.get(inbox_id)
    assert row.processed_at is not None and row.outcome.startswith("failed (err-") and "GiteaError" in row.outcome
    assert bot.inbox.unprocessed() == []  # in the failed registry for good: not "lost", never re-run by itself


# --------------------------------------------------------------------------- the embedded Redis


def test_the_embedded_redis_keeps_acknowledged_jobs_across_a_kill(tmp_path: Path) -> None:
    data = tmp_path / "data"
    conn = redis.Redis.from_url(start_embedded(data))
    server = psutil.Process(redis_conn._embedded[-1].pid)
    try:
        queue("default", conn).enqueue("bot.jobs.process_delivery", 7, job_id="delivery-7")
        # appendfsync everysec: a reply can precede the AOF write by up to ~2 s while an fsync is slow (a
        # loaded machine), the loss window the README states. Once the job is in the AOF, kill -9 (no
        # snapshot is due) and it must come back from the AOF alone.
        aof = data / "appendonly.aof"
        deadline = time.monotonic() + 10
        while not (aof.exists() and b"delivery-7" in aof.read_bytes()) and time.monotonic() < deadline:
            time.sleep(0.05)
        server.kill()
        server.wait(10)
        conn.close()
        restarted = redis.Redis.from_url(start_embedded(data))
        assert Job.fetch("delivery-7", connection=restarted).args == (7,)
        assert queue("default", restarted).job_ids == ["delivery-7"]
        assert (data / "appendonly.aof").exists()
        restarted.shutdown(nosave=True)
    finally:
        redis_conn._embedded.clear()


# --------------------------------------------------------------------------- malformed payloads


def test_malformed_payloads_are_journaled_as_failed_and_never_retried(bot: Bot, caplog) -> None:
    no_user = comment_payload(body="/ssd help", comment_id=4242)
    del no_user["comment"]["user"]
    pr = merged_pr_payload(number=3)
    pr["number"] = [3, 4]
    ids = [
        journal(bot, no_user),
        journal(
            bot,
            pr,
            event_type="pull_request",
            action="closed",
            dedupe_key="merge:acme/widgets:[3, 4]:x",
            text=json.dumps(pr),
        ),
    ]
    for inbox_id in ids:
        queue_like_the_web(bot, inbox_id)
    with caplog.at_level(logging.ERROR, logger="bot.jobs"):
        bot.work()
    for inbox_id, field in zip(ids, ("comment.user", "number"), strict=True):
        job = Job.fetch(f"delivery-{inbox_id}", connection=bot.conn)
        assert job.get_status() == JobStatus.FINISHED  # not failed, not scheduled for a retry
        row = bot.inbox.get(inbox_id)
        assert row.processed_at is not None and row.outcome.startswith("malformed (err-")
        assert field in row.outcome
        error_id = row.outcome.split("(", 1)[1].split(")", 1)[0]
        assert error_id in caplog.text
    assert queue("default", bot.conn).scheduled_job_registry.get_job_ids() == []
    assert bot.gitea.calls("POST") == []  # nothing to say on an issue the payload does not name reliably
