"""The inbox journal as the source of truth: processed marks, the upgrade of an older table, concurrent
journal writes (SQLite's group commit) on SQLite and PostgreSQL, and SQLite's synchronous=FULL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import sqlalchemy as sa

from core.db import engine_for
from core.inbox import Inbox, inbox_table, lost_jobs
from tests.deliveries import comment_payload, gitea_json_bytes


def _text(comment_id: int) -> str:
    return gitea_json_bytes(comment_payload(comment_id=comment_id)).decode()


def test_concurrent_records_are_each_durable_once_and_duplicates_resolve_to_the_first(database_url):
    inbox = Inbox(engine_for(database_url))
    results: dict[int, list[tuple[int, bool]]] = {key: [] for key in range(10)}
    start = threading.Barrier(30)

    def record(n: int) -> None:
        key = n % 10  # each key three times, from threads racing each other
        start.wait()
        results[key].append(
            inbox.record(f"d-{n}", "issue_comment", "issue_comment", "created", f"comment:{key}:created", _text(key))
        )

    threads = [threading.Thread(target=record, args=(n,)) for n in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    ids = set()
    for key, outcomes in results.items():
        assert len(outcomes) == 3
        assert len({inbox_id for inbox_id, _ in outcomes}) == 1, outcomes  # one row per key
        assert sorted(is_new for _, is_new in outcomes) == [False, False, True]
        ids.add(outcomes[0][0])
        assert inbox.get(outcomes[0][0]).payload["comment"]["id"] == key
    assert len(ids) == 10 and sorted(inbox.pending()) == sorted(ids)


def test_processed_rows_leave_the_unprocessed_list(database_url, redis_conn):
    inbox = Inbox(engine_for(database_url))
    a, _ = inbox.record("a", "issue_comment", "issue_comment", "created", "comment:1:created", _text(1))
    b, _ = inbox.record("b", "issue_comment", "issue_comment", "created", "comment:2:created", _text(2))
    assert inbox.unprocessed() == []  # pending rows are enqueue_pending's business, not "lost"
    inbox.mark_enqueued(a, f"delivery-{a}")
    inbox.mark_enqueued(b, f"delivery-{b}")
    assert inbox.unprocessed() == [a, b] and inbox.unprocessed(min_age=60) == []
    assert lost_jobs(inbox, redis_conn) == [a, b]  # neither job is in this Redis
    inbox.mark_processed(a, "ignored: no commands")
    delivery = inbox.get(a)
    assert delivery.processed_at is not None and delivery.outcome == "ignored: no commands"
    assert inbox.unprocessed() == [b]


def test_an_inbox_table_from_before_processed_at_is_upgraded(tmp_path):
    engine = engine_for(f"sqlite:///{tmp_path / 'old.db'}")
    with engine.begin() as conn:  # the table as the first release created it
        conn.execute(
            sa.text(
                "CREATE TABLE inbox (id INTEGER PRIMARY KEY AUTOINCREMENT, delivery_id VARCHAR(64), "
                "event VARCHAR(64) NOT NULL, event_type VARCHAR(64) NOT NULL, action VARCHAR(64) NOT NULL, "
                "dedupe_key VARCHAR(512) NOT NULL UNIQUE, payload TEXT NOT NULL, received_at TIMESTAMP NOT NULL, "
                "enqueued_at TIMESTAMP, job_id VARCHAR(128))"
            )
        )
        now = datetime.now(UTC).isoformat(sep=" ")
        for n, enqueued in ((1, now), (2, None)):
            conn.execute(
                sa.text(
                    "INSERT INTO inbox (event, event_type, action, dedupe_key, payload, received_at, enqueued_at) "
                    "VALUES ('issue_comment', 'issue_comment', 'created', :key, '{}', :now, :enqueued)"
                ),
                {"key": f"comment:{n}:created", "now": now, "enqueued": enqueued},
            )
    inbox = Inbox(engine)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(inbox_table.c.id, inbox_table.c.processed_at, inbox_table.c.outcome).order_by(inbox_table.c.id)
        ).all()
    # Rows queued back then are history (never run again); pending ones still get queued and processed.
    assert rows[0].processed_at is not None and rows[0].outcome == "before processed_at"
    assert rows[1].processed_at is None
    assert inbox.pending() == [2] and inbox.unprocessed() == []


def test_sqlite_commits_wait_for_the_disk(tmp_path):
    engine = engine_for(f"sqlite:///{tmp_path / 'ssd.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
