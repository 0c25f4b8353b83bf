"""The CLI joins the redis-server ``ssd serve`` supervises for a data dir instead of starting a second one
on the same files (two servers appending to one AOF, and a loop lock the service's workers cannot see)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import redis

from core.redis_conn import embedded_server_command, start_embedded


def _redis_servers_on(data_dir: Path) -> list[int]:
    """redis-server rewrites its title, but it runs in its ``--dir``: find them by working directory."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if "redis-server" in (proc / "comm").read_text() and (proc / "cwd").resolve() == data_dir:
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


def test_the_cli_joins_the_redis_that_serve_supervises(tmp_path: Path) -> None:
    data = tmp_path / "data"
    argv, url = embedded_server_command(data)
    server = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis.from_url(url).ping()
                break
            except redis.RedisError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
        redis.Redis.from_url(url).set("lock", "held by the service")
        joined = start_embedded(data)
        assert joined == url
        assert redis.Redis.from_url(joined).get("lock") == b"held by the service"
        assert _redis_servers_on(data) == [server.pid]  # no second redis-server on the same files
    finally:
        server.kill()
        server.wait()
