"""``ssd deliver``: sign a payload file and POST it the way Gitea does (try the service in dry-run mode)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import requests

from core.config import Settings
from ssd.serve import webhook_url
from webhooks.signature import delivery_headers, form_body


def guess_event_type(signed: bytes) -> str:
    """``X-Gitea-Event-Type`` for a payload file: comment (issue or PR conversation) or pull_request."""
    try:
        payload = json.loads(signed)
    except ValueError:
        return "issue_comment"
    if isinstance(payload, dict) and "comment" in payload:
        return "pull_request_comment" if payload.get("is_pull") else "issue_comment"
    if isinstance(payload, dict) and "pull_request" in payload:
        return "pull_request"
    return "issue_comment"


def deliver(
    settings: Settings,
    path: Path,
    event_type: str | None = None,
    url: str | None = None,
    form: bool = False,
    timeout: float = 10.0,
) -> int:
    """``ssd deliver``: sign a payload file with the configured secret and POST it the way Gitea does."""
    signed = path.read_bytes()
    event_type = event_type or guess_event_type(signed)
    target = url or webhook_url(settings)
    headers = delivery_headers(settings.webhook_secret, signed, event_type, "form" if form else "json")
    try:
        response = requests.post(
            target, data=form_body(signed) if form else signed, headers=headers, timeout=timeout, allow_redirects=False
        )
    except requests.RequestException as exc:
        print(f"ssd deliver: could not reach {target}: {exc}", file=sys.stderr)
        return 1
    print(f"{response.status_code} {response.text.strip()}")
    if response.status_code == 401:
        print(
            "ssd deliver: 401 means the secret differs from the service's (same SSD_WEBHOOK_SECRET or SSD_DATA_DIR?)",
            file=sys.stderr,
        )
    return 0 if 200 <= response.status_code < 300 else 1
