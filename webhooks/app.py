"""The Flask app factory for the web tier (``gunicorn 'webhooks.app:create_app()'``).

The web process stays light: Flask, redis, RQ (to enqueue by dotted path) and SQLAlchemy. It never
imports the bot's job code or the ML stack; the RQ workers do that.
"""

from __future__ import annotations

import logging
import threading
import time

import redis
import sqlalchemy as sa
from flask import Flask
from redis.backoff import NoBackoff
from redis.retry import Retry

from core.config import Settings
from core.db import engine_for
from core.inbox import PENDING_GRACE, Inbox, enqueue_pending, enqueue_unique
from core.queues import DEFAULT, queue
from core.redis_conn import redis_url
from webhooks import metrics
from webhooks.routes import bp

log = logging.getLogger(__name__)

# enqueue_pending run next to live traffic leaves rows this young alone: their own request is
# still enqueueing them (bounded by the Redis timeouts below).
# Every Redis call on the request path waits at most this long (Gitea gives a delivery 5 s in all).
REDIS_TIMEOUT = 0.5
# After a Redis error the request path leaves Redis alone this long: deliveries are journaled and
# answered at once instead of each waiting out REDIS_TIMEOUT against a hung server.
REDIS_PAUSE = 2.0
RETRY_INTERVAL = 1.0  # seconds between the background tries to queue rows journaled during an outage


def web_redis(settings: Settings) -> redis.Redis:
    """A client with tight timeouts: a hung Redis must not eat Gitea's 5 s budget.

    One immediate retry rides over a pooled connection that died with a Redis restart; a timeout is
    not retried (a hung server would only make the request wait twice as long).
    """
    return redis.Redis.from_url(
        redis_url(settings),
        socket_connect_timeout=REDIS_TIMEOUT,
        socket_timeout=REDIS_TIMEOUT,
        retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
    )


class Edge:
    """What the routes share within one web worker process: settings, secret, inbox, Redis."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.secret = settings.webhook_secret
        self.inbox = Inbox(engine_for(settings.database_url))
        self.redis = web_redis(settings)
        self.default_queue = queue(DEFAULT, self.redis)  # one per process: RQ caches the server version
        self._lock = threading.Lock()
        self._redis_paused_until = 0.0
        self.redis_error = ""
        # Rows this process journaled but could not queue; a background thread queues them once Redis
        # answers again. (The scheduler would too, after its grace period.)
        self._unqueued: set[int] = set()
        self._wake = threading.Event()
        self._retry_thread: threading.Thread | None = None

    # -- Redis health, as the request path sees it

    def redis_usable(self) -> bool:
        return time.monotonic() >= self._redis_paused_until

    def redis_failed(self, exc: Exception) -> None:
        self.redis_error = str(exc) or type(exc).__name__
        self._redis_paused_until = time.monotonic() + REDIS_PAUSE

    def redis_down_reason(self) -> str | None:
        """Why Redis is unusable now (a recent error, or a failed PING), or None when it answers."""
        if not self.redis_usable():
            return self.redis_error
        try:
            self.redis.ping()
        except redis.RedisError as exc:
            self.redis_failed(exc)
            return self.redis_error
        return None

    def count(self, event: str, outcome: str) -> None:
        """Count a delivery outcome for /metrics; skipped (not waited for) while Redis is in trouble."""
        if not self.redis_usable():
            return
        pipe = self.redis.pipeline(transaction=False)
        metrics.count_delivery(pipe, event, outcome)
        try:
            pipe.execute()
        except redis.RedisError as exc:
            log.warning("metrics: could not count delivery (%s)", exc)
            self.redis_failed(exc)

    # -- rows journaled without a job

    def queue_later(self, inbox_id: int) -> None:
        """Hand a journaled row that could not be queued to the background thread."""
        with self._lock:
            self._unqueued.add(inbox_id)
            if self._retry_thread is None or not self._retry_thread.is_alive():
                self._retry_thread = threading.Thread(target=self._queue_unqueued, name="ssd-inbox-retry", daemon=True)
                self._retry_thread.start()
        self._wake.set()

    def _queue_unqueued(self) -> None:
        while True:
            self._wake.wait()
            time.sleep(RETRY_INTERVAL)
            with self._lock:
                ids = sorted(self._unqueued)
                if not ids:
                    self._wake.clear()
                    continue
            try:
                queued = enqueue_unique(self.inbox, self.redis, ids, self.default_queue)
            except (redis.RedisError, sa.exc.SQLAlchemyError) as exc:
                log.info("inbox: %d journaled deliveries wait for Redis: %s", len(ids), exc)
                continue
            with self._lock:
                self._unqueued.difference_update(ids)
            self._redis_paused_until = 0.0  # it answers again
            log.info("inbox: queued %d deliveries journaled while Redis was unavailable", queued)

    def drain_backlog(self) -> None:
        """Queue what earlier processes left journaled (at start-up, in the background)."""
        try:
            enqueue_pending(self.inbox, self.redis, min_age=PENDING_GRACE)
        except (redis.RedisError, sa.exc.SQLAlchemyError) as exc:
            log.warning("inbox: pending deliveries stay journaled for now: %s", exc)


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    if not logging.getLogger().handlers:
        logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = Flask(__name__)
    # One byte over the cap, so the route can tell "exactly the cap" from "truncated at the cap".
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes + 1
    app.json.sort_keys = False
    edge = Edge(settings)
    app.extensions["ssd"] = edge
    app.register_blueprint(bp)
    # Not in the way of start-up (nor of any request): the scheduler drains the rest every few seconds.
    threading.Thread(target=edge.drain_backlog, name="ssd-inbox-drain", daemon=True).start()
    return app
