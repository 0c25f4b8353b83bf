"""Byte-exact Gitea 1.25.4 webhook deliveries, for tests that must see what Gitea really sends.

Gitea signs ``json.MarshalIndent(payload, "", "  ")`` (json-iterator in stdlib mode, then
``encoding/json.Indent``): two-space indent, keys in Go struct-field order, ``<`` ``>`` ``&`` and
U+2028/U+2029 escaped, other non-ASCII raw UTF-8, no trailing newline. A receiver that re-serialises
before verifying breaks on exactly these details, so the builders here reproduce them rather than
calling ``json.dumps``. Field order and the anonymous-user form follow ``modules/structs`` and
``services/convert`` (see ../shared/reference/GITEA.md §1 and §3).

Typical use::

    payload = comment_payload(body="/ssd help", user="alice")
    body, hdrs = delivery("issue_comment", "issue_comment", payload, secret="s3cret")
    client.post("/webhooks/gitea", data=body, headers=hdrs)
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import uuid
import zlib
from typing import Any
from urllib.parse import quote_plus

GITEA_URL = "http://localhost:3000"
NO_REPLY_DOMAIN = "noreply.localhost"
ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's zero time.Time
UNIX_ZERO = "1970-01-01T00:00:00Z"  # a zero unix stamp (repository.archived_at)
CREATED = "2026-01-20T09:00:00Z"
UPDATED = "2026-01-22T10:15:00Z"

# Stable ids for the logins tests use; others get one derived from the name.
USER_IDS = {"acme": 1, "alice": 2, "bob": 3, "ssd-bot": 4, "mallory": 5, "carol": 6}
REPO_IDS = {("acme", "widgets"): 1}

_comment_ids = itertools.count(9001)
_pull_ids = itertools.count(501)


# --------------------------------------------------------------------------- JSON bytes

_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_HEX = "0123456789abcdef"


def _go_string(text: str) -> str:
    """A JSON string as json-iterator's HTML-escaping writer emits it.

    Only ``\\" \\\\ \\n \\r \\t`` have short forms (json-iterator predates Go 1.22's ``\\b``/``\\f``);
    other control characters become lowercase ``\\u00xx``; ``<>&`` and U+2028/2029 are escaped;
    everything else, including DEL and non-ASCII, is written raw.
    """
    out = ['"']
    for ch in text:
        if ch in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[ch])
        elif ch < " " or ch in "<>&\u2028\u2029":
            code = ord(ch)
            out.append("\\u" + "".join(_HEX[(code >> shift) & 0xF] for shift in (12, 8, 4, 0)))
        elif "\ud800" <= ch <= "\udfff":
            out.append("\\ufffd")  # Go replaces invalid UTF-8 (lone surrogates here) with U+FFFD
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _encode(value: Any, indent: str, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, float):
        # Gitea payloads carry no floats; Go's float formatting differs from Python's, so refuse.
        raise TypeError("Gitea payloads have no floats; use an int or a string")
    elif isinstance(value, str):
        out.append(_go_string(value))
    elif isinstance(value, dict):
        if not value:
            out.append("{}")
            return
        inner = indent + "  "
        out.append("{")
        for position, (key, item) in enumerate(value.items()):
            out.append(("," if position else "") + "\n" + inner + _go_string(str(key)) + ": ")
            _encode(item, inner, out)
        out.append("\n" + indent + "}")
    elif isinstance(value, list | tuple):
        if not value:
            out.append("[]")
            return
        inner = indent + "  "
        out.append("[")
        for position, item in enumerate(value):
            out.append(("," if position else "") + "\n" + inner)
            _encode(item, inner, out)
        out.append("\n" + indent + "]")
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as Gitea JSON")


def gitea_json_bytes(obj: Any) -> bytes:
    """``json.MarshalIndent(obj, "", "  ")`` as Gitea 1.25.4 produces it (key order as given)."""
    out: list[str] = []
    _encode(obj, "", out)
    return "".join(out).encode("utf-8")


# --------------------------------------------------------------------------- signing and transport


def sign(secret: str, body: bytes) -> str:
    """Lowercase hex HMAC-SHA256 of the signed bytes (the JSON text): ``X-Gitea-Signature``."""
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def sign_sha1(secret: str, body: bytes) -> str:
    """Hex HMAC-SHA1, which Gitea also sends as ``X-Hub-Signature: sha1=…`` (never trust it)."""
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha1).hexdigest()


def form_body(json_bytes: bytes) -> bytes:
    """Go's ``url.Values{"payload": {json}}.Encode()``: space -> ``+``, all but ``A-Za-z0-9-_.~`` escaped."""
    return b"payload=" + quote_plus(json_bytes, safe="").encode("ascii")


