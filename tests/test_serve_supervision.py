"""``ssd serve`` supervising real processes: the embedded Redis killed (restarted, and the service
recovers) and a worker killed (everything it started dies with it: work horse, RQ's scheduler process)."""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path

import psutil
import pytest
import redis
import requests

from core.queues import queue
from tests.harness import wait_for
from tests.serve_process import EXAMPLES, start_serve
from webhooks.signature import delivery_headers


def started_pids(log_path: Path) -> dict[str, int]:
    """The newest pid of each child, from the supervisor's "started NAME (pid N)" lines."""
    return {name: int(pid) for name, pid in re.findall(r"ssd: started (\S+) \(pid (\d+)\)", log_path.read_text())}


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def deliver_help(port: int, secret: str) -> requests.Response:
    body = (EXAMPLES / "comment-help.json").read_bytes()
    return requests.post(
        f"http://127.0.0.1:{port}/webhooks/gitea",
        data=body,
        headers=delivery_headers(secret, body, "issue_comment"),
        timeout=5,
    )


@pytest.mark.slow
def test_serve_restarts_its_redis_and_takes_a_dead_workers_whole_tree_down(tmp_path):
    proc, port, log_path = start_serve(tmp_path)
    data = tmp_path / "data"
    try:
        first = started_pids(log_path)
        assert set(first) == {"redis", "web", "worker-default", "worker-jobs", "scheduler"}

        # The embedded Redis dies: it is started again and the service carries on.
        os.kill(first["redis"], signal.SIGKILL)
        wait_for(
            lambda: started_pids(log_path)["redis"] != first["redis"],
            15,
            "redis was not restarted:\n" + log_path.read_text(),
        )
        assert "redis exited with status -9; restarting it" in log_path.read_text()
        assert proc.poll() is None
        wait_for(
            lambda: requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200,
            15,
            "/healthz did not recover",
        )
        secret = (data / "webhook_secret").read_text().strip()
        assert deliver_help(port, secret).status_code == 202
        outbox = data / "outbox"
        wait_for(
            lambda: any("help" in p.read_text() for p in outbox.glob("*.json")),
            40,
            "the workers did not come back to the restarted Redis:\n" + log_path.read_text(),
        )

        # A worker dies with a job in its work horse: serve stops, and nothing of the tree lives on.
        conn = redis.Redis(unix_socket_path=str(data / "redis.sock"))
        queue("cpu", conn).enqueue("time.sleep", 120, job_id="sleeper")
        worker = psutil.Process(first["worker-jobs"])
        wait_for(lambda: conn.hget("rq:job:sleeper", "status") == b"started", 30, "the job did not start")
        # The work horse (its own process group) and, unless a Redis error ended it, RQ's scheduler process.
        assert 1 <= len(worker.children()) <= 2
        tree = [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]  # redis-server too
        os.kill(worker.pid, signal.SIGKILL)
        rc = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert rc != 0
    assert "worker-jobs exited with status -9; stopping the others" in log_path.read_text()
    wait_for(
        lambda: all(gone(pid) for pid in tree), 10, "left behind: " + json.dumps([pid for pid in tree if not gone(pid)])
    )
