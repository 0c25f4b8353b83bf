"""``POST /webhooks/gitea`` and the probes, with byte-exact Gitea deliveries and a real Redis."""

from __future__ import annotations

import time

import pytest
import redis
import sqlalchemy as sa
from rq import Queue

from core.config import Settings
from core.db import engine_for
from core.inbox import QUEUED_MARKS, Inbox, enqueue_pending, inbox_table, sync_marks
from tests.deliveries import (
    comment_delivery,
    delivery,
    gitea_json_bytes,
    merged_pr_delivery,
    merged_pr_payload,
    sign,
)
from webhooks.app import create_app

SECRET = "test-secret"
URL = "/webhooks/gitea"


def make_client(env: dict[str, str]):
    app = create_app(Settings.from_env(env))
    return app, app.test_client()


@pytest.fixture
def edge(settings_env, redis_conn):
    app, client = make_client(settings_env)
    return app, client, redis_conn


def rows(app) -> list[dict]:
    with app.extensions["ssd"].inbox.engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(inbox_table).order_by(inbox_table.c.id)).mappings()]


def default_queue(conn: redis.Redis) -> Queue:
    return Queue("default", connection=conn)


def counter(conn: redis.Redis, event: str, outcome: str) -> int:
    return int(conn.hget("ssd:metrics:deliveries", f"{event}|{outcome}") or 0)


def test_signed_comment_is_journaled_and_enqueued(edge):
    app, client, conn = edge
    body, hdrs = comment_delivery(SECRET, body="/ssd help", comment_id=4242)
    response = client.post(URL, data=body, headers=hdrs)
    assert response.status_code == 202
    inbox_id = response.json["inbox_id"]
    assert response.json == {"status": "queued", "inbox_id": inbox_id}
    [row] = rows(app)
    assert row["id"] == inbox_id
    assert row["payload"].encode() == body  # the exact signed text
    assert row["dedupe_key"] == "comment:4242:created"
    assert (row["event"], row["event_type"], row["action"]) == ("issue_comment", "issue_comment", "created")
    assert row["delivery_id"] == hdrs["X-Gitea-Delivery"]
    # The request marked it queued in Redis, in the enqueue's own transaction; the table learns in bulk.
    assert row["enqueued_at"] is None and conn.smembers(QUEUED_MARKS) == {str(inbox_id).encode()}
    inbox = app.extensions["ssd"].inbox
    assert sync_marks(inbox, conn) == 1 and conn.smembers(QUEUED_MARKS) == set()
    assert inbox.get(inbox_id).job_id == f"delivery-{inbox_id}" and inbox.get(inbox_id).enqueued_at is not None
    assert enqueue_pending(inbox, conn) == 0  # nothing left to queue, and nothing queued twice
    queue = default_queue(conn)
    assert queue.job_ids == [f"delivery-{inbox_id}"]
    job = queue.fetch_job(f"delivery-{inbox_id}")
    assert job.func_name == "bot.jobs.process_delivery" and job.args == (inbox_id,)
    assert counter(conn, "issue_comment", "queued") == 1


def test_pull_request_conversation_comment_is_a_command_event(edge):
    app, client, conn = edge
    body, hdrs = comment_delivery(SECRET, is_pull=True, number=2, comment_id=77)
    assert hdrs["X-Gitea-Event"] == "issue_comment" and hdrs["X-Gitea-Event-Type"] == "pull_request_comment"
    response = client.post(URL, data=body, headers=hdrs)
    assert response.status_code == 202 and response.json["status"] == "queued"
    assert rows(app)[0]["event_type"] == "pull_request_comment"


def test_hub_signature_256_alone_is_accepted(edge):
    app, client, _ = edge
    body, hdrs = comment_delivery(SECRET, comment_id=5)
    for name in ("X-Gitea-Signature", "X-Gogs-Signature", "X-Hub-Signature"):
        del hdrs[name]
    assert client.post(URL, data=body, headers=hdrs).status_code == 202
    assert len(rows(app)) == 1


@pytest.mark.parametrize("case", ["wrong", "empty", "missing", "other-secret", "sha1-only", "tampered"])
def test_bad_signatures_are_401_and_record_nothing(edge, case):
    app, client, conn = edge
    body, hdrs = comment_delivery(SECRET, comment_id=6)
    if case == "wrong":
        hdrs["X-Gitea-Signature"] = hdrs["X-Gogs-Signature"] = "0" * 64
        hdrs["X-Hub-Signature-256"] = "sha256=" + "0" * 64
    elif case == "empty":
        body, hdrs = comment_delivery(None, comment_id=6)  # what a hook without a secret sends
        assert hdrs["X-Gitea-Signature"] == "" and hdrs["X-Hub-Signature-256"] == "sha256="
    elif case == "missing":
        for name in ("X-Gitea-Signature", "X-Gogs-Signature", "X-Hub-Signature", "X-Hub-Signature-256"):
            del hdrs[name]
    elif case == "other-secret":
        body, hdrs = comment_delivery("not-the-secret", comment_id=6)
    elif case == "sha1-only":
        for name in ("X-Gitea-Signature", "X-Gogs-Signature", "X-Hub-Signature-256"):
            del hdrs[name]
    elif case == "tampered":
        body = body.replace(b"/ssd help", b"/ssd cancel")
    response = client.post(URL, data=body, headers=hdrs)
    assert response.status_code == 401
    assert rows(app) == []
    assert len(default_queue(conn)) == 0
    assert counter(conn, "unverified", "unauthorized") == 1