def _json_of(body_or_payload: bytes | dict) -> bytes:
    return body_or_payload if isinstance(body_or_payload, bytes) else gitea_json_bytes(body_or_payload)


def headers(
    event: str,
    event_type: str,
    body_or_payload: bytes | dict,
    secret: str | None,
    delivery_id: str | None = None,
    content_type: str = "json",
    target_type: str = "repository",
) -> dict[str, str]:
    """Every header Gitea's ``addDefaultHeaders`` sets, plus what Go's HTTP client adds.

    ``body_or_payload`` is the JSON text (or the payload dict): the signature is always over the
    JSON, also for form deliveries whose body is ``form_body(json)``. With ``secret=None`` the
    signature headers are present but empty, as Gitea sends them for a hook without a secret.
    """
    if content_type not in ("json", "form"):
        raise ValueError("content_type is 'json' or 'form'")
    signed = _json_of(body_or_payload)
    delivery_id = delivery_id or str(uuid.uuid4())
    sig256 = sign(secret, signed) if secret is not None else ""
    sig1 = sign_sha1(secret, signed) if secret is not None else ""
    return {
        "Content-Type": "application/json" if content_type == "json" else "application/x-www-form-urlencoded",
        "User-Agent": "Go-http-client/1.1",
        "Accept-Encoding": "gzip",
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
        "X-Hub-Signature-256": f"sha256={sig256}",
        "X-Gitea-Hook-Installation-Target-Type": target_type,
        "X-GitHub-Hook-Installation-Target-Type": target_type,
    }


def delivery(
    event: str,
    event_type: str,
    payload: dict | bytes,
    secret: str | None,
    content_type: str = "json",
    delivery_id: str | None = None,
) -> tuple[bytes, dict[str, str]]:
    """(request body, headers) for one delivery, exactly as Gitea would POST it."""
    signed = _json_of(payload)
    body = signed if content_type == "json" else form_body(signed)
    return body, headers(event, event_type, signed, secret, delivery_id=delivery_id, content_type=content_type)


def comment_delivery(
    secret: str | None, content_type: str = "json", delivery_id: str | None = None, **comment: Any
) -> tuple[bytes, dict[str, str]]:
    """A comment delivery; PR-conversation comments get event type ``pull_request_comment``."""
    payload = comment_payload(**comment)
    event_type = "pull_request_comment" if payload["is_pull"] else "issue_comment"
    return delivery("issue_comment", event_type, payload, secret, content_type, delivery_id)


def merged_pr_delivery(
    secret: str | None, content_type: str = "json", delivery_id: str | None = None, **pr: Any
) -> tuple[bytes, dict[str, str]]:
    """A ``pull_request`` delivery (``action: closed``; merged unless ``merged=False``)."""
    return delivery("pull_request", "pull_request", merged_pr_payload(**pr), secret, content_type, delivery_id)


# --------------------------------------------------------------------------- payload pieces


def _user_id(login: str) -> int:
    return USER_IDS.get(login) or 100 + zlib.crc32(login.encode()) % 100_000


