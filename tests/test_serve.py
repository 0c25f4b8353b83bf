"""The process model: cron, the scheduler loop, supervision, ``ssd deliver``, and ``ssd serve`` for real."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from rq import Queue
from werkzeug.serving import make_server

from core.config import ConfigError, Settings
from core.db import engine_for
from core.inbox import Inbox
from ssd import deliver, serve, supervise, worker
from ssd import scheduler as scheduler_module
from tests.deliveries import comment_payload, gitea_json_bytes, merged_pr_payload
from tests.harness import wait_for
from tests.serve_process import EXAMPLES, serve_env, start_serve
from webhooks.app import create_app

ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- cron and nightly


@pytest.mark.parametrize("expression", ["", "0 3 * *", "60 * * * *", "* 24 * * *", "a * * * *", "* * 0 * *"])
def test_bad_cron_is_a_config_error_naming_the_variable(tmp_path, expression):
    settings = Settings(data_dir=tmp_path, nightly_cron=expression)
    with pytest.raises(ConfigError, match="SSD_NIGHTLY_CRON"):
        scheduler_module.nightly_schedule(settings)


def test_the_scheduler_keeps_the_rq_cron_process_running(settings_env, redis_conn, redis_url, tmp_path):
    """The nightly run is declared by rq.cron in a child of the scheduler: it registers itself, is started
    again when it dies, and stops (unregistering) with the scheduler."""
    from rq.cron import CronScheduler

    settings = Settings.from_env(settings_env)
    scheduler = scheduler_module.Scheduler(settings, conn=redis_conn, sweep_interval=math.inf)
    stop = threading.Event()
    env_cmd = [
        "env",
        f"SSD_REDIS_URL={redis_url}",
        f"SSD_DATA_DIR={tmp_path / 'data'}",
        f"PYTHONPATH={ROOT}",
        *scheduler_module.cron_command(),
    ]
    thread = threading.Thread(target=scheduler.run, args=(stop, 0.2), kwargs={"cron": env_cmd})
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not CronScheduler.all(redis_conn):
            assert time.monotonic() < deadline, "the rq.cron process never registered"
            time.sleep(0.2)
        first = CronScheduler.all(redis_conn)[0]
        os.kill(first.pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while not [s for s in CronScheduler.all(redis_conn) if s.pid != first.pid]:
            assert time.monotonic() < deadline, "the rq.cron process was not started again"
            time.sleep(0.2)
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive()
    assert [s for s in CronScheduler.all(redis_conn) if s.pid != first.pid] == []  # a clean stop unregisters


def test_serve_runs_the_model_server_only_for_local_serving(tmp_path):
    local = serve.serve_children(Settings(data_dir=tmp_path, serving="local"))
    assert local["model"] == serve.ssd_command("model-server")
    assert "model" not in serve.serve_children(Settings(data_dir=tmp_path, serving="none"))


def test_scheduler_drains_journaled_deliveries(settings_env, redis_conn, monkeypatch):
    settings = Settings.from_env(settings_env)
    inbox = Inbox(engine_for(settings.database_url))
    text = gitea_json_bytes(comment_payload(comment_id=31)).decode()
    inbox_id, _ = inbox.record("d", "issue_comment", "issue_comment", "created", "comment:31:created", text)
    scheduler = scheduler_module.Scheduler(settings, conn=redis_conn, sweep_interval=math.inf)
    scheduler.tick()
    assert inbox.pending() == [inbox_id]  # too young: its own web request may still be enqueueing it
    monkeypatch.setattr(scheduler_module, "PENDING_GRACE", 0.0)
    scheduler.tick()
    assert inbox.pending() == []
    assert Queue("default", connection=redis_conn).job_ids == [f"delivery-{inbox_id}"]


# --------------------------------------------------------------------------- small pieces


def test_parse_queues():
    assert worker.parse_queues("default, cpu,gpu") == ["default", "cpu", "gpu"]
    assert worker.parse_queues("default:cpu") == ["default", "cpu"]  # as in ssd-worker@default:cpu
    for bad in ("", "default,tpu", ","):
        with pytest.raises(ConfigError, match="--queues"):
            worker.parse_queues(bad)


def test_webhook_url(tmp_path):
    assert serve.webhook_url(Settings(data_dir=tmp_path, bind="0.0.0.0:9000")) == "http://0.0.0.0:9000/webhooks/gitea"
    public = Settings(data_dir=tmp_path, public_url="https://bot.example")
    assert serve.webhook_url(public) == "https://bot.example/webhooks/gitea"
    full = Settings(data_dir=tmp_path, public_url="https://bot.example/webhooks/gitea")
    assert serve.webhook_url(full) == "https://bot.example/webhooks/gitea"


def test_example_payloads_are_byte_exact_gitea():
    for name, builder_payload in (
        ("comment-help.json", comment_payload(comment_id=9001)),
        ("merged-pr.json", merged_pr_payload(pr_id=501)),
    ):
        raw = (EXAMPLES / name).read_bytes()
        assert not raw.endswith(b"\n")
        assert raw == gitea_json_bytes(json.loads(raw))  # 2-space indent, HTML-escaped, Go key order
        assert json.loads(raw) == builder_payload
    assert json.loads((EXAMPLES / "comment-help.json").read_bytes())["comment"]["body"] == "/ssd help"
    merged = json.loads((EXAMPLES / "merged-pr.json").read_bytes())
    assert merged["action"] == "closed" and merged["pull_request"]["merged"] is True
    assert deliver.guess_event_type((EXAMPLES / "comment-help.json").read_bytes()) == "issue_comment"
    assert deliver.guess_event_type((EXAMPLES / "merged-pr.json").read_bytes()) == "pull_request"
    assert deliver.guess_event_type(gitea_json_bytes(comment_payload(is_pull=True))) == "pull_request_comment"


@pytest.mark.parametrize("form", [False, True])
def test_deliver_signs_and_posts_like_gitea(settings_env, redis_conn, form, capsys):
    settings = Settings.from_env(settings_env)
    app = create_app(settings)
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{httpd.server_port}/webhooks/gitea"
        path = EXAMPLES / "comment-help.json"
        assert deliver.deliver(settings, path, url=url, form=form) == 0
        assert '"status":"queued"' in capsys.readouterr().out
        inbox = app.extensions["ssd"].inbox
        [inbox_id] = [d for d in range(1, 3) if _exists(inbox, d)]
        assert inbox.get(inbox_id).payload == json.loads(path.read_bytes())
        # The same file again is a duplicate (exit 0, 2xx); a wrong secret is a 401 (exit 1).
        assert deliver.deliver(settings, path, url=url, form=form) == 0
        assert '"status":"duplicate"' in capsys.readouterr().out
        wrong = Settings.from_env(dict(settings_env, SSD_WEBHOOK_SECRET="nope"))
        assert deliver.deliver(wrong, path, url=url, form=form) == 1
    finally:
        httpd.shutdown()
        thread.join(5)
    assert deliver.deliver(settings, EXAMPLES / "comment-help.json", url=url) == 1  # nobody listening


def _exists(inbox: Inbox, inbox_id: int) -> bool:
    try:
        inbox.get(inbox_id)
        return True
    except KeyError:
        return False


# --------------------------------------------------------------------------- supervision


def _sleeper() -> list[str]:
    return [sys.executable, "-c", "import time; time.sleep(60)"]


def test_supervise_stops_everyone_when_one_child_dies():
    started = time.monotonic()
    rc = supervise.supervise(
        {"sleeper": _sleeper(), "crasher": [sys.executable, "-c", "import sys; sys.exit(3)"]}, dict(os.environ)
    )
    assert rc == 3
    assert time.monotonic() - started < 15


def test_supervise_treats_a_clean_exit_of_a_child_as_failure():
    assert (
        supervise.supervise({"sleeper": _sleeper(), "quitter": [sys.executable, "-c", "pass"]}, dict(os.environ)) == 1
    )


def _stop(proc: subprocess.Popen) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=45)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise


@pytest.mark.slow
def test_serve_on_embedded_defaults_answers_help_end_to_end(tmp_path):
    """A fresh data dir, no Redis URL, no secret: serve, print URL and secret, answer /ssd help in dry-run."""
    proc, port, log_path = start_serve(tmp_path)
    try:
        secret = (tmp_path / "data" / "webhook_secret").read_text().strip()
        output = log_path.read_text()
        assert f"Gitea webhook URL: http://127.0.0.1:{port}/webhooks/gitea" in output
        assert f"webhook secret:    {secret}" in output and len(secret) == 64
        assert requests.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200

        deliver = subprocess.run(
            [sys.executable, "-m", "ssd.cli", "deliver", str(EXAMPLES / "comment-help.json")],
            cwd=ROOT,
            env=serve_env(tmp_path, port),
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert deliver.returncode == 0, deliver.stderr
        assert '"status":"queued"' in deliver.stdout
        outbox = tmp_path / "data" / "outbox"
        wait_for(
            lambda: any("create_comment" in p.name for p in outbox.glob("*.json")),
            30,
            "no reply in the dry-run outbox:\n" + log_path.read_text(),
        )
        replies = [json.loads(p.read_text()) for p in sorted(outbox.glob("*.json"))]
        assert any("help" in json.dumps(reply) for reply in replies)
    finally:
        rc = _stop(proc)
    assert rc == 0, log_path.read_text()
    assert "SIGTERM received; stopping" in log_path.read_text()
    with pytest.raises(requests.RequestException):
        requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1)


@pytest.mark.slow
def test_serve_stops_everything_when_a_child_dies(tmp_path):
    proc, port, log_path = start_serve(tmp_path)
    try:
        pids = dict(re.findall(r"ssd: started (\S+) \(pid (\d+)\)", log_path.read_text()))
        assert set(pids) == {"redis", "web", "worker-default", "worker-jobs", "scheduler"}
        os.kill(int(pids["scheduler"]), signal.SIGKILL)
        rc = proc.wait(timeout=45)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert rc != 0
    assert "scheduler exited with status -9; stopping the others" in log_path.read_text()
    for pid in pids.values():
        with pytest.raises(ProcessLookupError):
            os.kill(int(pid), 0)


def test_config_error_names_the_variable(tmp_path):
    env = serve_env(tmp_path, 8080)
    env["SSD_BIND"] = "not-a-bind"
    result = subprocess.run(
        [sys.executable, "-m", "ssd.cli", "serve"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "SSD_BIND" in result.stderr
    env = serve_env(tmp_path, 8080)
    env["SSD_NIGHTLY_CRON"] = "every night"
    result = subprocess.run(
        [sys.executable, "-m", "ssd.cli", "serve"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2 and "SSD_NIGHTLY_CRON" in result.stderr