def test_empty_secret_file_fails_closed(settings_env, redis_conn, tmp_path):
    env = dict(settings_env)
    del env["SSD_WEBHOOK_SECRET"]
    data_dir = tmp_path / "data"
    data_dir.mkdir(exist_ok=True)
    (data_dir / "webhook_secret").write_text("")
    app, client = make_client(env)
    body = gitea_json_bytes({"action": "created", "comment": {"id": 1}})
    hdrs = {
        "X-Gitea-Event-Type": "issue_comment",
        "X-Gitea-Signature": sign("", body),
        "Content-Type": "application/json",
    }
    assert client.post(URL, data=body, headers=hdrs).status_code == 401
    assert rows(app) == []


def test_form_delivery_is_verified_over_the_decoded_field(edge):
    app, client, conn = edge
    body, hdrs = comment_delivery(SECRET, content_type="form", body="/ssd help + more & <stuff>", comment_id=8)
    assert body.startswith(b"payload=") and hdrs["Content-Type"] == "application/x-www-form-urlencoded"
    response = client.post(URL, data=body, headers=hdrs)
    assert response.status_code == 202 and response.json["status"] == "queued"
    [row] = rows(app)
    assert row["payload"].encode() == gitea_json_bytes(app.extensions["ssd"].inbox.get(row["id"]).payload)
    assert app.extensions["ssd"].inbox.get(row["id"]).payload["comment"]["body"] == "/ssd help + more & <stuff>"


def test_form_delivery_signed_over_the_raw_body_is_rejected(edge):
    app, client, _ = edge
    body, hdrs = comment_delivery(SECRET, content_type="form", comment_id=9)
    hdrs["X-Gitea-Signature"] = sign(SECRET, body)  # the mistake Gitea's docs invite
    del hdrs["X-Hub-Signature-256"]
    assert client.post(URL, data=body, headers=hdrs).status_code == 401
    assert client.post(URL, data=b"nothing=here", headers=hdrs).status_code == 400
    assert rows(app) == []


def test_body_over_the_cap_is_413(settings_env, redis_conn):
    app, client = make_client(dict(settings_env, SSD_MAX_BODY_BYTES="2048"))
    body, hdrs = comment_delivery(SECRET, comment_id=10)
    assert len(body) > 2048
    response = client.post(URL, data=body, headers=hdrs)
    assert response.status_code == 413
    assert rows(app) == []
    assert counter(redis_conn, "unverified", "too_large") == 1
    # Exactly at the cap is still fine.
    _, exact = make_client(dict(settings_env, SSD_MAX_BODY_BYTES=str(len(body))))
    assert exact.post(URL, data=body, headers=hdrs).status_code == 202


@pytest.mark.parametrize("text", [b"{not json", b"\xff\xfe{}", b"[1, 2]", b'{"action": "created"}'])
def test_malformed_or_unexpected_json_is_400(edge, text):
    app, client, conn = edge
    body, hdrs = delivery("issue_comment", "issue_comment", text, SECRET)
    response = client.post(URL, data=body, headers=hdrs)
    assert response.status_code == 400
    assert rows(app) == []
    assert counter(conn, "issue_comment", "bad_request") == 1


@pytest.mark.parametrize(
    ("event", "event_type", "payload"),
    [
        ("issue_comment", "issue_comment", {"action": "edited", "comment": {"id": 1}}),
        ("issue_comment", "issue_comment", {"action": "deleted", "comment": {"id": 1}}),
        ("push", "push", {"ref": "refs/heads/main"}),
        ("pull_request", "pull_request", merged_pr_payload(merged=False)),
        ("pull_request", "pull_request_sync", {"action": "synchronized"}),
        # A *review* comment: X-Gitea-Event is pull_request_comment, but it is no conversation comment.
        ("pull_request_comment", "pull_request_review_comment", {"action": "reviewed", "review": {}}),
    ],
)
def test_irrelevant_events_are_ignored_and_counted(edge, event, event_type, payload):
    app, client, conn = edge
    body, hdrs = delivery(event, event_type, payload, SECRET)
    response = client.post(URL, data=body, headers=hdrs)
    assert response.status_code == 200
    assert response.json == {"status": "ignored", "inbox_id": None}
    assert rows(app) == []
    assert counter(conn, event_type, "ignored") == 1