def user(login: str, id: int | None = None, email: str | None = None) -> dict[str, Any]:
    """A User in the anonymous form webhooks use for sender/comment.user/merged_by (``ToUser(u, nil)``).

    Pass ``email`` for the doer's own view (``issue.user``/``pull_request.user``), which carries the
    real address and ``active: true``.
    """
    uid = _user_id(login) if id is None else id
    doer_view = email is not None
    return {
        "id": uid,
        "login": login,
        "login_name": "",
        "source_id": 0,
        "full_name": login.capitalize(),
        "email": email if doer_view else f"{login.lower()}@{NO_REPLY_DOMAIN}",
        "avatar_url": f"{GITEA_URL}/avatars/{hashlib.md5(login.encode()).hexdigest()}",
        "html_url": f"{GITEA_URL}/{login}",
        "language": "en-US" if doer_view else "",
        "is_admin": False,
        "last_login": UPDATED if doer_view else ZERO_TIME,
        "created": CREATED,
        "restricted": False,
        "active": doer_view,
        "prohibit_login": False,
        "location": "",
        "website": "",
        "description": "",
        "visibility": "public",
        "followers_count": 0,
        "following_count": 0,
        "starred_repos_count": 0,
        "username": login,  # appended by User.MarshalJSON; not in the swagger
    }


def repository(
    owner: str = "acme",
    name: str = "widgets",
    id: int | None = None,
    permissions: tuple[bool, bool, bool] = (True, True, True),
) -> dict[str, Any]:
    """A Repository as ``innerToRepo`` fills it; ``permissions`` are (admin, push, pull) of the acting user."""
    rid = REPO_IDS.get((owner, name), 10 + zlib.crc32(f"{owner}/{name}".encode()) % 100_000) if id is None else id
    full_name = f"{owner}/{name}"
    admin, push, pull = permissions
    return {
        "id": rid,
        "owner": user(owner),
        "name": name,
        "full_name": full_name,
        "description": "Widgets & gadgets",
        "empty": False,
        "private": False,
        "fork": False,
        "template": False,
        "mirror": False,
        "size": 412,
        "language": "Python",
        "languages_url": f"{GITEA_URL}/api/v1/repos/{full_name}/languages",
        "html_url": f"{GITEA_URL}/{full_name}",
        "url": f"{GITEA_URL}/api/v1/repos/{full_name}",
        "link": "",
        "ssh_url": f"git@localhost:{full_name}.git",
        "clone_url": f"{GITEA_URL}/{full_name}.git",
        "original_url": "",
        "website": "",
        "stars_count": 0,
        "forks_count": 0,
        "watchers_count": 1,
        "open_issues_count": 3,
        "open_pr_counter": 1,
        "release_counter": 0,
        "default_branch": "main",
        "archived": False,
        "created_at": CREATED,
        "updated_at": UPDATED,
        "archived_at": UNIX_ZERO,
        "permissions": {"admin": admin, "push": push, "pull": pull},
        "has_code": True,
        "has_issues": True,
        "internal_tracker": {
            "enable_time_tracker": True,
            "allow_only_contributors_to_track_time": True,
            "enable_issue_dependencies": True,
        },
        "has_wiki": True,
        "has_pull_requests": True,
        "has_projects": True,
        "projects_mode": "all",
        "has_releases": True,
        "has_packages": True,
        "has_actions": True,
        "ignore_whitespace_conflicts": False,
        "allow_merge_commits": True,
        "allow_rebase": True,
        "allow_rebase_explicit": True,
        "allow_squash_merge": True,
        "allow_fast_forward_only_merge": True,
        "allow_rebase_update": True,
        "allow_manual_merge": False,
        "autodetect_manual_merge": False,
        "default_delete_branch_after_merge": False,
        "default_merge_style": "merge",
        "default_allow_maintainer_edit": False,
        "avatar_url": "",
        "internal": False,
        "mirror_interval": "",
        "object_format_name": "sha1",
        "mirror_updated": ZERO_TIME,
        "topics": [],
        "licenses": [],
    }


