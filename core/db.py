"""Database engines: SQLite (WAL) by default, PostgreSQL when the URL says so."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

_engines: dict[str, Engine] = {}


def normalise_url(url: str) -> str:
    """Accept postgres:// and postgresql:// and use the psycopg 3 driver for both."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the web process journal deliveries while workers read; busy_timeout rides out writer contention.
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL: a commit (a journaled delivery Gitea is then told about) survives a power cut, not only a crash.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def engine_for(url: str) -> Engine:
    """One engine per URL per process (engines hold a pool; never share them across fork)."""
    url = normalise_url(url)
    if url not in _engines:
        if url.startswith("sqlite"):
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            engine = sa.create_engine(url, connect_args={"timeout": 10})
            sa.event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)
        _engines[url] = engine
    return _engines[url]


def dispose_all() -> None:
    """Drop pooled connections, e.g. in a freshly forked child."""
    for engine in _engines.values():
        engine.dispose(close=False)
    _engines.clear()
