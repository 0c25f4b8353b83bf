"""The inbox journal on SQLite and PostgreSQL, and re-enqueueing against a real Redis."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa
from rq import Queue

from core.db import engine_for
from core.inbox import DRAIN_LOCK, Inbox, enqueue, enqueue_pending, inbox_table, job_id_for, sync_marks
from tests.deliveries import comment_payload, gitea_json_bytes


@pytest.fixture
def inbox(database_url):
    return Inbox(engine_for(database_url))


def _record(inbox: Inbox, comment_id: int, delivery_id: str = "d-1") -> tuple[int, bool]:
    text = gitea_json_bytes(comment_payload(body="/ssd help <&>", comment_id=comment_id)).decode()
    return inbox.record(delivery_id, "issue_comment", "issue_comment", "created", f"comment:{comment_id}:created", text)


def test_record_dedupes_on_content_and_keeps_exact_text(inbox):
    first, is_new = _record(inbox, 1)
    again, again_new = _record(inbox, 1, delivery_id="d-2")  # a Replay: new delivery id, same content
    other, other_new = _record(inbox, 2)
    assert (is_new, again_new, other_new) == (True, False, True)
    assert again == first != other
    with inbox.engine.connect() as conn:
        stored = conn.execute(sa.select(inbox_table.c.payload).where(inbox_table.c.id == first)).scalar_one()
    assert stored.encode() == gitea_json_bytes(comment_payload(body="/ssd help <&>", comment_id=1))
    delivery = inbox.get(first)
    assert delivery.delivery_id == "d-1"
    assert delivery.payload["comment"]["id"] == 1
    assert (delivery.event, delivery.event_type, delivery.action) == ("issue_comment", "issue_comment", "created")
    assert delivery.received_at is not None and delivery.received_at.tzinfo is not None
    with pytest.raises(KeyError):
        inbox.get(10_000)


def test_pending_and_mark_enqueued(inbox):
    a, _ = _record(inbox, 1)
    b, _ = _record(inbox, 2)
    assert inbox.pending() == [a, b]
    assert inbox.pending(min_age=60) == []  # both are still "in flight" for a cautious drainer
    inbox.mark_enqueued(a, job_id_for(a))
    assert inbox.pending() == [b]
    assert inbox.get(a).job_id == f"delivery-{a}" and inbox.get(a).enqueued_at is not None
    time.sleep(0.05)
    assert inbox.pending(min_age=0.01) == [b]


def test_enqueue_pending_queues_each_row_once(inbox, redis_conn):
    a, _ = _record(inbox, 1)
    b, _ = _record(inbox, 2)
    # b's job already exists (its process died between enqueue and mark): mark it, don't queue it twice.
    Queue("default", connection=redis_conn).enqueue("bot.jobs.process_delivery", b, job_id=job_id_for(b))
    assert enqueue_pending(inbox, redis_conn) == 1
    assert inbox.pending() == []
    queue = Queue("default", connection=redis_conn)
    assert sorted(queue.job_ids) == sorted([f"delivery-{a}", f"delivery-{b}"])
    job = queue.fetch_job(f"delivery-{a}")
    assert job.func_name == "bot.jobs.process_delivery" and job.args == (a,)
    assert enqueue_pending(inbox, redis_conn) == 0
    assert len(queue) == 2


def test_enqueue_is_one_transaction_and_marks_sync_in_bulk(inbox, redis_conn):
    ids = [_record(inbox, n)[0] for n in range(1, 4)]
    for inbox_id in ids[:2]:
        enqueue(redis_conn, inbox_id, also=lambda pipe: pipe.hincrby("ssd:test", "n", 1))
    assert Queue("default", connection=redis_conn).job_ids == [f"delivery-{i}" for i in ids[:2]]
    assert int(redis_conn.hget("ssd:test", "n")) == 2
    assert inbox.pending() == ids  # the table has not heard yet
    assert sync_marks(inbox, redis_conn) == 2
    assert inbox.pending() == ids[2:]
    assert inbox.get(ids[0]).job_id == f"delivery-{ids[0]}"
    # A request whose enqueue went through but which died before the mark: the drainer must not
    # queue it again (RQ's unique enqueue), only mark it.
    Queue("default", connection=redis_conn).enqueue("bot.jobs.process_delivery", ids[2], job_id=job_id_for(ids[2]))
    assert enqueue_pending(inbox, redis_conn) == 0
    assert inbox.pending() == []
    assert len(Queue("default", connection=redis_conn)) == 3


def test_enqueue_pending_yields_to_another_drainer(inbox, redis_conn):
    _record(inbox, 1)
    lock = redis_conn.lock(DRAIN_LOCK, timeout=30)
    assert lock.acquire(blocking=False)
    assert enqueue_pending(inbox, redis_conn) == 0
    assert len(inbox.pending()) == 1
    lock.release()
    assert enqueue_pending(inbox, redis_conn) == 1
