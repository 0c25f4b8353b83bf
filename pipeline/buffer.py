"""The training buffer: one example per merged PR, kept durably, with a rolling window of the newest N.

Storage is SQLAlchemy Core on a ``core.db`` engine, so the same code runs on SQLite (WAL, the
default) and PostgreSQL. Examples are never deleted: when the window moves, older ones are flagged
``archived`` and stay exportable. "Newest" means most recently ingested (the row id), because Gitea
delivers merges in no particular order and a late delivery is still fresh training data to us.

Idempotency rests on the unique constraint over (repo, pr_number, merge_sha): a redelivered merge,
or the same delivery processed by two workers at once, inserts nothing the second time.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import weakref
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

if TYPE_CHECKING:  # datasets is part of the ML extra; the web tier must never import it
    import datasets

metadata = sa.MetaData()

examples_table = sa.Table(
    "buffer_examples",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("repo", sa.String(255), nullable=False),
    sa.Column("pr_number", sa.Integer, nullable=False),
    sa.Column("merge_sha", sa.String(64), nullable=False),
    sa.Column("prompt", sa.Text, nullable=False),
    sa.Column("answer", sa.Text, nullable=False),
    sa.Column("issue_numbers", sa.Text, nullable=False, default="[]"),  # JSON list of ints
    sa.Column("merged_by", sa.String(255), nullable=False, default=""),
    sa.Column("merged_at", sa.String(64), nullable=False, default=""),
    sa.Column("delivery_id", sa.String(64), nullable=False, default=""),
    sa.Column("created_at", sa.String(64), nullable=False),
    sa.Column("archived", sa.Boolean, nullable=False, default=False),
    sa.Column("archived_at", sa.String(64), nullable=True),
    sa.UniqueConstraint("repo", "pr_number", "merge_sha", name="uq_buffer_examples_merge"),
)
sa.Index("ix_buffer_examples_archived_id", examples_table.c.archived, examples_table.c.id)

# Serialises writers on PostgreSQL so that the window is applied against a consistent set of rows.
# Any constant works; this one spells "ssd buffer".
_PG_LOCK_KEY = 0x55D_B0FFE4

_schema_ready: weakref.WeakSet[Engine] = weakref.WeakSet()
_schema_lock = threading.Lock()

# Columns of export_jsonl / to_dataset beside the chat-form prompt and completion.
METADATA_FIELDS = (
    "repo",
    "pr_number",
    "merge_sha",
    "issue_numbers",
    "merged_by",
    "merged_at",
    "delivery_id",
    "created_at",
    "archived",
)


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Example:
    """One merged PR as a training pair: prompt = the linked issues (or the PR text), answer = the diff."""

    repo: str
    pr_number: int
    merge_sha: str
    prompt: str
    answer: str
    issue_numbers: list[int] = field(default_factory=list)
    merged_by: str = ""
    merged_at: str = ""  # ISO 8601 as Gitea sent it
    delivery_id: str = ""
    created_at: str = field(default_factory=utc_now)
    # Set when read back from the buffer; not part of an example's identity.
    id: int | None = field(default=None, compare=False)
    archived: bool = field(default=False, compare=False)

    def validate(self) -> None:
        if not self.repo or "/" not in self.repo:
            raise ValueError(f"repo must be owner/name, got {self.repo!r}")
        if not isinstance(self.pr_number, int) or self.pr_number <= 0:
            raise ValueError(f"pr_number must be a positive int, got {self.pr_number!r}")
        if not self.merge_sha:
            raise ValueError("merge_sha is required: it tells a redelivery from a new merge")
        if not isinstance(self.prompt, str) or not isinstance(self.answer, str):
            raise ValueError("prompt and answer must be strings")
        if not all(isinstance(n, int) for n in self.issue_numbers):
            raise ValueError(f"issue_numbers must be ints, got {self.issue_numbers!r}")

    def to_record(self) -> dict[str, Any]:
        """The SSD-ready conversational prompt/completion form plus the metadata fields."""
        record: dict[str, Any] = {
            "prompt": [{"role": "user", "content": self.prompt}],
            "completion": [{"role": "assistant", "content": self.answer}],
        }
        for name in METADATA_FIELDS:
            value = getattr(self, name)
            record[name] = list(value) if name == "issue_numbers" else value
        return record

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _from_row(row: sa.Row) -> Example:
    return Example(
        repo=row.repo,
        pr_number=row.pr_number,
        merge_sha=row.merge_sha,
        prompt=row.prompt,
        answer=row.answer,
        issue_numbers=json.loads(row.issue_numbers),
        merged_by=row.merged_by,
        merged_at=row.merged_at,
        delivery_id=row.delivery_id,
        created_at=row.created_at,
        id=row.id,
        archived=bool(row.archived),
    )


def ensure_schema(engine: Engine) -> None:
    """Create the table once per engine per process; tolerate another process creating it first."""
    with _schema_lock:
        if engine in _schema_ready:
            return
        try:
            metadata.create_all(engine)
        except sa.exc.DBAPIError:
            # Two processes racing on CREATE TABLE: one wins, the other errors. Check again.
            if not sa.inspect(engine).has_table(examples_table.name):
                raise
        _schema_ready.add(engine)


class TrainingBuffer:
    """The durable rolling buffer of merged-PR examples.

    ``window`` is how many of the newest examples are active; changing it re-applies the window in
    both directions (a larger window brings the newest archived examples back).
    """

    def __init__(self, engine: Engine, window: int = 500) -> None:
        if window < 1:
            raise ValueError("window must be >= 1")
        self.engine = engine
        self._window = window
        ensure_schema(engine)
        self.apply_window()

    # ------------------------------------------------------------------ writing

    @property
    def window(self) -> int:
        return self._window

    @window.setter
    def window(self, value: int) -> None:
        if value < 1:
            raise ValueError("window must be >= 1")
        self._window = value
        self.apply_window()

    def add(self, example: Example) -> bool:
        """Store one example; False (and nothing changes) if this merge is already stored."""
        example.validate()
        values = {
            "repo": example.repo,
            "pr_number": example.pr_number,
            "merge_sha": example.merge_sha,
            "prompt": example.prompt,
            "answer": example.answer,
            "issue_numbers": json.dumps(list(example.issue_numbers)),
            "merged_by": example.merged_by or "",
            "merged_at": example.merged_at or "",
            "delivery_id": example.delivery_id or "",
            "created_at": example.created_at or utc_now(),
            "archived": False,
        }
        with self.engine.begin() as conn:
            self._lock(conn)
            inserted = self._insert_once(conn, values)
            if inserted:
                self._apply_window(conn)
        return inserted

    def _insert_once(self, conn: Connection, values: dict[str, Any]) -> bool:
        """INSERT … ON CONFLICT DO NOTHING on the unique key: no exception, no aborted transaction."""
        dialect = conn.dialect.name
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        elif dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        else:  # any other backend: let the unique constraint raise
            try:
                with conn.begin_nested():
                    conn.execute(examples_table.insert().values(**values))
                return True
            except sa.exc.IntegrityError:
                return False
        statement = (
            insert(examples_table)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["repo", "pr_number", "merge_sha"])
            .returning(examples_table.c.id)  # rowcount is -1 here on psycopg 3; a returned id is not
        )
        return conn.execute(statement).first() is not None

    @staticmethod
    def _lock(conn: Connection) -> None:
        """Take the buffer's write lock for the rest of this transaction, before reading anything.

        Without it, reading the window cutoff and updating the flags could interleave with another
        writer and leave too many (or too few) examples active.
        """
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        elif conn.dialect.name == "sqlite":
            # pysqlite opens a (deferred) transaction only at the first write, so a read first would run
            # outside it. A write statement that matches nothing takes SQLite's write lock up front
            # (waiting out busy_timeout), so what follows reads and writes one consistent snapshot.
            conn.execute(examples_table.update().where(sa.false()).values(archived=False))

    def apply_window(self) -> None:
        """Make exactly the newest ``window`` examples active (run on start and when the window changes)."""
        with self.engine.begin() as conn:
            self._lock(conn)
            self._apply_window(conn)

    def _apply_window(self, conn: Connection) -> None:
        t = examples_table
        # The smallest id still inside the window; everything below it is archived.
        cutoff = conn.execute(sa.select(t.c.id).order_by(t.c.id.desc()).limit(1).offset(self._window - 1)).scalar()
        if cutoff is None:  # fewer examples than the window: all active
            cutoff = 0
        now = utc_now()
        conn.execute(t.update().where(t.c.archived.is_(False), t.c.id < cutoff).values(archived=True, archived_at=now))
        conn.execute(
            t.update().where(t.c.archived.is_(True), t.c.id >= cutoff).values(archived=False, archived_at=None)
        )

    # ------------------------------------------------------------------ reading

    def _select(self, archived: bool | None, limit: int | None, newest_first: bool) -> list[Example]:
        t = examples_table
        query = sa.select(t)
        if archived is not None:
            query = query.where(t.c.archived.is_(archived))
        query = query.order_by(t.c.id.desc() if newest_first else t.c.id.asc())
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [_from_row(row) for row in conn.execute(query)]

    def active(self, limit: int | None = None) -> list[Example]:
        """The active window, newest first (``limit`` keeps the newest ones)."""
        return self._select(archived=False, limit=limit, newest_first=True)

    def archived(self, limit: int | None = None) -> list[Example]:
        """Examples that have left the window, newest first."""
        return self._select(archived=True, limit=limit, newest_first=True)

    def get(self, repo: str, pr_number: int, merge_sha: str) -> Example | None:
        t = examples_table
        query = sa.select(t).where(t.c.repo == repo, t.c.pr_number == pr_number, t.c.merge_sha == merge_sha)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return _from_row(row) if row else None

    def count(self, include_archived: bool = False) -> int:
        t = examples_table
        query = sa.select(sa.func.count()).select_from(t)
        if not include_archived:
            query = query.where(t.c.archived.is_(False))
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def stats(self) -> dict[str, Any]:
        """Counts and span of the buffer, for ``ssd buffer stats`` and ``/ssd status``."""
        t = examples_table
        with self.engine.connect() as conn:
            archived_as_int = sa.case((t.c.archived.is_(True), 1), else_=0)
            total, archived, repos = conn.execute(
                sa.select(sa.func.count(), sa.func.sum(archived_as_int), sa.func.count(sa.distinct(t.c.repo)))
            ).one()
            span = conn.execute(
                sa.select(sa.func.min(t.c.created_at), sa.func.max(t.c.created_at)).where(t.c.archived.is_(False))
            ).one()
        return {
            "window": self._window,
            "active": int(total or 0) - int(archived or 0),
            "archived": int(archived or 0),
            "repos": int(repos or 0),
            "oldest_active": span[0],
            "newest_active": span[1],
        }

    def examples(self, include_archived: bool = False) -> list[Example]:
        """Oldest first: the order training data is exported in."""
        return self._select(archived=None if include_archived else False, limit=None, newest_first=False)

    # ------------------------------------------------------------------ export

    def records(self, include_archived: bool = False) -> Iterator[dict[str, Any]]:
        for example in self.examples(include_archived):
            yield example.to_record()

    def export_jsonl(self, path_or_file: str | os.PathLike | IO[str], include_archived: bool = False) -> int:
        """Write one JSON object per line (chat form + metadata); returns the number written.

        A path is written atomically (temp file + rename) so a reader never sees half an export.
        """
        records = list(self.records(include_archived))
        if hasattr(path_or_file, "write"):
            _write_jsonl(path_or_file, records)  # type: ignore[arg-type]
            return len(records)
        path = Path(path_or_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                _write_jsonl(handle, records)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return len(records)

    def to_dataset(self, include_archived: bool = False) -> datasets.Dataset:
        """The buffer as a Hugging Face ``datasets.Dataset`` (same columns as the JSONL export)."""
        import datasets  # lazily: only workers with the ML extra get here

        message = {"role": datasets.Value("string"), "content": datasets.Value("string")}
        features = datasets.Features(
            {
                "prompt": datasets.List(message),
                "completion": datasets.List(message),
                "repo": datasets.Value("string"),
                "pr_number": datasets.Value("int64"),
                "merge_sha": datasets.Value("string"),
                "issue_numbers": datasets.List(datasets.Value("int64")),
                "merged_by": datasets.Value("string"),
                "merged_at": datasets.Value("string"),
                "delivery_id": datasets.Value("string"),
                "created_at": datasets.Value("string"),
                "archived": datasets.Value("bool"),
            }
        )
        records = list(self.records(include_archived))
        columns = {name: [record[name] for record in records] for name in features}
        return datasets.Dataset.from_dict(columns, features=features)


def _write_jsonl(handle: IO[str], records: list[dict[str, Any]]) -> None:
    for record in records:
        handle.write(json.dumps(record, ensure_ascii=False) + "\n")
