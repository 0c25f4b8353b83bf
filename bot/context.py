"""Per-process singletons for code run by RQ: settings, the Gitea client, Redis, the database engine.

RQ calls plain functions by name, so jobs cannot be handed these objects; they ask here. Everything is
built on first use and rebuilt after a fork (RQ's work horse is a fork of the worker), because sockets
and connection pools must not be shared between processes. Tests call ``configure(...)`` to inject
settings or a client, and ``reset()`` to drop them.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any

import redis as redis_lib

from core.config import Settings

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from pipeline.buffer import TrainingBuffer

_lock = threading.RLock()  # builders call each other (bot_login -> gitea -> settings)
_state: dict[str, Any] = {}
_overrides: dict[str, Any] = {}
_pid = os.getpid()


def _fresh() -> dict[str, Any]:
    """The cache for this process; emptied when we find ourselves in a forked child."""
    global _pid
    if os.getpid() != _pid:
        inherited = _state.get("engine")
        if inherited is not None:
            # The parent's pooled connections must not be used (or closed) here; the child opens its own.
            inherited.dispose(close=False)
        _state.clear()
        _pid = os.getpid()
    return _state


def configure(**objects: Any) -> None:
    """Use these objects instead of building them: ``settings``, ``gitea``, ``redis``, ``engine``.

    Overrides survive a fork (they are plain objects the caller chose), unlike lazily built ones.
    """
    unknown = set(objects) - {"settings", "gitea", "redis", "engine"}
    if unknown:
        raise TypeError(f"unknown context objects: {sorted(unknown)}")
    with _lock:
        _overrides.update(objects)
        _state.clear()


def reset() -> None:
    """Forget overrides and everything built (tests; after changing the environment)."""
    with _lock:
        _overrides.clear()
        _state.clear()


def _get(name: str, build) -> Any:
    if name in _overrides:
        return _overrides[name]
    with _lock:
        state = _fresh()
        if name not in state:
            state[name] = build()
        return state[name]


def settings() -> Settings:
    return _get("settings", Settings.from_env)


def redis() -> redis_lib.Redis:
    from core.redis_conn import connect

    return _get("redis", lambda: connect(settings()))


def gitea():
    """The Gitea client, or ``DryRunGitea`` writing to the outbox when ``SSD_GITEA_URL`` is unset."""
    from bot.gitea import gitea_from_settings

    return _get("gitea", lambda: gitea_from_settings(settings()))


def engine() -> Engine:
    from core.db import engine_for

    return _get("engine", lambda: engine_for(settings().database_url))


def bot_login() -> str:
    """The bot's own login (``GET /user``), asked once per process: its comments come back as webhooks."""
    return _get("bot_login", lambda: gitea().whoami())


def open_buffer(config: Settings | None = None) -> TrainingBuffer:
    """The buffer the service uses: ``SSD_DATABASE_URL`` (else SQLite in the data dir), ``SSD_BUFFER_SIZE``."""
    from core.db import engine_for
    from pipeline.buffer import TrainingBuffer

    config = config or settings()
    return TrainingBuffer(engine_for(config.database_url), window=config.buffer_size)