def test_unknown_event_type_is_counted_as_other(edge):
    app, client, conn = edge
    body, hdrs = delivery("x", "some_future_event", {"action": "x"}, SECRET)
    assert client.post(URL, data=body, headers=hdrs).json["status"] == "ignored"
    assert counter(conn, "other", "ignored") == 1


def test_replay_with_a_new_delivery_id_is_a_duplicate(edge):
    app, client, conn = edge
    body, hdrs = comment_delivery(SECRET, comment_id=11, delivery_id="first-uuid")
    first = client.post(URL, data=body, headers=hdrs)
    _, replay_headers = delivery("issue_comment", "issue_comment", body, SECRET, delivery_id="replay-uuid")
    replay = client.post(URL, data=body, headers=replay_headers)
    assert first.status_code == 202
    assert replay.status_code == 200
    assert replay.json == {"status": "duplicate", "inbox_id": first.json["inbox_id"]}
    assert len(rows(app)) == 1 and rows(app)[0]["delivery_id"] == "first-uuid"
    assert len(default_queue(conn)) == 1
    assert counter(conn, "issue_comment", "duplicate") == 1


def test_merged_pr_is_journaled_once_per_merge_commit(edge):
    app, client, conn = edge
    body, hdrs = merged_pr_delivery(SECRET, number=2, merge_commit_sha="ab" * 20)
    response = client.post(URL, data=body, headers=hdrs)
    assert response.status_code == 202 and response.json["status"] == "queued"
    assert rows(app)[0]["dedupe_key"] == f"merge:acme/widgets:2:{'ab' * 20}"
    again_body, again_headers = merged_pr_delivery(SECRET, number=2, merge_commit_sha="ab" * 20)
    assert client.post(URL, data=again_body, headers=again_headers).json["status"] == "duplicate"
    unmerged_body, unmerged_headers = merged_pr_delivery(SECRET, number=3, merged=False)
    assert client.post(URL, data=unmerged_body, headers=unmerged_headers).json["status"] == "ignored"
    assert len(default_queue(conn)) == 1


def test_redis_down_during_delivery_is_journaled_then_queued(settings_env, redis_process):
    app, client = make_client(dict(settings_env, SSD_REDIS_URL=redis_process.url))
    body, hdrs = comment_delivery(SECRET, comment_id=12)
    redis_process.stop()
    started = time.monotonic()
    response = client.post(URL, data=body, headers=hdrs)
    assert time.monotonic() - started < 3  # well inside Gitea's 5 s
    assert response.status_code == 202
    assert response.json == {"status": "journaled", "inbox_id": response.json["inbox_id"]}
    inbox_id = response.json["inbox_id"]
    inbox = Inbox(engine_for(Settings.from_env(settings_env).database_url))
    assert inbox.pending() == [inbox_id]
    assert client.get("/readyz").status_code == 503

    redis_process.start()
    conn = redis.Redis.from_url(redis_process.url)
    # The web process queues what it journaled once Redis answers again, without waiting for a request.
    deadline = time.monotonic() + 10
    while inbox.pending() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert inbox.pending() == []
    assert enqueue_pending(inbox, conn) == 0
    assert default_queue(conn).job_ids == [f"delivery-{inbox_id}"]
    assert default_queue(conn).fetch_job(f"delivery-{inbox_id}").args == (inbox_id,)
    # The same web process keeps working against the restarted server.
    body2, hdrs2 = comment_delivery(SECRET, comment_id=13)
    assert client.post(URL, data=body2, headers=hdrs2).json["status"] == "queued"


def test_healthz_and_readyz(edge):
    app, client, _ = edge
    assert client.get("/healthz").json == {"status": "ok"}
    assert client.get("/readyz").status_code == 200
    # Point the inbox at a database that is not there: readyz names it.
    app.extensions["ssd"].inbox.engine = engine_for("postgresql://postgres@127.0.0.1:1/none")
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json["down"] == ["database"]


def test_readyz_names_redis_when_it_is_down(settings_env, redis_process):
    app, client = make_client(dict(settings_env, SSD_REDIS_URL=redis_process.url))
    assert client.get("/readyz").status_code == 200
    redis_process.stop()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json["down"] == ["redis"]
    assert "redis" in response.json["errors"]
    # /healthz too: a web tier whose Redis is gone journals deliveries that no worker will see.
    health = client.get("/healthz")
    assert health.status_code == 503 and health.json["status"] == "unhealthy" and health.json["redis"]
    assert client.get("/metrics").status_code == 503