def issue(
    number: int = 1,
    title: str = "Widgets overflow on resize",
    body: str = "Resizing the window makes widgets spill out.",
    user_login: str = "bob",
    owner: str = "acme",
    repo: str = "widgets",
    is_pull: bool = False,
    comments: int = 1,
    state: str = "open",
    merged: bool = False,
    merged_at: str | None = None,
    updated_at: str = UPDATED,
) -> dict[str, Any]:
    """An Issue as ``toIssue`` fills it (a PR's issue when ``is_pull``: html_url /pulls/N, pull_request meta)."""
    full_name = f"{owner}/{repo}"
    kind = "pulls" if is_pull else "issues"
    html_url = f"{GITEA_URL}/{full_name}/{kind}/{number}"
    return {
        "id": 1000 + number,
        "url": f"{GITEA_URL}/api/v1/repos/{full_name}/issues/{number}",
        "html_url": html_url,
        "number": number,
        "user": user(user_login, email=f"{user_login}@example.com"),
        "original_author": "",
        "original_author_id": 0,
        "title": title,
        "body": body,
        "ref": "",
        "assets": [],
        "labels": [],
        "milestone": None,
        "assignee": None,
        "assignees": None,
        "state": state,
        "is_locked": False,
        "comments": comments,
        "created_at": CREATED,
        "updated_at": updated_at,
        "closed_at": updated_at if state == "closed" else None,
        "due_date": None,
        "time_estimate": 0,
        "pull_request": (
            {"merged": merged, "merged_at": merged_at, "draft": False, "html_url": html_url} if is_pull else None
        ),
        "repository": {"id": repository(owner, repo)["id"], "name": repo, "owner": owner, "full_name": full_name},
        "pin_order": 0,
    }


def _branch(label: str, ref: str, sha: str, owner: str, repo: str) -> dict[str, Any]:
    repo_obj = repository(owner, repo)
    return {"label": label, "ref": ref, "sha": sha, "repo_id": repo_obj["id"], "repo": repo_obj}


def pull_request(
    number: int = 2,
    title: str = "Fix widget overflow",
    body: str = "Fixes #1",
    user_login: str = "bob",
    owner: str = "acme",
    repo: str = "widgets",
    state: str = "open",
    merged: bool = False,
    merge_commit_sha: str | None = None,
    merged_by: str | None = None,
    pr_id: int | None = None,
    head_branch: str = "fix-overflow",
    head_sha: str = "1111111111111111111111111111111111111111",
    base_sha: str = "0000000000000000000000000000000000000000",
    merge_base: str = "0000000000000000000000000000000000000000",
    comments: int = 0,
    updated_at: str = UPDATED,
) -> dict[str, Any]:
    """A PullRequest as ``ToAPIPullRequest`` fills it. ``id`` is the pull_request row, not the issue."""
    full_name = f"{owner}/{repo}"
    html_url = f"{GITEA_URL}/{full_name}/pulls/{number}"
    closed = state == "closed"
    return {
        "id": next(_pull_ids) if pr_id is None else pr_id,
        "url": html_url,  # the HTML URL, same as html_url
        "number": number,
        "user": user(user_login, email=f"{user_login}@example.com"),
        "title": title,
        "body": body,
        "labels": [],
        "milestone": None,
        "assignee": None,
        "assignees": [],
        "requested_reviewers": [],
        "requested_reviewers_teams": [],
        "state": state,
        "draft": title.startswith(("WIP:", "[WIP]")),
        "is_locked": False,
        "comments": comments,
        "additions": 12,
        "deletions": 3,
        "changed_files": 2,
        "html_url": html_url,
        "diff_url": f"{html_url}.diff",
        "patch_url": f"{html_url}.patch",
        "mergeable": not closed,
        "merged": merged,
        "merged_at": updated_at if merged else None,
        "merge_commit_sha": merge_commit_sha if merged else None,
        "merged_by": user(merged_by) if merged and merged_by else None,
        "allow_maintainer_edit": False,
        # In the merge delivery base.sha is the tip of the base branch, i.e. the merge commit.
        "base": _branch("main", "main", (merge_commit_sha if merged and merge_commit_sha else base_sha), owner, repo),
        "head": _branch(head_branch, head_branch, head_sha, owner, repo),
        "merge_base": merge_base,
        "due_date": None,
        "created_at": CREATED,
        "updated_at": updated_at,
        "closed_at": updated_at if closed else None,
        "pin_order": 0,
    }


