"""Signature checks over the exact bytes Gitea signs, and the form-field decoding that finds them."""

from __future__ import annotations

import pytest

from tests.deliveries import comment_payload, form_body, gitea_json_bytes, headers, sign
from webhooks.signature import (
    FormError,
    delivery_headers,
    event_group,
    form_payload,
    signature_from_headers,
    verify,
)

BODY = gitea_json_bytes(comment_payload(body='/ssd help & <b>"quoted"</b> + 100% ünïcode\n\tdone'))


def test_good_signature_bare_and_prefixed():
    digest = sign("s3cret", BODY)
    assert verify("s3cret", BODY, digest)
    assert verify("s3cret", BODY, f"sha256={digest}")
    assert verify("s3cret", BODY, digest.upper())  # hex is case-insensitive


@pytest.mark.parametrize("header", ["", "sha256=", "   ", "sha1=abc", "not-hex-at-all", "ß" * 64])
def test_empty_or_junk_signature_fails(header):
    assert not verify("s3cret", BODY, header)


def test_wrong_secret_or_tampered_body_fails():
    digest = sign("s3cret", BODY)
    assert not verify("other", BODY, digest)
    assert not verify("s3cret", BODY + b" ", digest)
    assert not verify("s3cret", BODY.replace(b"help", b"hel"), digest)


def test_no_secret_configured_fails_closed():
    # Even a signature computed with the empty key must not pass when no secret is configured.
    assert not verify("", BODY, sign("", BODY))


def test_signature_header_choice():
    gitea = headers("issue_comment", "issue_comment", BODY, "s3cret")
    assert signature_from_headers(gitea) == sign("s3cret", BODY)
    hub_only = {"X-Hub-Signature-256": f"sha256={sign('s3cret', BODY)}"}
    assert verify("s3cret", BODY, signature_from_headers(hub_only))
    # A hook without a secret sends the headers, empty; SHA-1 is never used.
    empty = headers("issue_comment", "issue_comment", BODY, None)
    assert signature_from_headers(empty) == "sha256="
    assert not verify("s3cret", BODY, signature_from_headers(empty))
    assert signature_from_headers({"X-Hub-Signature": "sha1=" + "0" * 40}) == ""


def test_form_payload_is_byte_exact():
    encoded = form_body(BODY)
    assert b"+" in encoded and b"%2B" in encoded and b"%25" in encoded  # spaces, + and % are encoded
    assert form_payload(encoded) == BODY
    assert verify("s3cret", form_payload(encoded), sign("s3cret", BODY))
    # The body itself is not what Gitea signs.
    assert not verify("s3cret", encoded, sign("s3cret", BODY))


def test_form_payload_first_field_wins_and_missing_field_raises():
    assert form_payload(b"other=1&payload=%7B%7D&payload=%5B%5D") == b"{}"
    assert form_payload(b"payloa%64=x") == b"x"  # the key is decoded too
    with pytest.raises(FormError):
        form_payload(b"foo=bar")
    with pytest.raises(FormError):
        form_payload(b"")


def test_sender_headers_match_gitea_headers():
    """``ssd deliver`` and the benchmark send what tests/deliveries.py (built from Gitea's source) sends."""
    for event, event_type in [
        ("issue_comment", "issue_comment"),
        ("issue_comment", "pull_request_comment"),
        ("pull_request", "pull_request"),
    ]:
        for content_type in ("json", "form"):
            ours = delivery_headers("s3cret", BODY, event_type, content_type, delivery_id="d-1")
            theirs = headers(event, event_type, BODY, "s3cret", delivery_id="d-1", content_type=content_type)
            theirs.pop("Accept-Encoding")  # added by Go's transport, not by Gitea
            assert ours == theirs


def test_event_group():
    assert event_group("pull_request_comment") == "issue_comment"
    assert event_group("pull_request_sync") == "pull_request"
    assert event_group("pull_request_review_comment") == "pull_request_comment"
    assert event_group("pull_request_review_approved") == "pull_request_approved"
    assert event_group("issue_label") == "issues"
    assert event_group("push") == "push"
