"""Process supervision for ``ssd serve`` and ``ssd web``: start children in order, restart the restartable
ones, stop everyone when one dies, and leave nothing behind.

Each child runs in a process group of its own, and stopping a child kills its whole group afterwards, so
nothing it started outlives it (RQ's scheduler process).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import FrameType

import redis

from core.config import Settings
from core.redis_conn import embedded_server_command

log = logging.getLogger(__name__)

STOP_GRACE = 20.0  # seconds a child gets after SIGTERM (an RQ worker finishes its current job)
RESTART_LIMIT = 5  # restarts of a restartable child (the embedded Redis) per RESTART_WINDOW before giving up
RESTART_WINDOW = 60.0
READY_TIMEOUT = 30.0  # seconds a child may take to become ready (the embedded Redis loading its AOF)


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """In a child: get ``sig`` when the parent dies (Linux), so nothing is orphaned."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, sig)  # PR_SET_PDEATHSIG


@dataclass(frozen=True)
class Child:
    """A process ``supervise`` runs: its command line, whether to restart it when it dies (instead of
    stopping everyone), and what to wait for before starting the children after it."""

    argv: list[str]
    restart: bool = False
    ready: Callable[[], bool] | None = None


def _spawn(name: str, child: Child, env: Mapping[str, str]) -> subprocess.Popen:
    # Own process group: a terminal's Ctrl-C reaches only the supervisor, which stops the children in
    # order instead of all of them tearing down at once; and the group is what we kill at the end.
    proc = subprocess.Popen(child.argv, env=dict(env), process_group=0, preexec_fn=die_with_parent)
    print(f"ssd: started {name} (pid {proc.pid})", flush=True)
    if child.ready is not None:
        deadline = time.monotonic() + READY_TIMEOUT
        while not child.ready():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not become ready (exit status {proc.poll()})")
            time.sleep(0.05)
    return proc


def _kill_group(proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    """Signal the child's whole process group, even after the child itself is gone (its children stay)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def _stop(procs: Mapping[str, subprocess.Popen]) -> None:
    """SIGTERM everyone, wait, SIGTERM again (RQ's cold shutdown), then kill whole process groups."""
    for attempt, grace in ((1, STOP_GRACE), (2, 5.0)):
        alive = [p for p in procs.values() if p.poll() is None]
        for proc in alive:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(p.poll() is None for p in alive):
            time.sleep(0.1)
        if all(p.poll() is not None for p in procs.values()):
            break
        log.warning("children still running after SIGTERM #%d", attempt)
    for name, proc in procs.items():
        if proc.poll() is None:
            log.error("killing %s (pid %d)", name, proc.pid)
        _kill_group(proc)  # also whatever a child left in its group (RQ's scheduler process)
        proc.wait()


def supervise(children: Mapping[str, list[str] | Child], env: Mapping[str, str]) -> int:
    """Run the children until a signal (exit 0) or until one of them exits (stop the rest, exit non-zero).

    Children start in order (waiting for each one's ``ready``); a ``restart`` child that dies is started
    again, up to RESTART_LIMIT times per RESTART_WINDOW. At the end the others stop first and the
    restartable ones (the Redis the others need to shut down cleanly) last.
    """
    specs = {name: child if isinstance(child, Child) else Child(list(child)) for name, child in children.items()}
    stopping = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("%s received; stopping", signal.Signals(signum).name)
        stopping.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    procs: dict[str, subprocess.Popen] = {}
    restarts: dict[str, list[float]] = {name: [] for name in specs}
    failed: tuple[str, int] | None = None
    try:
        for name, child in specs.items():
            procs[name] = _spawn(name, child, env)
        while not stopping.is_set() and failed is None:
            for name, proc in procs.items():
                if proc.poll() is None:
                    continue
                now = time.monotonic()
                restarts[name] = [t for t in restarts[name] if now - t < RESTART_WINDOW] + [now]
                if not specs[name].restart or len(restarts[name]) > RESTART_LIMIT:
                    failed = (name, proc.returncode)
                    break
                print(f"ssd: {name} exited with status {proc.returncode}; restarting it", file=sys.stderr, flush=True)
                _kill_group(proc)
                procs[name] = _spawn(name, specs[name], env)
            stopping.wait(0.2)
    except RuntimeError as exc:  # a restarted child that never became ready
        print(f"ssd: {exc}", file=sys.stderr, flush=True)
        failed = ("supervisor", 1)
    finally:
        if failed:
            print(f"ssd: {failed[0]} exited with status {failed[1]}; stopping the others", file=sys.stderr, flush=True)
        _stop({name: proc for name, proc in procs.items() if not specs[name].restart})
        _stop({name: proc for name, proc in procs.items() if specs[name].restart})
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if failed:
        return failed[1] if failed[1] > 0 else 1
    return 0


def redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5).ping())
    except redis.RedisError:
        return False


def embedded_redis_child(settings: Settings) -> tuple[Child, str]:
    """The embedded Redis as a supervised, restartable child; returns it and its URL."""
    argv, url = embedded_server_command(settings.data_dir)
    return Child(argv, restart=True, ready=lambda: redis_answers(url)), url