def comment(
    body: str,
    user_login: str = "alice",
    number: int = 1,
    comment_id: int | None = None,
    is_pull: bool = False,
    owner: str = "acme",
    repo: str = "widgets",
    created_at: str = UPDATED,
    updated_at: str | None = None,
) -> dict[str, Any]:
    """A Comment as ``ToAPIComment`` fills it; on a PR ``issue_url`` is empty, on an issue ``pull_request_url``."""
    cid = next(_comment_ids) if comment_id is None else comment_id
    item_url = f"{GITEA_URL}/{owner}/{repo}/{'pulls' if is_pull else 'issues'}/{number}"
    return {
        "id": cid,
        "html_url": f"{item_url}#issuecomment-{cid}",
        "pull_request_url": item_url if is_pull else "",
        "issue_url": "" if is_pull else item_url,
        "user": user(user_login),
        "original_author": "",
        "original_author_id": 0,
        "body": body,
        "assets": [],
        "created_at": created_at,
        "updated_at": updated_at or created_at,
    }


_user = user  # comment_payload's ``user`` parameter (a login, as in the brief) shadows the builder


# --------------------------------------------------------------------------- whole payloads


def comment_payload(
    action: str = "created",
    body: str = "/ssd help",
    user: str = "alice",
    number: int = 1,
    comment_id: int | None = None,
    is_pull: bool = False,
    owner: str = "acme",
    repo: str = "widgets",
    previous_body: str | None = None,
    issue_title: str | None = None,
    issue_body: str | None = None,
    permissions: tuple[bool, bool, bool] = (True, True, True),
) -> dict[str, Any]:
    """An IssueCommentPayload. On a PR conversation (``is_pull``) it carries a top-level
    ``pull_request`` and ``issue.pull_request``; ``edited`` carries ``changes.body.from``."""
    if action not in ("created", "edited", "deleted"):
        raise ValueError("comment actions are created, edited and deleted")
    login = user  # the parameter shadows the builder of the same name
    edited_at = "2026-01-22T10:20:00Z"
    the_comment = comment(
        body, login, number, comment_id, is_pull, owner, repo, updated_at=edited_at if action == "edited" else None
    )
    title = issue_title or ("Fix widget overflow" if is_pull else "Widgets overflow on resize")
    text = issue_body if issue_body is not None else ("Fixes #1" if is_pull else "Resizing makes widgets spill out.")
    payload: dict[str, Any] = {
        "action": action,
        # The issue is reloaded after the comment is stored, so it already counts it.
        "issue": issue(
            number,
            title,
            text,
            owner=owner,
            repo=repo,
            is_pull=is_pull,
            comments=1,
            updated_at=the_comment["updated_at"],
        ),
    }
    if is_pull:
        payload["pull_request"] = pull_request(
            number, title, text, owner=owner, repo=repo, comments=1, updated_at=the_comment["updated_at"]
        )
    payload["comment"] = the_comment
    if action == "edited":
        payload["changes"] = {"body": {"from": previous_body or ""}, "added_labels": None, "removed_labels": None}
    payload["repository"] = repository(owner, repo, permissions=permissions)
    payload["sender"] = _user(login)
    payload["is_pull"] = is_pull
    return payload


def merged_pr_payload(
    number: int = 2,
    title: str = "Fix widget overflow",
    body: str = "Fixes #1",
    merged: bool = True,
    merge_commit_sha: str = "3f786850e387550fdab836ed7e6dc881de23001b",
    merged_by: str = "alice",
    author: str = "bob",
    owner: str = "acme",
    repo: str = "widgets",
    pr_id: int | None = None,
    merged_at: str = UPDATED,
) -> dict[str, Any]:
    """A PullRequestPayload with ``action: closed``: the merge (``merged=True``) or a close without one.

    ``merged_by`` is also the sender (the doer); for a close without merge it is whoever closed it.
    """
    pr = pull_request(
        number,
        title,
        body,
        user_login=author,
        owner=owner,
        repo=repo,
        state="closed",
        merged=merged,
        merge_commit_sha=merge_commit_sha,
        merged_by=merged_by,
        pr_id=pr_id,
        updated_at=merged_at,
    )
    return {
        "action": "closed",
        "number": number,
        "pull_request": pr,
        "requested_reviewer": None,
        "repository": repository(owner, repo),
        "sender": user(merged_by),
        "commit_id": "",
        "review": None,
    }
