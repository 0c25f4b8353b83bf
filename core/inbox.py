"""The inbox: every accepted delivery, journaled durably before Gitea gets its 2xx.

Gitea never retries a delivery it saw answered, so the row written here is the only copy. A delivery
is "pending" until it is marked queued; ``enqueue_pending`` moves pending rows onto the RQ ``default``
queue whenever Redis is reachable (web start-up, the web's retry thread after a failure, the scheduler
loop). ``enqueued_at``/``job_id`` of a row queued by its own request are filled in a few seconds later,
in bulk, from marks the request left in Redis (``sync_marks``).

The journal, not Redis, is the source of truth: ``process_delivery`` stamps ``processed_at`` when it is
done with a row (or gives up on a malformed one), and ``enqueue_pending`` queues again every row that
was queued but never processed and whose job Redis no longer has (a restart without persistence, an
eviction, a flush).
Rows are deduplicated on content (``dedupe_key``), because a Replay in Gitea carries a new delivery id.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
import sqlalchemy as sa
from redis.client import Pipeline
from rq import Queue, Retry
from rq.exceptions import DuplicateJobError
from rq.job import Job
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine

from core.queues import DEFAULT, queue

log = logging.getLogger(__name__)

PROCESS_DELIVERY = "bot.jobs.process_delivery"
DRAIN_LOCK = "ssd:inbox:drain-lock"
# Short, and extended while a drain runs: a drainer that lost Redis mid-way (a hung server) cannot leave
# the lock behind for long.
DRAIN_LOCK_TTL = 15
PENDING_GRACE = 15.0  # seconds a journaled row is left to the web request that wrote it before others queue it
QUEUED_MARKS = "ssd:inbox:queued"  # ids queued by web requests whose mark is not in the table yet

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
    sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True, index=True),
    sa.Column("outcome", sa.String(500), nullable=True),  # what process_delivery made of it, in short
)

# Columns added after the first release, with their SQL type for ALTER TABLE on an existing database.
_ADDED_COLUMNS = {"processed_at": "TIMESTAMP", "outcome": "VARCHAR(500)"}


_INSERT = inbox_table.insert()
# SQLite's group commit inserts with ON CONFLICT DO NOTHING: a duplicate in a batch must not abort the rest.
_INSERT_NEW_SQLITE = (
    sqlite_insert(inbox_table).on_conflict_do_nothing(index_elements=["dedupe_key"]).returning(inbox_table.c.id)
)
_SELECT_BY_KEY = sa.select(inbox_table.c.id).where(inbox_table.c.dedupe_key == sa.bindparam("dedupe_key"))


@dataclass
class _Waiting:
    """One request's row in SQLite's group commit, and what became of it."""

    values: dict[str, Any]
    done: bool = False
    result: tuple[int, bool] | None = None
    error: BaseException | None = None


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
    processed_at: datetime | None = None
    outcome: str | None = None


def _utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything stored here is UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


_created: set[int] = set()  # engines whose schema exists, so create_all runs once per engine per process


def _add_missing_columns(engine: Engine) -> None:
    """Bring an inbox table from before ``processed_at`` up to date.

    Rows already queued then are taken as processed (their history is unknown, and running old commands
    again would be worse than the rare loss the column now prevents); pending rows stay pending.
    """
    present = {column["name"] for column in sa.inspect(engine).get_columns("inbox")}
    missing = [name for name in _ADDED_COLUMNS if name not in present]
    if not missing:
        return
    with engine.begin() as conn:
        for name in missing:
            conn.execute(sa.text(f"ALTER TABLE inbox ADD COLUMN {name} {_ADDED_COLUMNS[name]}"))
        if "processed_at" in missing:
            conn.execute(
                sa.text(
                    "UPDATE inbox SET processed_at = enqueued_at, outcome = 'before processed_at' "
                    "WHERE enqueued_at IS NOT NULL"
                )
            )
    log.info("inbox: added columns %s", ", ".join(missing))


class Inbox:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # SQLite has one writer at a time, and a writer that finds the file locked sleeps in steps of
        # 1, 2, 5, 10... ms. Threads of one process queue on this lock instead (no sleeping), so only
        # other processes ever meet the file lock. PostgreSQL needs no such thing.
        self._write_lock: threading.Lock | contextlib.nullcontext = (
            threading.Lock() if engine.dialect.name == "sqlite" else contextlib.nullcontext()
        )
        self._group_commit = engine.dialect.name == "sqlite"
        self._waiting: list[_Waiting] = []
        self._waiting_lock = threading.Lock()
        if id(engine) not in _created:
            try:
                metadata.create_all(engine)
            except sa.exc.DBAPIError:
                # Several gunicorn workers start at once; the loser of the CREATE TABLE race retries.
                metadata.create_all(engine)
            try:
                _add_missing_columns(engine)
            except sa.exc.DBAPIError:
                _add_missing_columns(engine)  # the same race, for ALTER TABLE
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
        """Journal a delivery; returns (inbox_id, is_new). A known ``dedupe_key`` returns the first row's id.

        The row is durable when this returns (SQLite: ``synchronous=FULL``, so the commit waits for the disk).
        """
        values = {
            "delivery_id": delivery_id,
            "event": event,
            "event_type": event_type,
            "action": action,
            "dedupe_key": dedupe_key,
            "payload": payload_text,
            "received_at": datetime.now(UTC),
        }
        if self._group_commit:
            return self._record_grouped(values)
        try:
            with self._write_lock, self.engine.begin() as conn:
                # A prebuilt statement with parameters, not .values(...): SQLAlchemy then reuses the compiled
                # form instead of rebuilding and hashing the statement on every delivery (~1 ms).
                result = conn.execute(_INSERT, values)
                return int(result.inserted_primary_key[0]), True
        except sa.exc.IntegrityError:
            with self.engine.connect() as conn:
                existing = conn.execute(_SELECT_BY_KEY, {"dedupe_key": dedupe_key}).scalar_one()
            return int(existing), False

    def _record_grouped(self, values: dict[str, Any]) -> tuple[int, bool]:
        """SQLite group commit: every row queued while one commit waits for the disk goes into the next
        transaction together, so concurrent requests share one fsync instead of queueing for one each.

        Whoever holds the write lock commits everything waiting; a thread that gets the lock and finds
        its row already committed by someone else just returns.
        """
        mine = _Waiting(values)
        with self._waiting_lock:
            self._waiting.append(mine)
        with self._write_lock:
            if not mine.done:
                with self._waiting_lock:
                    batch, self._waiting = self._waiting, []
                self._commit_batch(batch)
        if mine.error is not None:
            raise mine.error
        assert mine.result is not None
        return mine.result

    def _commit_batch(self, batch: list[_Waiting]) -> None:
        try:
            with self.engine.begin() as conn:
                for waiting in batch:
                    inserted = conn.execute(_INSERT_NEW_SQLITE, waiting.values).scalar()
                    if inserted is not None:
                        waiting.result = (int(inserted), True)
                    else:  # a known dedupe_key (possibly from earlier in this very batch)
                        existing = conn.execute(_SELECT_BY_KEY, {"dedupe_key": waiting.values["dedupe_key"]})
                        waiting.result = (int(existing.scalar_one()), False)
        except BaseException as exc:
            for waiting in batch:
                waiting.error = exc
        finally:
            for waiting in batch:
                waiting.done = True

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
            processed_at=_utc(row["processed_at"]),
            outcome=row["outcome"],
        )

    def mark_processed(self, inbox_id: int, outcome: str) -> None:
        """Record that ``process_delivery`` is done with the row; it is never queued again after this."""
        with self._write_lock, self.engine.begin() as conn:
            conn.execute(
                inbox_table.update()
                .where(inbox_table.c.id == inbox_id)
                .values(processed_at=datetime.now(UTC), outcome=outcome[:500])
            )

    def unprocessed(self, min_age: float = 0.0) -> list[int]:
        """Ids queued but not processed yet (in a queue, running, retrying, or lost), oldest first.

        ``min_age`` (seconds since queued) skips rows whose job is still being created.
        """
        query = (
            sa.select(inbox_table.c.id)
            .where(inbox_table.c.enqueued_at.is_not(None), inbox_table.c.processed_at.is_(None))
            .order_by(inbox_table.c.id)
        )
        if min_age > 0:
            query = query.where(inbox_table.c.enqueued_at <= datetime.now(UTC) - timedelta(seconds=min_age))
        with self.engine.connect() as conn:
            return [int(row_id) for row_id in conn.execute(query).scalars()]

    def mark_enqueued(self, inbox_id: int, job_id: str) -> None:
        with self._write_lock, self.engine.begin() as conn:
            conn.execute(
                inbox_table.update()
                .where(inbox_table.c.id == inbox_id)
                .values(enqueued_at=datetime.now(UTC), job_id=job_id)
            )

    def mark_enqueued_many(self, inbox_ids: list[int]) -> None:
        """Mark rows queued by ``enqueue`` (their job ids are ``delivery-{id}``); already marked ones stay."""
        job_id = sa.literal("delivery-", sa.String) + sa.cast(inbox_table.c.id, sa.String)
        for start in range(0, len(inbox_ids), 500):
            chunk = inbox_ids[start : start + 500]
            with self._write_lock, self.engine.begin() as conn:
                conn.execute(
                    inbox_table.update()
                    .where(inbox_table.c.id.in_(chunk), inbox_table.c.enqueued_at.is_(None))
                    .values(enqueued_at=datetime.now(UTC), job_id=job_id)
                )

    def pending(self, min_age: float = 0.0) -> list[int]:
        """Ids journaled but not marked queued, oldest first; ``min_age`` (seconds) skips rows still in flight.

        A row a web request queued carries its mark in Redis until ``sync_marks`` copies it here.
        """
        query = sa.select(inbox_table.c.id).where(inbox_table.c.enqueued_at.is_(None)).order_by(inbox_table.c.id)
        if min_age > 0:
            query = query.where(inbox_table.c.received_at <= datetime.now(UTC) - timedelta(seconds=min_age))
        with self.engine.connect() as conn:
            return [int(row_id) for row_id in conn.execute(query).scalars()]


def delivery_retry() -> Retry:
    """Gitea may be down for longer than the client's own retries; the job is safe to rerun
    (commands claim their line in Redis and release the claim when they fail before running)."""
    return Retry(max=3, interval=[10, 60, 300])


def enqueue(
    conn: redis.Redis,
    inbox_id: int,
    rq_queue: Queue | None = None,
    also: Callable[[Pipeline], None] | None = None,
) -> str:
    """Put one journaled delivery on the ``default`` queue, in a single Redis round trip.

    The job, the queue push, the "queued" mark (``QUEUED_MARKS``) and whatever ``also`` adds (the web
    tier's delivery counter) go in one MULTI/EXEC: either all of it happened or none of it did. The
    mark reaches the database later, in bulk (``sync_marks``), which keeps the request path at one
    INSERT and one Redis call. Redis errors propagate: the row stays pending for ``enqueue_pending``.
    """
    job_id = job_id_for(inbox_id)
    pipe = conn.pipeline()
    (rq_queue or queue(DEFAULT, conn)).enqueue(
        PROCESS_DELIVERY, inbox_id, job_id=job_id, retry=delivery_retry(), pipeline=pipe
    )
    pipe.sadd(QUEUED_MARKS, inbox_id)
    if also is not None:
        also(pipe)
    pipe.execute()
    return job_id


def sync_marks(inbox: Inbox, conn: redis.Redis) -> int:
    """Copy the "queued" marks web requests left in Redis into the inbox table; returns how many."""
    ids = sorted(int(member) for member in conn.smembers(QUEUED_MARKS))
    if ids:
        inbox.mark_enqueued_many(ids)
        conn.srem(QUEUED_MARKS, *ids)
    return len(ids)


def enqueue_unique(inbox: Inbox, conn: redis.Redis, inbox_ids: list[int], rq_queue: Queue | None = None) -> int:
    """Queue these rows with RQ's atomic unique enqueue and mark them; returns how many were queued.

    A row whose job exists already is only marked. Safe next to other drainers, but not next to a web
    request still enqueueing the same row (its plain enqueue would queue the job a second time).
    """
    rq_queue = rq_queue or queue(DEFAULT, conn)
    queued = 0
    for inbox_id in inbox_ids:
        job_id = job_id_for(inbox_id)
        try:
            rq_queue.enqueue(PROCESS_DELIVERY, inbox_id, job_id=job_id, unique=True, retry=delivery_retry())
            queued += 1
        except DuplicateJobError:
            pass
        inbox.mark_enqueued(inbox_id, job_id)
    return queued


def lost_jobs(inbox: Inbox, conn: redis.Redis, min_age: float = 0.0) -> list[int]:
    """Ids queued but never processed whose job Redis no longer has: Redis lost them, not a worker."""
    candidates = inbox.unprocessed(min_age=min_age)
    lost: list[int] = []
    for start in range(0, len(candidates), 500):
        chunk = candidates[start : start + 500]
        pipe = conn.pipeline(transaction=False)
        for inbox_id in chunk:
            pipe.exists(Job.key_for(job_id_for(inbox_id)))
        lost += [inbox_id for inbox_id, exists in zip(chunk, pipe.execute(), strict=True) if not exists]
    return lost


def enqueue_pending(inbox: Inbox, conn: redis.Redis, min_age: float = 0.0) -> int:
    """Queue every journaled delivery that is not queued yet, or whose job was lost unprocessed;
    returns how many were queued.

    ``min_age`` leaves alone rows younger than that many seconds: a web request that has just journaled
    a row enqueues it itself within milliseconds. Callers running next to live traffic (the scheduler,
    web workers) pass a grace period; an operator or a test draining the inbox after an outage passes 0.

    The enqueue is RQ's atomic unique enqueue: a row whose job already exists (queued by its request,
    which died before anything was marked) is only marked, never queued twice. Redis errors propagate:
    the rows stay pending for the next try. Returns 0 at once when another process holds the drain lock.
    """
    # One drainer at a time across processes, so two of them never race on the same rows.
    lock = conn.lock(DRAIN_LOCK, timeout=DRAIN_LOCK_TTL)
    if not lock.acquire(blocking=False):
        return 0
    queued = 0
    try:
        sync_marks(inbox, conn)
        rq_queue = queue(DEFAULT, conn)
        pending = inbox.pending(min_age=min_age)
        lost = lost_jobs(inbox, conn, min_age=min_age)
        if lost:
            log.warning(
                "inbox: the jobs of deliveries %s are gone from Redis unprocessed; queueing them again",
                ", ".join(map(str, lost)),
            )
        ids = pending + lost
        for start in range(0, len(ids), 100):
            queued += enqueue_unique(inbox, conn, ids[start : start + 100], rq_queue)
            lock.extend(DRAIN_LOCK_TTL, replace_ttl=True)
    finally:
        with contextlib.suppress(redis.exceptions.LockError, redis.RedisError):
            lock.release()
    if queued:
        log.info("enqueued %d pending deliveries", queued)
    return queued
