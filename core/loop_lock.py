"""Never two loop runs at once: one Redis key with an expiry, held by one run.

``RunLock(conn, run_id).acquire()`` sets the key only if it is absent (``SET NX PX``), with the run's
facts as its value (run id, host, pid, since, a random token). While held, a heartbeat thread extends
the expiry every ``ttl / 3``, so a long training run keeps it; a run that dies (killed, OOM, host
lost) stops extending and the key expires after ``ttl``, so the next run is not blocked forever.
Release and extension check the token in a Lua script: a run never frees or keeps a lock that expired
and was taken by another. ``lost`` is set when an extension finds the lock gone; callers check
``ensure_held()`` before the steps that must not overlap (promotion, deploy).
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import threading
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import redis

LOCK_KEY = "ssd:loop:lock"
DEFAULT_TTL = 600.0  # seconds a dead run keeps blocking the next one

_RELEASE = """
local value = redis.call('GET', KEYS[1])
if value and cjson.decode(value)['token'] == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_EXTEND = """
local value = redis.call('GET', KEYS[1])
if value and cjson.decode(value)['token'] == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


class LockHeld(RuntimeError):
    """Another run holds the lock; ``holder`` says which."""

    def __init__(self, holder: dict[str, Any] | None) -> None:
        who = holder or {}
        super().__init__(
            f"a loop run is already in progress: run {who.get('run', '?')} on {who.get('host', '?')} "
            f"(pid {who.get('pid', '?')}) since {who.get('since', '?')}"
        )
        self.holder = holder


class LockLost(RuntimeError):
    """The lock expired while this run held it (the process stalled longer than the TTL)."""


def lock_holder(conn: redis.Redis, key: str = LOCK_KEY) -> dict[str, Any] | None:
    """Who holds the lock now (without the token), or None."""
    raw = conn.get(key)
    if raw is None:
        return None
    try:
        info = json.loads(raw)
    except ValueError:
        return {"run": "?", "raw": raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)}
    info.pop("token", None)
    return info


class RunLock:
    def __init__(self, conn: redis.Redis, run_id: str, ttl: float = DEFAULT_TTL, key: str = LOCK_KEY) -> None:
        if ttl <= 0:
            raise ValueError(f"ttl must be > 0, got {ttl}")
        self.conn = conn
        self.run_id = run_id
        self.ttl_ms = int(ttl * 1000)
        self.key = key
        self.token = secrets.token_hex(16)
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None

    def acquire(self, heartbeat: bool = True) -> None:
        """Take the lock or raise ``LockHeld``; with ``heartbeat`` keep extending it until ``release``."""
        value = json.dumps(
            {
                "run": self.run_id,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "since": datetime.now(UTC).isoformat(timespec="seconds"),
                "token": self.token,
            }
        )
        if not self.conn.set(self.key, value, nx=True, px=self.ttl_ms):
            raise LockHeld(lock_holder(self.conn, self.key))
        self.lost.clear()
        if heartbeat:
            self._stop.clear()
            self._heartbeat = threading.Thread(target=self._beat, name=f"loop-lock-{self.run_id}", daemon=True)
            self._heartbeat.start()

    def extend(self) -> bool:
        """Push the expiry ``ttl`` ahead; False (and ``lost`` set) when the lock is no longer ours."""
        kept = bool(self.conn.eval(_EXTEND, 1, self.key, self.token, self.ttl_ms))
        if not kept:
            self.lost.set()
        return kept

    def ensure_held(self) -> None:
        if self.lost.is_set() or not self.extend():
            raise LockLost(f"run {self.run_id} lost the loop lock (it expired); stopping before changing anything")

    def release(self) -> bool:
        """Free the lock if it is still ours; True when it was."""
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join(5)
            self._heartbeat = None
        return bool(self.conn.eval(_RELEASE, 1, self.key, self.token))

    def _beat(self) -> None:
        interval = self.ttl_ms / 3000
        while not self._stop.wait(interval):
            try:
                if not self.extend():
                    return
            except redis.RedisError:
                continue  # Redis briefly away: try again; the TTL covers two missed beats

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
