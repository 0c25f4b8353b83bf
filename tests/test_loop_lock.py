"""The loop's run lock on a real Redis: exclusive, expiring, kept alive by its heartbeat, freed only by
its holder, and released by expiry when the holding process is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.loop_lock import LOCK_KEY, LockHeld, LockLost, RunLock, lock_holder

ROOT = Path(__file__).resolve().parents[1]


def test_only_one_run_holds_the_lock_and_the_other_is_told_which(redis_conn):
    with RunLock(redis_conn, "run-1"):
        with pytest.raises(LockHeld, match="run run-1") as held:
            RunLock(redis_conn, "run-2").acquire()
        assert held.value.holder["run"] == "run-1" and "token" not in held.value.holder
        assert lock_holder(redis_conn)["pid"] == os.getpid()
    assert lock_holder(redis_conn) is None
    with RunLock(redis_conn, "run-2"):
        assert lock_holder(redis_conn)["run"] == "run-2"


def test_the_lock_expires_without_a_heartbeat_and_the_old_holder_cannot_free_the_new_one(redis_conn):
    first = RunLock(redis_conn, "run-1", ttl=0.3)
    first.acquire(heartbeat=False)
    time.sleep(0.5)
    second = RunLock(redis_conn, "run-2", ttl=5)
    second.acquire(heartbeat=False)
    assert first.release() is False  # its token no longer matches
    assert lock_holder(redis_conn)["run"] == "run-2"
    with pytest.raises(LockLost):
        first.ensure_held()
    second.ensure_held()
    assert second.release() is True


def test_the_heartbeat_keeps_a_long_run_holding_the_lock(redis_conn):
    lock = RunLock(redis_conn, "long", ttl=0.3)
    with lock:
        time.sleep(1.0)  # more than three TTLs
        assert lock_holder(redis_conn)["run"] == "long"
        assert not lock.lost.is_set()
        lock.ensure_held()
    assert redis_conn.exists(LOCK_KEY) == 0


def test_a_killed_run_blocks_only_until_the_expiry(redis_conn, redis_url):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time, redis; from core.loop_lock import RunLock;"
            "lock = RunLock(redis.Redis.from_url(sys.argv[1]), 'doomed', ttl=1.0); lock.acquire();"
            "print('held', flush=True); time.sleep(60)",
            redis_url,
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        time.sleep(1.2)  # the heartbeat is alive: still held after the TTL
        with pytest.raises(LockHeld, match="doomed"):
            RunLock(redis_conn, "next").acquire()
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        deadline = time.monotonic() + 3
        while lock_holder(redis_conn) is not None:
            assert time.monotonic() < deadline, "the dead run's lock never expired"
            time.sleep(0.05)
        with RunLock(redis_conn, "next"):
            assert lock_holder(redis_conn)["run"] == "next"
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
