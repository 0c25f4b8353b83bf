"""The delivery builders must reproduce Gitea's bytes, or every webhook test downstream proves nothing."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from tests.deliveries import (
    comment_delivery,
    comment_payload,
    delivery,
    form_body,
    gitea_json_bytes,
    headers,
    issue,
    merged_pr_delivery,
    merged_pr_payload,
    pull_request,
    repository,
    sign,
    user,
)

SWAGGER = Path(__file__).resolve().parents[2] / "shared" / "reference" / "gitea-swagger.v1.json"


def test_indent_is_two_spaces_and_key_order_is_kept():
    obj = {"z": 1, "a": [True, None, {"b": "x"}], "empty_obj": {}, "empty_list": []}
    expected = (
        b"{\n"
        b'  "z": 1,\n'
        b'  "a": [\n'
        b"    true,\n"
        b"    null,\n"
        b"    {\n"
        b'      "b": "x"\n'
        b"    }\n"
        b"  ],\n"
        b'  "empty_obj": {},\n'
        b'  "empty_list": []\n'
        b"}"
    )
    assert gitea_json_bytes(obj) == expected


def test_no_trailing_newline():
    body = gitea_json_bytes(comment_payload())
    assert body.endswith(b"}") and not body.endswith(b"\n")


def test_html_characters_and_line_separators_are_escaped():
    assert gitea_json_bytes("<a href='x'>&</a>") == b"\"\\u003ca href='x'\\u003e\\u0026\\u003c/a\\u003e\""
    assert gitea_json_bytes("a\u2028b\u2029c") == b'"a\\u2028b\\u2029c"'


def test_control_characters_use_go_escapes():
    # json-iterator has short forms only for \n \r \t; \b and \f are \u0008 and \u000c.
    assert gitea_json_bytes('"\\\n\r\t\x08\x0c\x01\x1f') == b'"\\"\\\\\\n\\r\\t\\u0008\\u000c\\u0001\\u001f"'
    assert gitea_json_bytes("a/b\x7f") == b'"a/b\x7f"'  # neither / nor DEL is escaped


def test_other_non_ascii_is_raw_utf8():
    assert gitea_json_bytes("café 🚀 日本") == '"café 🚀 日本"'.encode()
    assert b"\\u" not in gitea_json_bytes("café 🚀 日本")


def test_agrees_with_stdlib_where_go_and_python_agree():
    # Python's indent=2 layout is Go's MarshalIndent; only the string escapes differ, and <>& occur only
    # inside strings, so substituting Go's escapes into the stdlib text must give the same bytes.
    payload = merged_pr_payload(title="Fix <widget> overflow", body="Fixes #1\n\ncafé & more")
    stdlib = json.dumps(payload, indent=2, ensure_ascii=False)
    for char, escape in (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e")):
        stdlib = stdlib.replace(char, escape)
    assert gitea_json_bytes(payload) == stdlib.encode()


def test_round_trips_through_a_json_parser():
    payload = comment_payload(body="/ssd eval model=<x> & more\u2028\x08 ✓")
    assert json.loads(gitea_json_bytes(payload)) == payload


def test_floats_are_refused():
    with pytest.raises(TypeError):
        gitea_json_bytes({"x": 1.5})


def test_sign_is_hex_hmac_sha256():
    # RFC 4231 test case 2.
    assert sign("Jefe", b"what do ya want for nothing?") == (
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )


def test_form_body_matches_go_query_escape():
    assert form_body(b'{\n  "a": "x y/+~-_.*"\n}') == b"payload=%7B%0A++%22a%22%3A+%22x+y%2F%2B~-_.%2A%22%0A%7D"
    assert form_body("é".encode()) == b"payload=%C3%A9"


def test_form_field_decodes_to_the_signed_json():
    json_bytes = gitea_json_bytes(comment_payload(body="/ssd help & <b>"))
    decoded = parse_qs(form_body(json_bytes).decode("ascii"), keep_blank_values=True)["payload"][0]
    assert decoded.encode("utf-8") == json_bytes


def test_headers_are_complete_and_consistent():
    body = gitea_json_bytes(comment_payload())
    hdrs = headers("issue_comment", "issue_comment", body, "s3cret", delivery_id="d-1")
    expected_sig = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert hdrs["Content-Type"] == "application/json"
    for prefix in ("X-Gitea", "X-GitHub", "X-Gogs"):
        assert hdrs[f"{prefix}-Delivery"] == "d-1"
        assert hdrs[f"{prefix}-Event"] == "issue_comment"
        assert hdrs[f"{prefix}-Event-Type"] == "issue_comment"
    assert hdrs["X-Gitea-Signature"] == hdrs["X-Gogs-Signature"] == expected_sig
    assert hdrs["X-Hub-Signature-256"] == f"sha256={expected_sig}"
    assert hdrs["X-Hub-Signature"] == "sha1=" + hmac.new(b"s3cret", body, hashlib.sha1).hexdigest()
    assert hdrs["X-Gitea-Hook-Installation-Target-Type"] == "repository"
    assert hdrs["X-GitHub-Hook-Installation-Target-Type"] == "repository"
    assert "X-GitHub-Hook-ID" not in hdrs


def test_headers_accept_the_payload_dict_and_generate_uuid_ids():
    payload = comment_payload(comment_id=7)
    first = headers("issue_comment", "issue_comment", payload, "k")
    second = headers("issue_comment", "issue_comment", payload, "k")
    assert first["X-Gitea-Signature"] == sign("k", gitea_json_bytes(payload))
    assert first["X-Gitea-Delivery"] != second["X-Gitea-Delivery"]
    assert len(first["X-Gitea-Delivery"]) == 36


def test_headers_without_secret_are_present_but_empty():
    hdrs = headers("issue_comment", "issue_comment", b"{}", None)
    assert hdrs["X-Gitea-Signature"] == "" and hdrs["X-Gogs-Signature"] == ""
    assert hdrs["X-Hub-Signature"] == "sha1="
    assert hdrs["X-Hub-Signature-256"] == "sha256="


def test_form_delivery_signs_the_decoded_field_not_the_body():
    body, hdrs = comment_delivery("s3cret", content_type="form", body="/ssd help")
    assert hdrs["Content-Type"] == "application/x-www-form-urlencoded"
    field = parse_qs(body.decode("ascii"))["payload"][0].encode("utf-8")
    json_body, json_hdrs = comment_delivery("s3cret", body="/ssd help", comment_id=json.loads(field)["comment"]["id"])
    assert field == json_body
    assert hdrs["X-Gitea-Signature"] == sign("s3cret", field) == json_hdrs["X-Gitea-Signature"]
    assert hdrs["X-Gitea-Signature"] != sign("s3cret", body)


def test_delivery_rejects_unknown_content_type():
    with pytest.raises(ValueError):
        delivery("push", "push", {}, "k", content_type="xml")


def test_issue_comment_payload_shape():
    payload = comment_payload(body="/ssd help", user="carol", number=4, comment_id=77)
    assert list(payload) == ["action", "issue", "comment", "repository", "sender", "is_pull"]
    assert payload["is_pull"] is False and payload["issue"]["pull_request"] is None
    assert payload["issue"]["html_url"].endswith("/acme/widgets/issues/4")
    assert payload["comment"]["id"] == 77 and payload["comment"]["body"] == "/ssd help"
    assert payload["comment"]["html_url"].endswith("/issues/4#issuecomment-77")
    assert payload["comment"]["issue_url"].endswith("/issues/4") and payload["comment"]["pull_request_url"] == ""
    assert payload["sender"]["login"] == payload["comment"]["user"]["login"] == "carol"
    assert payload["sender"]["email"] == "carol@noreply.localhost"  # anonymous form: never trust it


def test_pull_request_comment_payload_shape():
    payload = comment_payload(body="/ssd help", number=2, is_pull=True)
    assert list(payload) == ["action", "issue", "pull_request", "comment", "repository", "sender", "is_pull"]
    assert payload["is_pull"] is True
    assert payload["issue"]["pull_request"]["html_url"].endswith("/pulls/2")
    assert payload["issue"]["html_url"].endswith("/pulls/2")
    assert payload["pull_request"]["number"] == 2
    assert payload["comment"]["issue_url"] == "" and payload["comment"]["pull_request_url"].endswith("/pulls/2")
    _, hdrs = comment_delivery("k", is_pull=True)
    assert hdrs["X-Gitea-Event"] == "issue_comment" and hdrs["X-Gitea-Event-Type"] == "pull_request_comment"


def test_edited_comment_carries_changes():
    payload = comment_payload(action="edited", body="new", previous_body="old")
    assert list(payload)[:4] == ["action", "issue", "comment", "changes"]
    assert payload["changes"] == {"body": {"from": "old"}, "added_labels": None, "removed_labels": None}
    with pytest.raises(ValueError):
        comment_payload(action="reviewed")


def test_comment_ids_are_distinct_by_default():
    assert comment_payload()["comment"]["id"] != comment_payload()["comment"]["id"]


def test_merged_and_unmerged_pr_payloads():
    merged = merged_pr_payload(number=5, merge_commit_sha="ab" * 20, merged_by="alice")
    assert list(merged) == [
        "action",
        "number",
        "pull_request",
        "requested_reviewer",
        "repository",
        "sender",
        "commit_id",
        "review",
    ]
    pr = merged["pull_request"]
    assert merged["action"] == "closed" and pr["merged"] is True and pr["state"] == "closed"
    assert pr["merge_commit_sha"] == "ab" * 20 and pr["base"]["sha"] == "ab" * 20
    assert pr["merged_by"]["login"] == "alice" and pr["merged_at"] and pr["closed_at"]
    assert pr["diff_url"] == pr["html_url"] + ".diff" and pr["url"] == pr["html_url"]

    closed = merged_pr_payload(number=5, merged=False, merged_by="bob")
    assert closed["pull_request"]["merged"] is False
    assert closed["pull_request"]["merged_at"] is None and closed["pull_request"]["merge_commit_sha"] is None
    assert closed["pull_request"]["merged_by"] is None

    body, hdrs = merged_pr_delivery("k", number=5)
    assert hdrs["X-Gitea-Event"] == hdrs["X-Gitea-Event-Type"] == "pull_request"
    assert json.loads(body)["pull_request"]["merged"] is True


def _swagger_properties(name: str) -> set[str]:
    if not SWAGGER.exists():
        pytest.skip(f"reference spec not found at {SWAGGER}")
    return set(json.loads(SWAGGER.read_text())["definitions"][name]["properties"])


def test_field_sets_match_the_reference_swagger():
    # username is appended by User.MarshalJSON and absent from the spec.
    assert set(user("alice")) == _swagger_properties("User") | {"username"}
    assert list(user("alice"))[:2] == ["id", "login"] and list(user("alice"))[-1] == "username"
    assert set(issue()) == _swagger_properties("Issue")
    assert set(comment_payload()["comment"]) == _swagger_properties("Comment")
    # review_comments is omitempty (absent when 0).
    assert set(pull_request()) == _swagger_properties("PullRequest") - {"review_comments"}
    # parent, repo_transfer, external tracker/wiki are omitempty pointers, nil for a plain repo.
    omitted = {"parent", "repo_transfer", "external_tracker", "external_wiki"}
    assert set(repository()) == _swagger_properties("Repository") - omitted
    assert list(repository())[:4] == ["id", "owner", "name", "full_name"]
