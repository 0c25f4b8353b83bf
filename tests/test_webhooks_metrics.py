"""``GET /metrics``: counters shared across web processes through Redis, RQ gauges, job durations."""

from __future__ import annotations

import re

from rq import Queue

from core.config import Settings
from ssd.worker import MeteredWorker
from tests.deliveries import comment_delivery
from webhooks.app import create_app

SECRET = "test-secret"


def quick_job() -> str:
    return "done"


def failing_job() -> None:
    raise RuntimeError("boom")


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in the exposition text; fails the test when absent."""
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    match = re.search(rf"^{re.escape(name)}\{{{re.escape(wanted)}\}} (\S+)$", text, re.MULTILINE)
    assert match, f"{name}{{{wanted}}} not in metrics:\n{text}"
    return float(match.group(1))


def test_delivery_counters_add_up_across_web_processes(settings_env, redis_conn):
    # Two app instances stand for two gunicorn workers: each has its own Edge, counters are in Redis.
    clients = [create_app(Settings.from_env(settings_env)).test_client() for _ in range(2)]
    for n, client in enumerate(clients * 2):
        body, hdrs = comment_delivery(SECRET, comment_id=500 + n)
        assert client.post("/webhooks/gitea", data=body, headers=hdrs).status_code == 202
    body, hdrs = comment_delivery("wrong", comment_id=600)
    assert clients[1].post("/webhooks/gitea", data=body, headers=hdrs).status_code == 401
    response = clients[0].get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = response.get_data(as_text=True)
    assert "# TYPE ssd_deliveries_total counter" in text
    assert sample(text, "ssd_deliveries_total", event="issue_comment", outcome="queued") == 4
    assert sample(text, "ssd_deliveries_total", event="unverified", outcome="unauthorized") == 1
    assert sample(text, "ssd_queue_depth", queue="default") == 4
    assert sample(text, "ssd_queue_depth", queue="gpu") == 0
    assert sample(text, "ssd_jobs", queue="default", status="failed") == 0


def test_job_counts_and_durations_from_a_real_worker(settings_env, redis_conn):
    client = create_app(Settings.from_env(settings_env)).test_client()
    queue = Queue("gpu", connection=redis_conn)
    queue.enqueue(quick_job)
    queue.enqueue(quick_job)
    queue.enqueue(failing_job)
    assert sample(client.get("/metrics").get_data(as_text=True), "ssd_queue_depth", queue="gpu") == 3
    MeteredWorker([queue], connection=redis_conn).work(burst=True)
    text = client.get("/metrics").get_data(as_text=True)
    assert sample(text, "ssd_queue_depth", queue="gpu") == 0
    assert sample(text, "ssd_jobs", queue="gpu", status="finished") == 2
    assert sample(text, "ssd_jobs", queue="gpu", status="failed") == 1
    assert "# TYPE ssd_job_duration_seconds histogram" in text
    assert sample(text, "ssd_job_duration_seconds_count", queue="gpu", status="finished") == 2
    assert sample(text, "ssd_job_duration_seconds_count", queue="gpu", status="failed") == 1
    assert sample(text, "ssd_job_duration_seconds_bucket", queue="gpu", status="finished", le="+Inf") == 2
    assert sample(text, "ssd_job_duration_seconds_bucket", queue="gpu", status="finished", le="21600.0") == 2
    assert 0 < sample(text, "ssd_job_duration_seconds_sum", queue="gpu", status="finished") < 60
