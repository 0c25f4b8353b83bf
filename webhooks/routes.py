"""The routes: ``POST /webhooks/gitea``, ``GET /healthz``, ``GET /readyz``, ``GET /metrics``.

The delivery path is deliberately short, because Gitea waits at most 5 s and never retries:
size check -> signature over the exact signed bytes -> JSON -> route on ``X-Gitea-Event-Type`` ->
one inbox INSERT -> one RQ enqueue -> 202. Everything slow happens in ``bot.jobs.process_delivery``.
Every Redis call here is bounded by a short timeout and skipped for a moment after an error: once the row
is journaled the delivery is answered, and a background thread queues it when Redis is back.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import redis
import sqlalchemy as sa
from flask import Blueprint, Response, current_app, jsonify, request

from core.inbox import enqueue
from webhooks import metrics
from webhooks.signature import FORM_CONTENT_TYPE, FormError, form_payload, signature_from_headers, verify

log = logging.getLogger(__name__)

bp = Blueprint("webhooks", __name__)
WEBHOOK_PATH = "/webhooks/gitea"

COMMENT_EVENT_TYPES = ("issue_comment", "pull_request_comment")


class BadPayload(ValueError):
    """Signed JSON that lacks a field the route needs."""


def _edge():  # -> webhooks.app.Edge (not imported: app imports this module)
    return current_app.extensions["ssd"]


def _answer(status_code: int, event: str, outcome: str, **body: Any) -> tuple[Response, int]:
    _edge().count(event, outcome)
    return jsonify(status=outcome, **body), status_code


def _reject(status_code: int, event: str, outcome: str, error: str) -> tuple[Response, int]:
    return _answer(status_code, event, outcome, error=error)


def _field(payload: dict[str, Any], *path: str) -> Any:
    value: Any = payload
    for key in path:
        if not isinstance(value, dict) or key not in value:
            raise BadPayload(f"payload has no {'.'.join(path)}")
        value = value[key]
    return value


def journal_key(event_type: str, payload: dict[str, Any]) -> tuple[str, str] | None:
    """(action, dedupe_key) for a delivery the bot acts on, None for one it ignores.

    Commands: a ``created`` comment on an issue or in a PR conversation (edits and deletions never
    trigger). Ingestion: ``pull_request`` closed with ``merged: true``. Keys follow ARCHITECTURE.md, so a
    Replay (same bytes, new delivery id) lands on the same row.
    """
    action = payload.get("action")
    if event_type in COMMENT_EVENT_TYPES:
        if action != "created":
            return None
        comment_id = _field(payload, "comment", "id")
        if not isinstance(comment_id, int):
            raise BadPayload("comment.id is not an integer")
        return action, f"comment:{comment_id}:{action}"
    if event_type == "pull_request":
        if action != "closed" or _field(payload, "pull_request", "merged") is not True:
            return None
        full_name = _field(payload, "repository", "full_name")
        number = payload["number"] if "number" in payload else _field(payload, "pull_request", "number")
        merge_sha = _field(payload, "pull_request", "merge_commit_sha")
        return action, f"merge:{full_name}:{number}:{merge_sha}"
    return None


@bp.post(WEBHOOK_PATH)
def gitea_delivery() -> tuple[Response, int]:
    edge = _edge()
    # 413 before reading a byte when Content-Length says so. A chunked body has no length: werkzeug
    # stops reading at MAX_CONTENT_LENGTH (the cap + 1, see create_app), so one byte too many shows.
    cap = edge.settings.max_body_bytes
    if request.content_length is not None and request.content_length > cap:
        return _reject(413, "unverified", "too_large", f"body over {cap} bytes")
    body = request.get_data(cache=False)
    if len(body) > cap:
        return _reject(413, "unverified", "too_large", f"body over {cap} bytes")

    if request.mimetype == FORM_CONTENT_TYPE:
        try:
            signed = form_payload(body)
        except FormError as exc:
            return _reject(400, "unverified", "bad_request", str(exc))
    else:
        signed = body
    if not verify(edge.secret, signed, signature_from_headers(request.headers)):
        return _reject(401, "unverified", "unauthorized", "missing or invalid signature")

    # Only now, with the sender authenticated, look at the content.
    event_type = (request.headers.get("X-Gitea-Event-Type") or "").strip()
    try:
        payload_text = signed.decode("utf-8")
        payload = json.loads(payload_text)
    except (UnicodeDecodeError, ValueError):
        return _reject(400, event_type, "bad_request", "body is not UTF-8 JSON")
    if not isinstance(payload, dict):
        return _reject(400, event_type, "bad_request", "payload is not a JSON object")
    try:
        key = journal_key(event_type, payload)
    except BadPayload as exc:
        return _reject(400, event_type, "bad_request", str(exc))
    if key is None:
        return _answer(200, event_type, "ignored", inbox_id=None)
    action, dedupe_key = key

    delivery_id = (request.headers.get("X-Gitea-Delivery") or "").strip()[:64] or None
    event = (request.headers.get("X-Gitea-Event") or event_type).strip()[:64]
    inbox_id, is_new = edge.inbox.record(delivery_id, event, event_type[:64], action, dedupe_key, payload_text)
    if not is_new:
        log.info("delivery %s duplicates inbox %d (%s)", delivery_id, inbox_id, dedupe_key)
        return _answer(200, event_type, "duplicate", inbox_id=inbox_id)

    if not edge.redis_usable():
        return _journaled(edge, event_type, delivery_id, inbox_id, edge.redis_error)
    try:
        # The "queued" counter rides in the enqueue's own MULTI/EXEC: one Redis round trip in all.
        enqueue(
            edge.redis,
            inbox_id,
            edge.default_queue,
            also=lambda pipe: metrics.count_delivery(pipe, event_type, "queued"),
        )
    except redis.RedisError as exc:
        edge.redis_failed(exc)
        return _journaled(edge, event_type, delivery_id, inbox_id, str(exc))
    log.info("delivery %s %s -> inbox %d queued", delivery_id, dedupe_key, inbox_id)
    return jsonify(status="queued", inbox_id=inbox_id), 202


def _journaled(edge, event_type: str, delivery_id: str | None, inbox_id: int, reason: str) -> tuple[Response, int]:
    """Journaled is enough to answer 2xx: the row is queued in the background once Redis answers."""
    log.warning("delivery %s journaled as inbox %d, not queued yet: %s", delivery_id, inbox_id, reason)
    edge.queue_later(inbox_id)
    return jsonify(status="journaled", inbox_id=inbox_id), 202


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    """Alive and able to hand work on: without Redis nothing journaled here reaches a worker."""
    reason = _edge().redis_down_reason()
    if reason is not None:
        return jsonify(status="unhealthy", redis=reason), 503
    return jsonify(status="ok"), 200


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    edge = _edge()
    down: dict[str, str] = {}
    reason = edge.redis_down_reason()
    if reason is not None:
        down["redis"] = reason
    try:
        with edge.inbox.engine.connect() as conn:
            conn.execute(sa.text("select 1"))
    except sa.exc.SQLAlchemyError as exc:
        down["database"] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if down:
        return jsonify(status="unavailable", down=sorted(down), errors=down), 503
    return jsonify(status="ready"), 200


@bp.get("/metrics")
def prometheus_metrics() -> Response:
    edge = _edge()
    reason = None if edge.redis_usable() else edge.redis_error
    if reason is None:
        try:
            text = metrics.render(edge.redis)
        except redis.RedisError as exc:
            edge.redis_failed(exc)
            reason = str(exc)
    if reason is not None:
        return Response(f"# redis unavailable: {reason}\n", status=503, mimetype="text/plain")
    return Response(text, content_type="text/plain; version=0.0.4; charset=utf-8")
