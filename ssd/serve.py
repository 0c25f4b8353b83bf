"""The process model: web (gunicorn), RQ workers, the scheduler loop, and ``ssd serve`` running them all.

Production runs each kind as its own service (Procfile, ``deploy/*.service``), any number of workers
on any number of hosts against one Redis. ``ssd serve`` is the fresh-machine shortcut: it runs the
embedded redis-server as a child when ``SSD_REDIS_URL`` is unset, hands its URL to the other children
through their environment, and supervises them all. The embedded Redis is restarted when it dies (its
append-only file brings the queues back; the workers reconnect). Any other child dying stops the rest and
exits non-zero, so a process manager above it (or the person at the terminal) sees the failure instead
of a half-alive service. Each child runs in a process group of its own, and stopping a child kills its
whole group afterwards, so nothing it started outlives it (RQ's scheduler process); an RQ work horse,
which moves to a group of its own, dies with its worker (``MeteredWorker``).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from bot.gitea import HOOK_EVENTS
from core.config import ConfigError, Settings
from core.db import engine_for
from core.inbox import Inbox
from core.redis_conn import redis_url
from ssd.scheduler import nightly_schedule
from ssd.supervise import Child, embedded_redis_child, supervise
from webhooks.routes import WEBHOOK_PATH

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
GUNICORN_CONF = REPO_ROOT / "deploy" / "gunicorn.conf.py"
WEB_APP = "webhooks.app:create_app()"


def webhook_url(settings: Settings) -> str:
    """The URL to give Gitea: ``SSD_PUBLIC_URL`` (+ the webhook path) or the bind address."""
    if settings.public_url:
        base = settings.public_url
        return base if base.endswith(WEBHOOK_PATH) else base + WEBHOOK_PATH
    return f"http://{settings.bind}{WEBHOOK_PATH}"


def service_env(settings: Settings, url: str | None = None) -> dict[str, str]:
    """Environment overrides that make child processes share this process's Redis and data dir.

    Without ``url``, starts the embedded Redis here (once) when ``SSD_REDIS_URL`` is unset; the children
    then join it by URL instead of each starting their own.
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return {"SSD_REDIS_URL": url or redis_url(settings), "SSD_DATA_DIR": str(settings.data_dir)}


def gunicorn_command() -> list[str]:
    if not GUNICORN_CONF.is_file():
        raise ConfigError(f"gunicorn config not found at {GUNICORN_CONF} (run from a checkout of ssd-bot)")
    return [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF), WEB_APP]


def ssd_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "ssd.cli", *args]


def prepare_storage(settings: Settings) -> None:
    """Create the secret and the inbox table once, before several processes race to do it."""
    _ = settings.webhook_secret
    Inbox(engine_for(settings.database_url))


def run_web(settings: Settings) -> int:
    """``ssd web``: gunicorn with ``deploy/gunicorn.conf.py`` on ``SSD_BIND``."""
    env = settings.child_env(**service_env(settings))
    prepare_storage(settings)
    return supervise({"web": gunicorn_command()}, env)


def serve_children(settings: Settings, redis_child: Child | None = None) -> dict[str, list[str] | Child]:
    """What ``ssd serve`` runs, in start order."""
    children: dict[str, list[str] | Child] = {"redis": redis_child} if redis_child else {}
    children |= {
        "web": gunicorn_command(),
        # The conversation queue gets a worker of its own, so `/ssd help` is answered while an
        # evaluation holds the other worker.
        "worker-default": ssd_command("worker", "--queues", "default"),
        "worker-jobs": ssd_command("worker", "--queues", "cpu,gpu"),
        "scheduler": ssd_command("scheduler"),
    }
    if settings.serving == "local":  # the OpenAI-compatible server the loop deploys promoted adapters to
        children["model"] = ssd_command("model-server")
    return children


def run_serve(settings: Settings) -> int:
    """``ssd serve``: web + a ``default`` worker + a ``cpu,gpu`` worker + the scheduler (+ the local model
    server when ``SSD_SERVING=local``), supervised."""
    nightly_schedule(settings)  # a bad SSD_NIGHTLY_CRON fails here, not in a child
    redis_child, url = embedded_redis_child(settings) if settings.redis_url is None else (None, None)
    children = serve_children(settings, redis_child)
    env = settings.child_env(**service_env(settings, url))
    prepare_storage(settings)
    print(f"ssd: serving on http://{settings.bind} (data in {settings.data_dir})", flush=True)
    print(f"ssd: Gitea webhook URL: {webhook_url(settings)}", flush=True)
    print(f"ssd: webhook secret:    {settings.webhook_secret}", flush=True)
    print(f"ssd: content type application/json, events: {', '.join(HOOK_EVENTS)}", flush=True)
    if settings.dry_run:
        print(f"ssd: dry-run (SSD_GITEA_URL unset): replies go to {settings.outbox_dir}", flush=True)
    if "model" in children:
        print(f"ssd: model server (SSD_SERVING=local): http://127.0.0.1:{settings.local_model_port}/v1", flush=True)
    return supervise(children, env)
