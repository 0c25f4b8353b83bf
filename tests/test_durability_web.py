"""The web edge while Redis hangs (SIGSTOP) and after an outage: answers stay within Gitea's 5 s, and no
request drains a backlog. A redis-server the test owns; the real app through Flask's test client."""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, datetime, timedelta

import pytest
import redis
import sqlalchemy as sa
from rq import Queue

from core.config import Settings
from core.inbox import DRAIN_LOCK, inbox_table
from tests.deliveries import comment_delivery, comment_payload, gitea_json_bytes
from webhooks.app import create_app

SECRET = "test-secret"
URL = "/webhooks/gitea"
ANSWER_BUDGET = 1.5  # seconds; Gitea's is 5, and a hung Redis must cost a small part of it


def timed(call):
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture
def hung_redis(redis_process):
    """SIGSTOP the server for the test's body; SIGCONT it however the test ends."""
    paused: list[bool] = []

    def pause() -> None:
        os.kill(redis_process.process.pid, signal.SIGSTOP)
        paused.append(True)

    def resume() -> None:
        os.kill(redis_process.process.pid, signal.SIGCONT)
        paused.clear()

    yield pause, resume
    if paused:
        resume()


def test_a_hung_redis_costs_deliveries_and_probes_well_under_gitea_s_5_s(settings_env, redis_process, hung_redis):
    pause, resume = hung_redis
    app = create_app(Settings.from_env(dict(settings_env, SSD_REDIS_URL=redis_process.url)))
    client = app.test_client()
    inbox = app.extensions["ssd"].inbox
    conn = redis.Redis.from_url(redis_process.url, socket_timeout=5)
    body, headers = comment_delivery(SECRET, comment_id=1)
    first = client.post(URL, data=body, headers=headers).json
    assert first["status"] == "queued"

    pause()
    for n in range(2, 5):
        body, headers = comment_delivery(SECRET, comment_id=n)
        response, took = timed(lambda b=body, h=headers: client.post(URL, data=b, headers=h))
        assert response.status_code == 202 and response.json["status"] == "journaled", response.json
        assert took < ANSWER_BUDGET, f"signed delivery answered after {took:.1f} s"
    body, headers = comment_delivery("not-the-secret", comment_id=9)
    response, took = timed(lambda: client.post(URL, data=body, headers=headers))
    assert response.status_code == 401 and took < ANSWER_BUDGET, f"bad signature answered after {took:.1f} s"
    for probe in ("/readyz", "/healthz", "/metrics"):
        response, took = timed(lambda p=probe: client.get(p))
        assert response.status_code == 503 and took < ANSWER_BUDGET, f"{probe}: {response.status_code}, {took:.1f} s"
    journaled = [i for i in inbox.pending() if i != first["inbox_id"]]  # (the first one's mark is in Redis)
    assert len(journaled) == 3  # every delivery is in the journal, and only there

    resume()
    # The web process queues what it journaled by itself once Redis answers: no request, no 2-minute lock.
    wait_until(lambda: not set(journaled) & set(inbox.pending()), 10, "the journaled deliveries to be queued")
    expected = [first["inbox_id"], *journaled]
    assert sorted(Queue("default", connection=conn).job_ids) == sorted(f"delivery-{i}" for i in expected)
    assert conn.pttl(DRAIN_LOCK) < 15_000  # -2 (no lock) or a short one: never the old 120 s
    wait_until(lambda: client.get("/healthz").status_code == 200, 5, "/healthz to recover")
    body, headers = comment_delivery(SECRET, comment_id=5)
    assert client.post(URL, data=body, headers=headers).json["status"] == "queued"


def test_no_request_drains_the_backlog(settings_env, redis_process):
    """After an outage the backlog is queued by the scheduler or the web's background thread; the request
    that finds Redis back is answered after its own row, not after everyone else's."""
    app = create_app(Settings.from_env(dict(settings_env, SSD_REDIS_URL=redis_process.url)))
    client = app.test_client()
    inbox = app.extensions["ssd"].inbox
    time.sleep(0.3)  # the start-up drain (a background thread) has found nothing
    redis_process.stop()
    body, headers = comment_delivery(SECRET, comment_id=6)
    assert client.post(URL, data=body, headers=headers).json["status"] == "journaled"
    old = datetime.now(UTC) - timedelta(minutes=5)  # what other web processes journaled in the outage
    with inbox.engine.begin() as db:
        db.execute(
            inbox_table.insert(),
            [
                {
                    "delivery_id": f"old-{n}",
                    "event": "issue_comment",
                    "event_type": "issue_comment",
                    "action": "created",
                    "dedupe_key": f"comment:{1000 + n}:created",
                    "received_at": old,
                    "payload": gitea_json_bytes(comment_payload(comment_id=1000 + n)).decode(),
                }
                for n in range(300)
            ],
        )
    redis_process.start()
    time.sleep(2.5)  # past the web's pause after a Redis error
    body, headers = comment_delivery(SECRET, comment_id=7)
    response = client.post(URL, data=body, headers=headers)
    assert response.json["status"] == "queued"
    assert len(inbox.pending(min_age=60)) == 300  # the old rows: untouched by the request
    with inbox.engine.connect() as db:
        assert db.execute(sa.select(sa.func.count()).select_from(inbox_table)).scalar_one() == 302
