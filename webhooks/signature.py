"""Gitea's webhook signature: HMAC-SHA256 over the JSON text, compared in constant time.

Which bytes are signed is the trap (GITEA.md §1): for ``application/json`` it is the raw request
body; for ``application/x-www-form-urlencoded`` it is the *decoded* value of the ``payload`` field,
not the body. Both the receiving side (``verify``) and the sending side (``sign``/``delivery_headers``,
used by ``ssd deliver`` and the benchmark) live here so they cannot drift apart.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Mapping
from urllib.parse import quote_plus, unquote_to_bytes

SHA256_PREFIX = "sha256="

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
JSON_CONTENT_TYPE = "application/json"


class FormError(ValueError):
    """A form delivery without a usable ``payload`` field."""


def sign(secret: str, signed_bytes: bytes) -> str:
    """Lowercase hex HMAC-SHA256, the value of ``X-Gitea-Signature``."""
    return hmac.new(secret.encode("utf-8"), signed_bytes, hashlib.sha256).hexdigest()


def verify(secret: str, signed_bytes: bytes, signature_header: str) -> bool:
    """True only for a configured secret and a non-empty signature that matches.

    Accepts the bare hex of ``X-Gitea-Signature`` or the ``sha256=<hex>`` of ``X-Hub-Signature-256``.
    Fails closed: no secret, an empty header (what Gitea sends for a hook without a secret) or
    anything else that does not match is False. The comparison is constant time over bytes, so a
    header with non-ASCII junk cannot raise.
    """
    if not secret or not signature_header:
        return False
    candidate = signature_header.strip()
    if candidate[: len(SHA256_PREFIX)].lower() == SHA256_PREFIX:
        candidate = candidate[len(SHA256_PREFIX) :]
    if not candidate:
        return False
    expected = sign(secret, signed_bytes).encode("ascii")
    return hmac.compare_digest(expected, candidate.lower().encode("utf-8", "replace"))


def signature_from_headers(headers: Mapping[str, str]) -> str:
    """The signature to check: ``X-Gitea-Signature``, else ``X-Hub-Signature-256``.

    ``headers`` must look names up case-insensitively (werkzeug's ``Headers`` does). The SHA-1
    ``X-Hub-Signature`` is never used.
    """
    return (headers.get("X-Gitea-Signature") or "").strip() or (headers.get("X-Hub-Signature-256") or "").strip()


def form_payload(body: bytes) -> bytes:
    """The decoded ``payload`` field of a form body, byte-exact, parsed from the raw bytes.

    Gitea encodes with Go's ``url.Values.Encode`` (space -> ``+``). Decoding ourselves, rather than via
    the framework's form parser, keeps the exact bytes Gitea signed (no charset guessing, no limits on
    field counts that silently drop data). The first ``payload`` field wins, as in Go's ``FormValue``.
    """
    for pair in body.split(b"&"):
        key, sep, value = pair.partition(b"=")
        if unquote_to_bytes(key.replace(b"+", b" ")) == b"payload":
            return unquote_to_bytes(value.replace(b"+", b" "))
    raise FormError("form delivery without a payload field")


def form_body(json_bytes: bytes) -> bytes:
    """What Gitea POSTs for a form hook: ``payload=<QueryEscape(json)>``."""
    return b"payload=" + quote_plus(json_bytes, safe="").encode("ascii")


def event_group(event_type: str) -> str:
    """``X-Gitea-Event`` for an ``X-Gitea-Event-Type`` (GITEA.md §2): e.g. PR comments are ``issue_comment``."""
    if event_type in ("issue_comment", "pull_request_comment"):
        return "issue_comment"
    if event_type.startswith("pull_request_review_"):
        return {
            "pull_request_review_approved": "pull_request_approved",
            "pull_request_review_rejected": "pull_request_rejected",
        }.get(event_type, "pull_request_comment")
    if event_type.startswith("pull_request"):
        return "pull_request"
    if event_type.startswith("issue"):
        return "issues"
    return event_type


def delivery_headers(
    secret: str,
    signed_bytes: bytes,
    event_type: str,
    content_type: str = "json",
    delivery_id: str | None = None,
) -> dict[str, str]:
    """Every header Gitea 1.25.4's ``addDefaultHeaders`` sets, for a delivery we send ourselves."""
    delivery_id = delivery_id or str(uuid.uuid4())
    event = event_group(event_type)
    sig256 = sign(secret, signed_bytes)
    sig1 = hmac.new(secret.encode("utf-8"), signed_bytes, hashlib.sha1).hexdigest()
    return {
        "Content-Type": JSON_CONTENT_TYPE if content_type == "json" else FORM_CONTENT_TYPE,
        "User-Agent": "Go-http-client/1.1",
        "X-Gitea-Delivery": delivery_id,
        "X-GitHub-Delivery": delivery_id,
        "X-Gogs-Delivery": delivery_id,
        "X-Gitea-Event": event,
        "X-GitHub-Event": event,
        "X-Gogs-Event": event,
        "X-Gitea-Event-Type": event_type,
        "X-GitHub-Event-Type": event_type,
        "X-Gogs-Event-Type": event_type,
        "X-Gitea-Signature": sig256,
        "X-Gogs-Signature": sig256,
        "X-Hub-Signature": f"sha1={sig1}",
        "X-Hub-Signature-256": f"{SHA256_PREFIX}{sig256}",
        "X-Gitea-Hook-Installation-Target-Type": "repository",
        "X-GitHub-Hook-Installation-Target-Type": "repository",
    }
