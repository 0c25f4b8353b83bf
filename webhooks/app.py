"""The Flask app factory for the web tier (``gunicorn 'webhooks.app:create_app()'``).

The web process stays light: Flask, redis, RQ (to enqueue by dotted path) and SQLAlchemy. It never
imports the bot's job code or the ML stack; the RQ workers do that.
"""

from __future__ import annotations

import logging

import redis
import sqlalchemy as sa
from flask import Flask
from redis.backoff import NoBackoff
from redis.retry import Retry

from pipeline.store import engine_for
from ssd.config import Settings
from ssd.queues import DEFAULT, queue
from ssd.redis_conn import redis_url
from webhooks.inbox import Inbox, enqueue_pending
from webhooks.routes import bp

log = logging.getLogger(__name__)

# enqueue_pending run next to live traffic leaves rows this young alone: their own request is
# still enqueueing them (bounded by the Redis timeouts below).
PENDING_GRACE_SECONDS = 15.0


def web_redis(settings: Settings) -> redis.Redis:
    """A client with tight timeouts: a hung Redis must not eat Gitea's 5 s budget.

    One immediate retry rides over a pooled connection that died with a Redis restart.
    """
    return redis.Redis.from_url(
        redis_url(settings),
        socket_connect_timeout=1.0,
        socket_timeout=2.0,
        retry=Retry(NoBackoff(), 1),
    )


class Edge:
    """What the routes share within one web worker process: settings, secret, inbox, Redis."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.secret = settings.webhook_secret
        self.inbox = Inbox(engine_for(settings.database_url))
        self.redis = web_redis(settings)
        self.default_queue = queue(DEFAULT, self.redis)  # one per process: RQ caches the server version
        # Set when this process journaled a delivery it could not enqueue (and at start-up, to drain
        # whatever an earlier process left behind); cleared after a successful enqueue_pending.
        self.backlog = True

    def drain_backlog(self) -> None:
        try:
            enqueue_pending(self.inbox, self.redis, min_age=PENDING_GRACE_SECONDS)
        except (redis.RedisError, sa.exc.SQLAlchemyError) as exc:
            log.warning("inbox: pending deliveries stay journaled for now: %s", exc)
            return
        self.backlog = False


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
    edge.drain_backlog()
    return app
