"""The inbox: every accepted delivery, journaled durably before Gitea gets its 2xx.

Gitea never retries a delivery it saw answered, so the row written here is the only copy. A delivery
is "pending" until it is on the RQ ``default`` queue; ``enqueue_pending`` moves pending rows there
whenever Redis is reachable (web start-up, the next delivery after a failure, the scheduler loop).
Rows are deduplicated on content (``dedupe_key``), because a Replay in Gitea carries a new delivery id.
"""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
import sqlalchemy as sa
from rq.job import Job
from sqlalchemy.engine import Engine

from ssd.queues import DEFAULT, queue

log = logging.getLogger(__name__)

PROCESS_DELIVERY = "bot.jobs.process_delivery"
DRAIN_LOCK = "ssd:inbox:drain-lock"

metadata = sa.MetaData()

inbox_table = sa.Table(
    "inbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("delivery_id", sa.String(64), nullable=True),
    sa.Column("event", sa.String(64), nullable=False),
    sa.Column("event_type", sa.String(64), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("dedupe_key", sa.String(512), nullable=False, unique=True),
    sa.Column("payload", sa.Text, nullable=False),  # the exact JSON text Gitea signed
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=True, index=True),
    sa.Column("job_id", sa.String(128), nullable=True),
)


def job_id_for(inbox_id: int) -> str:
    return f"delivery-{inbox_id}"


@dataclass(frozen=True)
class Delivery:
    id: int
    delivery_id: str | None
    event: str
    event_type: str
    action: str
    payload: dict[str, Any]
    received_at: datetime | None = None
    enqueued_at: datetime | None = None
    job_id: str | None = None


def _utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything stored here is UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


_created: set[int] = set()  # engines whose schema exists, so create_all runs once per engine per process


class Inbox:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        if id(engine) not in _created:
            try:
                metadata.create_all(engine)
            except sa.exc.DBAPIError:
                # Several gunicorn workers start at once; the loser of the CREATE TABLE race retries.
                metadata.create_all(engine)
            _created.add(id(engine))

    def record(
        self,
        delivery_id: str | None,
        event: str,
        event_type: str,
        action: str,
        dedupe_key: str,
        payload_text: str,
    ) -> tuple[int, bool]:
        """Journal a delivery; returns (inbox_id, is_new). A known ``dedupe_key`` returns the first row's id."""
        try:
            with self.engine.begin() as conn:
                result = conn.execute(
                    inbox_table.insert().values(
                        delivery_id=delivery_id,
                        event=event,
                        event_type=event_type,
                        action=action,
                        dedupe_key=dedupe_key,
                        payload=payload_text,
                        received_at=datetime.now(UTC),
                    )
                )
                return int(result.inserted_primary_key[0]), True
        except sa.exc.IntegrityError:
            with self.engine.connect() as conn:
                existing = conn.execute(
                    sa.select(inbox_table.c.id).where(inbox_table.c.dedupe_key == dedupe_key)
                ).scalar_one()
            return int(existing), False

    def get(self, inbox_id: int) -> Delivery:
        """The journaled delivery; raises KeyError for an unknown id."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(inbox_table).where(inbox_table.c.id == inbox_id)).mappings().first()
        if row is None:
            raise KeyError(f"no inbox row {inbox_id}")
        return Delivery(
            id=row["id"],
            delivery_id=row["delivery_id"],
            event=row["event"],
            event_type=row["event_type"],
            action=row["action"],
            payload=json.loads(row["payload"]),
            received_at=_utc(row["received_at"]),
            enqueued_at=_utc(row["enqueued_at"]),
            job_id=row["job_id"],
        )

    def mark_enqueued(self, inbox_id: int, job_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                inbox_table.update()
                .where(inbox_table.c.id == inbox_id)
                .values(enqueued_at=datetime.now(UTC), job_id=job_id)
            )

    def pending(self, min_age: float = 0.0) -> list[int]:
        """Ids journaled but not yet queued, oldest first; ``min_age`` (seconds) skips rows still in flight."""
        query = sa.select(inbox_table.c.id).where(inbox_table.c.enqueued_at.is_(None)).order_by(inbox_table.c.id)
        if min_age > 0:
            query = query.where(inbox_table.c.received_at <= datetime.now(UTC) - timedelta(seconds=min_age))
        with self.engine.connect() as conn:
            return [int(row_id) for row_id in conn.execute(query).scalars()]


def enqueue(inbox: Inbox, conn: redis.Redis, inbox_id: int) -> str:
    """Put one journaled delivery on the ``default`` queue and mark it; raises redis errors to the caller."""
    job_id = job_id_for(inbox_id)
    queue(DEFAULT, conn).enqueue(PROCESS_DELIVERY, inbox_id, job_id=job_id)
    inbox.mark_enqueued(inbox_id, job_id)
    return job_id


def enqueue_pending(inbox: Inbox, conn: redis.Redis, min_age: float = 0.0) -> int:
    """Queue every pending delivery; returns how many were queued.

    ``min_age`` leaves alone rows younger than that many seconds: a web request that has just journaled
    a row enqueues it itself within milliseconds, and enqueueing it here as well would run it twice.
    Callers running concurrently with live traffic (the scheduler, other web workers) pass a grace
    period; an operator or a test draining the inbox after an outage passes 0.

    A row whose job already exists in Redis (enqueued, but the process died before marking it) is only
    marked, never queued a second time. Redis errors propagate: the rows stay pending for the next try.
    Returns 0 at once when another process holds the drain lock.
    """
    # One drainer at a time across processes: two drainers racing past Job.exists would queue twice.
    lock = conn.lock(DRAIN_LOCK, timeout=120)
    if not lock.acquire(blocking=False):
        return 0
    queued = 0
    try:
        for inbox_id in inbox.pending(min_age=min_age):
            job_id = job_id_for(inbox_id)
            if Job.exists(job_id, connection=conn):
                inbox.mark_enqueued(inbox_id, job_id)
                continue
            enqueue(inbox, conn, inbox_id)
            queued += 1
    finally:
        with contextlib.suppress(redis.exceptions.LockError, redis.RedisError):
            lock.release()
    if queued:
        log.info("enqueued %d pending deliveries", queued)
    return queued
