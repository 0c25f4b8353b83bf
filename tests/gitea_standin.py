"""A Gitea 1.25.4 stand-in served over real HTTP on loopback, for tests.

It implements the endpoints the bot calls, with the fields and status codes of
``shared/reference/gitea-swagger.v1.json`` and the traps of ``GITEA.md`` §4 (500 for a comment on a missing
issue index, 403 on the permission endpoint for non-admin tokens, ``active`` defaulting to false on hooks, ...).
State is plain Python so tests can seed it and assert on it; every request is recorded, and the next N
requests can be made to fail or hang to exercise the client's timeouts and retries.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

GITEA_VERSION = "1.25.4"
# [ui] REACTIONS default: anything else is refused with 403.
ALLOWED_REACTIONS = ("+1", "-1", "laugh", "hooray", "confused", "heart", "rocket", "eyes")
HOOK_TYPES = (
    "gitea",
    "gogs",
    "slack",
    "discord",
    "dingtalk",
    "telegram",
    "msteams",
    "feishu",
    "matrix",
    "wechatwork",
    "packagist",
)
# How the API's ``events`` names are stored (routers/api/v1/utils/hook.go updateHookEvents). Stored names
# are what a hook lists back; "pull_request_only" is stored as plain "pull_request".
HOOK_EVENT_EXPANSION = {
    "pull_request_only": ["pull_request"],
    "pull_request": [
        "pull_request",
        "pull_request_assign",
        "pull_request_label",
        "pull_request_milestone",
        "pull_request_comment",
        "pull_request_review_approved",
        "pull_request_review_rejected",
        "pull_request_review_comment",
        "pull_request_sync",
        "pull_request_review_request",
    ],
    "issues": ["issues", "issue_assign", "issue_label", "issue_milestone", "issue_comment"],
}
LEVELS = ("none", "read", "write", "admin", "owner")
DEFAULT_PAGE_LIMIT = 30  # [api] DEFAULT_PAGING_NUM
MAX_PAGE_LIMIT = 50  # [api] MAX_RESPONSE_ITEMS


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def git_blob_sha(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def gitea_json(value: Any) -> bytes:
    """Encode like Gitea's ctx.JSON: compact, HTML-escaped, trailing newline."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    # Go's encoder escapes these inside strings; they cannot occur outside strings in JSON text.
    for raw, escaped in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(raw, escaped)
    return (text + "\n").encode()


class ApiError(Exception):
    def __init__(self, status: int, message: str = "", empty: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.empty = empty


@dataclass
class User:
    id: int
    login: str
    token: str | None = None
    is_admin: bool = False
    full_name: str = ""


@dataclass
class Repo:
    id: int
    owner: str
    name: str
    private: bool = False
    internal: bool = False  # visible to every signed-in user of the instance, not to the public
    default_branch: str = "main"
    description: str = ""
    collaborators: dict[str, str] = field(default_factory=dict)  # login -> read|write|admin
    issues: dict[int, dict] = field(default_factory=dict)  # index -> issue state (PRs included)
    hooks: list[dict] = field(default_factory=list)
    refs: dict[str, str] = field(default_factory=dict)  # branch/tag -> commit sha
    trees: dict[str, dict[str, bytes]] = field(default_factory=dict)  # commit sha -> {path: bytes}
    git_dir: str | None = None  # a real git repository behind archives, commits and clones (set_git_dir)

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    def next_index(self) -> int:
        return max(self.issues, default=0) + 1


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    json: Any
    status: int = 0

    @property
    def api_path(self) -> str:
        """The path below ``/api/v1`` (what the swagger spec names)."""
        return self.path.removeprefix("/api/v1")


class _QuietHandler(WSGIRequestHandler):
    """Requests are recorded on the stand-in; the per-request access log would only drown test output."""

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


def _rules() -> Map:
    repo = "/api/v1/repos/<owner>/<repo>"
    return Map(
        [
            Rule("/api/v1/version", methods=["GET"], endpoint="version"),
            Rule("/api/v1/user", methods=["GET"], endpoint="whoami"),
            Rule("/api/v1/users/<username>", methods=["GET"], endpoint="get_user"),
            Rule(repo, methods=["GET"], endpoint="get_repo"),
            Rule(f"{repo}/issues/<int:index>", methods=["GET"], endpoint="get_issue"),
            Rule(f"{repo}/issues/<int:index>/comments", methods=["GET"], endpoint="list_comments"),
            Rule(f"{repo}/issues/<int:index>/comments", methods=["POST"], endpoint="create_comment"),
            Rule(f"{repo}/issues/comments/<int:comment_id>", methods=["GET"], endpoint="get_comment"),
            Rule(f"{repo}/issues/comments/<int:comment_id>", methods=["PATCH"], endpoint="edit_comment"),
            Rule(f"{repo}/issues/comments/<int:comment_id>/reactions", methods=["GET"], endpoint="list_reactions"),
            Rule(f"{repo}/issues/comments/<int:comment_id>/reactions", methods=["POST"], endpoint="add_reaction"),
            Rule(f"{repo}/issues/comments/<int:comment_id>/assets", methods=["POST"], endpoint="add_attachment"),
            Rule(f"{repo}/pulls", methods=["GET"], endpoint="list_pulls"),
            Rule(f"{repo}/pulls/<int:index>", methods=["GET"], endpoint="get_pull"),
            Rule(f"{repo}/pulls/<int:index>.<any(diff, patch):kind>", methods=["GET"], endpoint="pull_diff"),
            Rule(f"{repo}/collaborators/<collaborator>/permission", methods=["GET"], endpoint="permission"),
            Rule(f"{repo}/hooks", methods=["GET"], endpoint="list_hooks"),
            Rule(f"{repo}/hooks", methods=["POST"], endpoint="create_hook"),
            Rule(f"{repo}/hooks/<int:hook_id>", methods=["PATCH"], endpoint="edit_hook"),
            Rule(f"{repo}/hooks/<int:hook_id>", methods=["DELETE"], endpoint="delete_hook"),
            Rule(f"{repo}/git/trees/<sha>", methods=["GET"], endpoint="git_tree"),
            Rule(f"{repo}/git/commits/<sha>", methods=["GET"], endpoint="git_commit"),
            Rule(f"{repo}/archive/<path:archive>", methods=["GET"], endpoint="archive"),
            Rule("/<owner>/<repo>.git/<path:service>", methods=["GET", "POST"], endpoint="smart_http"),
            Rule(f"{repo}/raw/<path:filepath>", methods=["GET"], endpoint="raw"),
            Rule(f"{repo}/contents/<path:filepath>", methods=["GET"], endpoint="contents"),
            Rule("/attachments/<key>", methods=["GET"], endpoint="download_attachment"),
        ]
    )


class GiteaStandin:
    """State + a WSGI app + a thread serving it. Use ``start()``/``stop()`` or the ``gitea`` fixture."""

    def __init__(self) -> None:
        self.users: dict[str, User] = {}
        self.repos: dict[str, Repo] = {}
        self.comments: dict[int, dict] = {}  # comment id -> state (repo, index, user, body, reactions, assets)
        self.attachments: dict[str, tuple[dict, bytes]] = {}
        self.requests: list[RecordedRequest] = []
        self.git_trees_per_page = 1000  # [api] DEFAULT_GIT_TREES_PER_PAGE
        self._ids: dict[str, int] = {}
        self._faults: list[tuple[str, Any]] = []
        self._failing_paths: list[tuple[str, int]] = []
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._url_map = _rules()
        self._server = None
        self._thread: threading.Thread | None = None
        self.url = ""

    # ---- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> GiteaStandin:
        self._server = make_server("127.0.0.1", 0, self.wsgi, threaded=True, request_handler=_QuietHandler)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="gitea-standin", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes hanging handlers
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def api_url(self) -> str:
        return self.url + "/api/v1"

    # ---- seeding helpers ---------------------------------------------------------------------------------

    def _next_id(self, kind: str) -> int:
        self._ids[kind] = self._ids.get(kind, 0) + 1
        return self._ids[kind]

    def add_user(self, login: str, *, admin: bool = False, token: str | None = None) -> User:
        user = User(id=self._next_id("user"), login=login, token=token, is_admin=admin)
        self.users[login.lower()] = user
        return user

    def add_repo(
        self, full_name: str, *, private: bool = False, internal: bool = False, default_branch: str = "main"
    ) -> Repo:
        owner, name = full_name.split("/")
        if owner.lower() not in self.users:
            self.add_user(owner)
        repo = Repo(
            id=self._next_id("repo"),
            owner=owner,
            name=name,
            private=private,
            internal=internal,
            default_branch=default_branch,
        )
        self.repos[full_name.lower()] = repo
        return repo

    def repo(self, full_name: str) -> Repo:
        return self.repos[full_name.lower()]

    def grant(self, full_name: str, login: str, level: str) -> None:
        assert level in ("read", "write", "admin"), level
        self.repo(full_name).collaborators[login.lower()] = level

    def add_issue(
        self,
        full_name: str,
        title: str,
        body: str = "",
        *,
        user: str = "alice",
        locked: bool = False,
        state: str = "open",
    ) -> dict:
        repo = self.repo(full_name)
        index = repo.next_index()
        issue = {
            "id": self._next_id("issue"),
            "number": index,
            "title": title,
            "body": body,
            "user": user,
            "state": state,
            "is_locked": locked,
            "created_at": now(),
            "updated_at": now(),
            "pull": None,
        }
        repo.issues[index] = issue
        return issue

    def add_pull(
        self,
        full_name: str,
        title: str,
        body: str = "",
        *,
        diff: str = "",
        user: str = "alice",
        merged: bool = False,
        merged_by: str | None = None,
        state: str | None = None,
        head: str = "feature",
        base: str = "main",
        merge_commit_sha: str | None = None,
        merge_base: str | None = None,
        head_sha: str | None = None,
        merged_at: str | None = None,
    ) -> dict:
        """A PR with its diff. ``merged=True`` closes it with a merge commit sha (made up unless given, as
        are ``merge_base`` and ``head_sha``: a PR of a repository with a real ``git_dir`` passes the real ones)."""
        issue = self.add_issue(full_name, title, body, user=user, state=state or ("closed" if merged else "open"))
        merge_sha = merge_commit_sha or hashlib.sha1(f"{full_name}#{issue['number']}".encode()).hexdigest()
        issue["pull"] = {
            "id": self._next_id("pull"),
            "diff": diff,
            "merged": merged,
            "merged_at": (merged_at or now()) if merged else None,
            "merged_by": (merged_by or user) if merged else None,
            "merge_commit_sha": merge_sha if merged else None,
            "head": head,
            "base": base,
            "merge_base": merge_base,
            "head_sha": head_sha or hashlib.sha1(f"head{issue['id']}".encode()).hexdigest(),
        }
        return issue

    def set_git_dir(self, full_name: str, git_dir: str) -> None:
        """Serve archives, commits and clones of ``full_name`` from a real git repository."""
        self.repo(full_name).git_dir = git_dir

    def add_files(self, full_name: str, files: dict[str, bytes | str], *, ref: str | None = None) -> str:
        """Commit ``files`` (path -> content) as the whole tree of a new commit on ``ref``; returns its sha."""
        repo = self.repo(full_name)
        ref = ref or repo.default_branch
        tree = {path: data.encode() if isinstance(data, str) else data for path, data in files.items()}
        sha = hashlib.sha1(
            json.dumps(sorted((p, git_blob_sha(d)) for p, d in tree.items())).encode() + ref.encode()
        ).hexdigest()
        repo.trees[sha] = tree
        repo.refs[ref] = sha
        return sha

    def add_comment(self, full_name: str, index: int, body: str, *, user: str = "alice") -> dict:
        repo = self.repo(full_name)
        comment = {
            "id": self._next_id("comment"),
            "repo": repo.full_name.lower(),
            "index": index,
            "user": user,
            "body": body,
            "created_at": now(),
            "updated_at": now(),
            "reactions": [],
            "assets": [],
        }
        self.comments[comment["id"]] = comment
        return comment

    def comments_on(self, full_name: str, index: int) -> list[dict]:
        return [c for c in self.comments.values() if c["repo"] == full_name.lower() and c["index"] == index]

    # ---- fault injection and inspection --------------------------------------------------------------

    def fail_path(self, path_contains: str, status: int = 500) -> None:
        """From now on, every request whose path contains ``path_contains`` answers ``status`` (an endpoint
        that keeps failing while the rest of the server works)."""
        with self._lock:
            self._failing_paths.append((path_contains, status))

    def fail_next(self, n: int, status: int = 500, headers: dict[str, str] | None = None) -> None:
        """The next ``n`` requests answer ``status`` (with ``headers``, e.g. Retry-After) and change nothing."""
        with self._lock:
            self._faults.extend([("fail", (status, headers or {}))] * n)

    def hang_next(self, n: int, seconds: float, *, after: bool = False) -> None:
        """The next ``n`` requests sleep ``seconds`` before being handled (to trip client timeouts), or with
        ``after=True`` are handled first and only the answer is late (the change is made, the reply lost)."""
        with self._lock:
            self._faults.extend([("hang_after" if after else "hang", seconds)] * n)

    def calls(self, method: str | None = None, path_contains: str = "") -> list[RecordedRequest]:
        return [r for r in self.requests if (method is None or r.method == method.upper()) and path_contains in r.path]

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    # ---- HTTP ---------------------------------------------------------------------------------------

    def wsgi(self, environ: dict, start_response: Callable) -> Any:
        request = Request(environ)
        body = request.get_data(cache=True)
        parsed: Any = None
        if request.mimetype == "application/json" and body:
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            query=dict(request.args),
            headers=dict(request.headers),
            body=body,
            json=parsed,
        )
        with self._lock:
            self.requests.append(record)
            fault = self._faults.pop(0) if self._faults else None
            for path_contains, status in self._failing_paths:
                if path_contains in request.path:
                    fault = ("fail", (status, {}))
        if fault and fault[0] == "hang":
            self._stopping.wait(fault[1])
        if fault and fault[0] == "fail":
            status, headers = fault[1]
            response = self._error_response(status, "injected failure")
            for key, value in headers.items():
                response.headers[key] = value
        else:
            response = self._dispatch(request)
        if fault and fault[0] == "hang_after":
            self._stopping.wait(fault[1])
        record.status = response.status_code
        return response(environ, start_response)

    def _error_response(self, status: int, message: str, empty: bool = False) -> Response:
        if empty:
            return Response(b"", status=status)
        payload: dict[str, Any] = {"message": message, "url": f"{self.url}/api/swagger"}
        if status == 404:
            payload = {"errors": None, "message": message or "not found", "url": f"{self.url}/api/swagger"}
        return Response(gitea_json(payload), status=status, content_type="application/json;charset=utf-8")

    def _dispatch(self, request: Request) -> Response:
        adapter = self._url_map.bind_to_environ(request.environ)
        try:
            endpoint, values = adapter.match()
        except NotFound:
            return self._error_response(404, "not found")
        except HTTPException as exc:
            return self._error_response(exc.code or 500, exc.description or "")
        try:
            with self._lock:
                doer = None if endpoint in ("version", "download_attachment") else self._authenticate(request)
                result = getattr(self, f"_h_{endpoint}")(request, doer, **values)
        except ApiError as exc:
            return self._error_response(exc.status, exc.message, exc.empty)
        if isinstance(result, Response):
            return result
        # Handlers return a payload, (status, payload) or (status, payload, total count of a list).
        status, payload, total = (result + (None,))[:3] if isinstance(result, tuple) else (200, result, None)
        response = Response(gitea_json(payload), status=status, content_type="application/json;charset=utf-8")
        if isinstance(payload, list):
            response.headers["X-Total-Count"] = str(len(payload) if total is None else total)
        return response

    def _authenticate(self, request: Request) -> User:
        header = request.headers.get("Authorization", "")
        fields = header.split()
        # Exactly two fields, scheme case-insensitive (modules/auth/httpauth).
        if len(fields) == 2 and fields[0].lower() in ("token", "bearer"):
            for user in self.users.values():
                if user.token and user.token == fields[1]:
                    return user
            raise ApiError(401, "user does not exist [uid: 0, name: ]")
        raise ApiError(401, "token is required")

    # ---- permissions and JSON shapes --------------------------------------------------------------------

    def level(self, repo: Repo, login: str) -> str:
        user = self.users.get(login.lower())
        if user is None:
            return "none"
        if user.login.lower() == repo.owner.lower():
            return "owner"
        if user.is_admin:
            return "admin"
        explicit = repo.collaborators.get(login.lower())
        if explicit:
            return explicit
        return "none" if repo.private else "read"

    def _at_least(self, repo: Repo, doer: User, level: str) -> bool:
        return LEVELS.index(self.level(repo, doer.login)) >= LEVELS.index(level)

    def _repo(self, owner: str, name: str, doer: User) -> Repo:
        repo = self.repos.get(f"{owner}/{name}".lower())
        if repo is None or not self._at_least(repo, doer, "read"):
            raise ApiError(404, "not found")
        return repo

    def user_json(self, login: str) -> dict:
        user = self.users[login.lower()]
        return {
            "id": user.id,
            "login": user.login,
            "login_name": "",
            "source_id": 0,
            "full_name": user.full_name,
            "email": f"{user.login.lower()}@noreply.localhost",
            "avatar_url": f"{self.url}/avatars/{user.id}",
            "html_url": f"{self.url}/{user.login}",
            "language": "",
            "is_admin": user.is_admin,
            "last_login": "0001-01-01T00:00:00Z",
            "created": "2026-01-01T00:00:00Z",
            "restricted": False,
            "active": True,
            "prohibit_login": False,
            "location": "",
            "website": "",
            "description": "",
            "visibility": "public",
            "followers_count": 0,
            "following_count": 0,
            "starred_repos_count": 0,
            "username": user.login,
        }

    def repo_json(self, repo: Repo, doer: User) -> dict:
        level = self.level(repo, doer.login)
        html = f"{self.url}/{repo.full_name}"
        return {
            "id": repo.id,
            "owner": self.user_json(repo.owner),
            "name": repo.name,
            "full_name": repo.full_name,
            "description": repo.description,
            "empty": not repo.trees,
            "private": repo.private,
            "fork": False,
            "template": False,
            "mirror": False,
            "size": 0,
            "language": "",
            "html_url": html,
            "url": f"{self.api_url}/repos/{repo.full_name}",
            "link": "",
            "ssh_url": f"git@127.0.0.1:{repo.full_name}.git",
            "clone_url": f"{html}.git",
            "original_url": "",
            "website": "",
            "stars_count": 0,
            "forks_count": 0,
            "watchers_count": 0,
            "open_issues_count": sum(1 for i in repo.issues.values() if i["state"] == "open" and not i["pull"]),
            "open_pr_counter": sum(1 for i in repo.issues.values() if i["state"] == "open" and i["pull"]),
            "release_counter": 0,
            "default_branch": repo.default_branch,
            "archived": False,
            "created_at": "2026-01-01T00:00:00Z",
            "updated_at": now(),
            "archived_at": "1970-01-01T00:00:00Z",
            "permissions": {
                "admin": level in ("admin", "owner"),
                "push": level in ("write", "admin", "owner"),
                "pull": level != "none",
            },
            "has_issues": True,
            "has_wiki": False,
            "has_pull_requests": True,
            "has_projects": False,
            "has_releases": True,
            "has_packages": False,
            "has_actions": False,
            "internal": repo.internal,
            "object_format_name": "sha1",
            "topics": [],
            "licenses": [],
        }

    def _html_issue_url(self, repo: Repo, issue: dict) -> str:
        return f"{self.url}/{repo.full_name}/{'pulls' if issue['pull'] else 'issues'}/{issue['number']}"

    def issue_json(self, repo: Repo, issue: dict) -> dict:
        pull = issue["pull"]
        return {
            "id": issue["id"],
            "url": f"{self.api_url}/repos/{repo.full_name}/issues/{issue['number']}",
            "html_url": self._html_issue_url(repo, issue),
            "number": issue["number"],
            "user": self.user_json(issue["user"]),
            "original_author": "",
            "original_author_id": 0,
            "title": issue["title"],
            "body": issue["body"],
            "ref": "",
            "assets": [],
            "labels": [],
            "milestone": None,
            "assignee": None,
            "assignees": None,
            "state": issue["state"],
            "is_locked": issue["is_locked"],
            "comments": len(self.comments_on(repo.full_name, issue["number"])),
            "created_at": issue["created_at"],
            "updated_at": issue["updated_at"],
            "closed_at": issue["updated_at"] if issue["state"] == "closed" else None,
            "due_date": None,
            "time_estimate": 0,
            "pull_request": None
            if not pull
            else {
                "merged": pull["merged"],
                "merged_at": pull["merged_at"],
                "draft": False,
                "html_url": self._html_issue_url(repo, issue),
            },
            "repository": {"id": repo.id, "name": repo.name, "owner": repo.owner, "full_name": repo.full_name},
            "pin_order": 0,
        }

    def pull_json(self, repo: Repo, issue: dict, doer: User) -> dict:
        pull = issue["pull"]
        html = self._html_issue_url(repo, issue)
        branch = {"repo_id": repo.id, "repo": self.repo_json(repo, doer)}
        head_ref = f"refs/pull/{issue['number']}/head" if pull["merged"] else pull["head"]
        return {
            "id": pull["id"],
            "url": html,
            "number": issue["number"],
            "user": self.user_json(issue["user"]),
            "title": issue["title"],
            "body": issue["body"],
            "labels": [],
            "milestone": None,
            "assignee": None,
            "assignees": [],
            "requested_reviewers": [],
            "requested_reviewers_teams": [],
            "state": issue["state"],
            "draft": issue["title"].startswith(("WIP:", "[WIP]")),
            "is_locked": issue["is_locked"],
            "comments": len(self.comments_on(repo.full_name, issue["number"])),
            "html_url": html,
            "diff_url": f"{html}.diff",
            "patch_url": f"{html}.patch",
            "mergeable": not pull["merged"],
            "merged": pull["merged"],
            "merged_at": pull["merged_at"],
            "merge_commit_sha": pull["merge_commit_sha"],
            "merged_by": self.user_json(pull["merged_by"]) if pull["merged_by"] else None,
            "allow_maintainer_edit": False,
            "base": {"label": pull["base"], "ref": pull["base"], "sha": pull["merge_commit_sha"] or "0" * 40, **branch},
            "head": {"label": pull["head"], "ref": head_ref, "sha": pull["head_sha"], **branch},
            "merge_base": pull.get("merge_base") or "0" * 40,
            "due_date": None,
            "created_at": issue["created_at"],
            "updated_at": issue["updated_at"],
            "closed_at": issue["updated_at"] if issue["state"] == "closed" else None,
            "pin_order": 0,
        }

    def comment_json(self, comment: dict) -> dict:
        repo = self.repos[comment["repo"]]
        issue = repo.issues[comment["index"]]
        html = self._html_issue_url(repo, issue)
        return {
            "id": comment["id"],
            "html_url": f"{html}#issuecomment-{comment['id']}",
            "pull_request_url": html if issue["pull"] else "",
            "issue_url": "" if issue["pull"] else html,
            "user": self.user_json(comment["user"]),
            "original_author": "",
            "original_author_id": 0,
            "body": comment["body"],
            "assets": [a for a, _ in (self.attachments[u] for u in comment["assets"])],
            "created_at": comment["created_at"],
            "updated_at": comment["updated_at"],
        }

    def _comment(self, repo: Repo, comment_id: int) -> dict:
        comment = self.comments.get(comment_id)
        if comment is None or comment["repo"] != repo.full_name.lower():
            raise ApiError(404, "not found")
        return comment

    def _issue(self, repo: Repo, index: int) -> dict:
        issue = repo.issues.get(index)
        if issue is None:
            raise ApiError(404, "not found")
        return issue

    @staticmethod
    def _body(request: Request) -> dict:
        try:
            value = json.loads(request.get_data() or b"{}")
        except ValueError:
            raise ApiError(422, "invalid JSON body") from None
        if not isinstance(value, dict):
            raise ApiError(422, "expected a JSON object")
        return value

    # ---- handlers (named _h_<endpoint>) -------------------------------------------------------------------

    def _h_version(self, request: Request, doer: None) -> dict:
        return {"version": GITEA_VERSION}

    def _h_whoami(self, request: Request, doer: User) -> dict:
        return self.user_json(doer.login)

    def _h_get_user(self, request: Request, doer: User, username: str) -> dict:
        if username.lower() not in self.users:
            raise ApiError(404, f"user redirect does not exist [name: {username}]")
        shown = self.user_json(username)
        # convert.ToUser: the real is_admin (and e-mail) only for a site admin or the user themself.
        if not (doer.is_admin or doer.login.lower() == username.lower()):
            shown["is_admin"] = False
        return shown

    def _h_get_repo(self, request: Request, doer: User, owner: str, repo: str) -> dict:
        return self.repo_json(self._repo(owner, repo, doer), doer)

    def _h_get_issue(self, request: Request, doer: User, owner: str, repo: str, index: int) -> dict:
        target = self._repo(owner, repo, doer)
        return self.issue_json(target, self._issue(target, index))

    def _h_get_pull(self, request: Request, doer: User, owner: str, repo: str, index: int) -> dict:
        target = self._repo(owner, repo, doer)
        issue = self._issue(target, index)
        if not issue["pull"]:
            raise ApiError(404, "not found")
        return self.pull_json(target, issue, doer)

    def _h_pull_diff(self, request: Request, doer: User, owner: str, repo: str, index: int, kind: str) -> Response:
        target = self._repo(owner, repo, doer)
        issue = self._issue(target, index)
        if not issue["pull"]:
            raise ApiError(404, "not found")
        # Gitea sniffs the content type of the diff text.
        return Response(issue["pull"]["diff"].encode(), content_type="text/plain; charset=utf-8")

    def _h_list_pulls(self, request: Request, doer: User, owner: str, repo: str) -> tuple:
        """``repoListPullRequests``: state open (default) | closed | all; newest first unless sort=oldest."""
        target = self._repo(owner, repo, doer)
        state = request.args.get("state", "open") or "open"
        if state not in ("open", "closed", "all"):
            raise ApiError(422, "[State]: invalid state")
        pulls = [i for i in target.issues.values() if i["pull"] and (state == "all" or i["state"] == state)]
        pulls.sort(key=lambda i: (i["created_at"], i["number"]), reverse=request.args.get("sort") != "oldest")
        page = max(request.args.get("page", 1, type=int) or 1, 1)
        limit = request.args.get("limit", DEFAULT_PAGE_LIMIT, type=int) or DEFAULT_PAGE_LIMIT
        limit = min(max(limit, 1), MAX_PAGE_LIMIT)
        chunk = pulls[(page - 1) * limit : page * limit]
        return 200, [self.pull_json(target, issue, doer) for issue in chunk], len(pulls)

    @staticmethod
    def _git(target: Repo, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["git", "--git-dir", target.git_dir or "", *args],
            input=input,
            capture_output=True,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GIT_CONFIG_NOSYSTEM": "1"},
        )

    def _commit_of(self, target: Repo, ref: str) -> str:
        if not target.git_dir or not ref or ref.startswith("-"):
            raise ApiError(404, "not found")
        found = self._git(target, "rev-parse", "--verify", "-q", f"{ref}^{{commit}}")
        if found.returncode != 0:
            raise ApiError(404, "not found")
        return found.stdout.decode().strip()

    def _h_archive(self, request: Request, doer: User, owner: str, repo: str, archive: str) -> Response:
        """``repoGetArchive``: ``{ref}.tar.gz`` / ``{ref}.zip`` made by ``git archive`` with the repository name
        as the top-level directory, like Gitea's."""
        target = self._repo(owner, repo, doer)
        formats = {".tar.gz": ("tar.gz", "application/gzip"), ".zip": ("zip", "application/zip")}
        suffix = next((s for s in formats if archive.endswith(s)), None)
        if suffix is None:
            raise ApiError(404, "Unknown archive format")
        ref = archive[: -len(suffix)]
        fmt, content_type = formats[suffix]
        sha = self._commit_of(target, ref)
        made = self._git(target, "archive", f"--format={fmt}", f"--prefix={target.name}/", sha)
        if made.returncode != 0:
            raise ApiError(500, made.stderr.decode(errors="replace"))
        return Response(
            made.stdout,
            content_type=content_type,
            headers={"Content-Disposition": f'attachment; filename="{target.name}-{ref}.{fmt}"'},
        )

    def _h_git_commit(self, request: Request, doer: User, owner: str, repo: str, sha: str) -> dict:
        """``repoGetSingleCommit`` (the fields the bot reads: sha, parents, commit.message/tree)."""
        target = self._repo(owner, repo, doer)
        full = self._commit_of(target, sha)
        shown = self._git(target, "show", "-s", "--format=%T%n%P%n%an%n%ae%n%aI%n%cI%n%B", full).stdout.decode()
        tree, parents, name, email, authored, committed, message = shown.split("\n", 6)
        api = f"{self.api_url}/repos/{target.full_name}/git/commits"
        person = {"name": name, "email": email, "date": authored}
        return {
            "url": f"{api}/{full}",
            "sha": full,
            "created": committed,
            "html_url": f"{self.url}/{target.full_name}/commit/{full}",
            "commit": {
                "url": f"{api}/{full}",
                "author": person,
                "committer": dict(person, date=committed),
                "message": message,
                "tree": {
                    "url": f"{self.api_url}/repos/{target.full_name}/git/trees/{tree}",
                    "sha": tree,
                    "created": committed,
                },
                "verification": None,
            },
            "author": None,
            "committer": None,
            "parents": [{"url": f"{api}/{p}", "sha": p, "created": committed} for p in parents.split()],
            "files": None,
            "stats": None,
        }

    def _h_smart_http(self, request: Request, doer: User, owner: str, repo: str, service: str) -> Response:
        """Read-only git smart HTTP (``git clone {clone_url}``), served by ``git http-backend`` as a CGI."""
        target = self._repo(owner, repo, doer)
        if not target.git_dir:
            raise ApiError(404, "not found")
        wanted = request.args.get("service", "")
        if service not in ("info/refs", "git-upload-pack") or (service == "info/refs" and wanted != "git-upload-pack"):
            raise ApiError(403, "this stand-in only serves fetches")
        git_dir = os.path.abspath(target.git_dir)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": os.path.dirname(git_dir),
            "PATH_INFO": f"/{os.path.basename(git_dir)}/{service}",
            "REQUEST_METHOD": request.method,
            "QUERY_STRING": request.query_string.decode(),
            "CONTENT_TYPE": request.content_type or "",
            "GIT_HTTP_EXPORT_ALL": "1",
            "REMOTE_USER": doer.login,
            "GIT_CONFIG_NOSYSTEM": "1",
        }
        if request.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = request.headers["Content-Encoding"]
        if request.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = request.headers["Git-Protocol"]
        answer = subprocess.run(["git", "http-backend"], input=request.get_data(), env=env, capture_output=True)
        head, _, body = answer.stdout.partition(b"\r\n\r\n")
        if not _:
            head, _, body = answer.stdout.partition(b"\n\n")
        response = Response(body)
        for line in head.decode("latin-1").splitlines():
            key, _, value = line.partition(":")
            if key.lower() == "status":
                response.status_code = int(value.split()[0])
            elif key:
                response.headers[key.strip()] = value.strip()
        return response

    def _h_list_comments(self, request: Request, doer: User, owner: str, repo: str, index: int) -> list:
        target = self._repo(owner, repo, doer)
        self._issue(target, index)
        # All of them, oldest first: this endpoint has no page/limit.
        return [self.comment_json(c) for c in sorted(self.comments_on(target.full_name, index), key=lambda c: c["id"])]

    def _h_create_comment(self, request: Request, doer: User, owner: str, repo: str, index: int) -> tuple:
        target = self._repo(owner, repo, doer)
        issue = target.issues.get(index)
        if issue is None:
            # Gitea answers a missing index with APIErrorInternal; the message is hidden from non-admins.
            raise ApiError(500, "issue does not exist" if doer.is_admin else "")
        if issue["is_locked"] and not self._at_least(target, doer, "write"):
            raise ApiError(403, "user cannot comment on a locked issue")
        body = self._body(request).get("body")
        if not isinstance(body, str):
            raise ApiError(422, "[Body]: Required")
        comment = self.add_comment(target.full_name, index, body, user=doer.login)
        issue["updated_at"] = comment["created_at"]
        return 201, self.comment_json(comment)

    def _h_get_comment(self, request: Request, doer: User, owner: str, repo: str, comment_id: int) -> dict:
        target = self._repo(owner, repo, doer)
        return self.comment_json(self._comment(target, comment_id))

    def _h_edit_comment(self, request: Request, doer: User, owner: str, repo: str, comment_id: int) -> dict:
        target = self._repo(owner, repo, doer)
        comment = self._comment(target, comment_id)
        if comment["user"].lower() != doer.login.lower() and not self._at_least(target, doer, "write"):
            raise ApiError(403, "", empty=True)
        body = self._body(request).get("body")
        if not isinstance(body, str):
            raise ApiError(422, "[Body]: Required")
        if body != comment["body"]:
            comment["body"] = body
            comment["updated_at"] = now()
        return self.comment_json(comment)

    def _h_list_reactions(self, request: Request, doer: User, owner: str, repo: str, comment_id: int) -> list:
        comment = self._comment(self._repo(owner, repo, doer), comment_id)
        return [self._reaction_json(r) for r in comment["reactions"]]

    def _reaction_json(self, reaction: dict) -> dict:
        return {
            "user": self.user_json(reaction["user"]),
            "content": reaction["content"],
            "created_at": reaction["created_at"],
        }

    def _h_add_reaction(self, request: Request, doer: User, owner: str, repo: str, comment_id: int) -> tuple:
        comment = self._comment(self._repo(owner, repo, doer), comment_id)
        content = self._body(request).get("content")
        if content not in ALLOWED_REACTIONS:
            raise ApiError(403, f"'{content}' is not an allowed reaction")
        for reaction in comment["reactions"]:
            if reaction["user"].lower() == doer.login.lower() and reaction["content"] == content:
                return 200, self._reaction_json(reaction)
        reaction = {"user": doer.login, "content": content, "created_at": now()}
        comment["reactions"].append(reaction)
        return 201, self._reaction_json(reaction)

    def _h_add_attachment(self, request: Request, doer: User, owner: str, repo: str, comment_id: int) -> tuple:
        target = self._repo(owner, repo, doer)
        comment = self._comment(target, comment_id)
        if comment["user"].lower() != doer.login.lower() and not self._at_least(target, doer, "write"):
            raise ApiError(403, "user should have permission to edit comment")
        upload = request.files.get("attachment")
        if upload is None:
            raise ApiError(400, "attachment is required")
        data = upload.read()
        name = request.args.get("name") or upload.filename or "attachment"
        key = str(uuid.uuid4())
        attachment = {
            "id": self._next_id("attachment"),
            "name": name,
            "size": len(data),
            "download_count": 0,
            "created_at": now(),
            "uuid": key,
            "browser_download_url": f"{self.url}/attachments/{key}",
        }
        self.attachments[key] = (attachment, data)
        comment["assets"].append(key)
        return 201, attachment

    def _h_download_attachment(self, request: Request, doer: None, key: str) -> Response:
        if key not in self.attachments:
            raise ApiError(404, "not found")
        return Response(self.attachments[key][1], content_type="application/octet-stream")

    def _h_permission(self, request: Request, doer: User, owner: str, repo: str, collaborator: str) -> dict:
        target = self._repo(owner, repo, doer)
        # repo/collaborators.go GetRepoPermissions: the access check comes before the user lookup.
        if not (
            doer.is_admin
            or doer.login.lower() == collaborator.lower()
            or self.level(target, doer.login) in ("admin", "owner")
        ):
            raise ApiError(
                403,
                "Only admins can query all permissions, repo admins can query all repo "
                "permissions, collaborators can query only their own",
            )
        if collaborator.lower() not in self.users:
            raise ApiError(404, f"user does not exist [uid: 0, name: {collaborator}]")
        level = self.level(target, collaborator)
        return {"permission": level, "role_name": level, "user": self.user_json(collaborator)}

    def _require_repo_admin(self, repo: Repo, doer: User) -> None:
        if self.level(repo, doer.login) not in ("admin", "owner"):
            raise ApiError(403, "", empty=True)

    def hook_json(self, hook: dict) -> dict:
        return {
            key: hook[key]
            for key in (
                "id",
                "type",
                "branch_filter",
                "events",
                "authorization_header",
                "active",
                "updated_at",
                "created_at",
            )
        } | {"config": {"content_type": hook["config"]["content_type"], "url": hook["config"]["url"]}}

    def _h_list_hooks(self, request: Request, doer: User, owner: str, repo: str) -> tuple:
        target = self._repo(owner, repo, doer)
        self._require_repo_admin(target, doer)
        page = max(request.args.get("page", 1, type=int) or 1, 1)
        limit = request.args.get("limit", DEFAULT_PAGE_LIMIT, type=int) or DEFAULT_PAGE_LIMIT
        limit = min(max(limit, 1), MAX_PAGE_LIMIT)
        return 200, [self.hook_json(h) for h in target.hooks[(page - 1) * limit : page * limit]], len(target.hooks)

    @staticmethod
    def _stored_events(events: list[str] | None) -> list[str]:
        if not events:
            return ["push"]  # an empty list means push only
        stored: list[str] = []
        for name in events:
            for event in HOOK_EVENT_EXPANSION.get(name, [name]):
                if event not in stored:
                    stored.append(event)
        return stored

    def _h_create_hook(self, request: Request, doer: User, owner: str, repo: str) -> tuple:
        target = self._repo(owner, repo, doer)
        self._require_repo_admin(target, doer)
        option = self._body(request)
        config = option.get("config") or {}
        if option.get("type") not in HOOK_TYPES:
            raise ApiError(422, "Invalid hook type")
        if not config.get("url") or config.get("content_type") not in ("json", "form"):
            raise ApiError(422, "Invalid content type")
        hook = {
            "id": self._next_id("hook"),
            "type": option["type"],
            "branch_filter": option.get("branch_filter", ""),
            "events": self._stored_events(option.get("events")),
            "authorization_header": option.get("authorization_header", ""),
            "active": bool(option.get("active", False)),  # CreateHookOption.active defaults to false
            "config": {
                "url": config["url"],
                "content_type": config["content_type"],
                "secret": config.get("secret", ""),
            },
            "created_at": now(),
            "updated_at": now(),
        }
        target.hooks.append(hook)
        return 201, self.hook_json(hook)

    def _h_edit_hook(self, request: Request, doer: User, owner: str, repo: str, hook_id: int) -> dict:
        target = self._repo(owner, repo, doer)
        self._require_repo_admin(target, doer)
        hook = next((h for h in target.hooks if h["id"] == hook_id), None)
        if hook is None:
            raise ApiError(404, "not found")
        option = self._body(request)
        config = option.get("config") or {}
        if "content_type" in config:
            if config["content_type"] not in ("json", "form"):
                raise ApiError(422, "Invalid content type")
            hook["config"]["content_type"] = config["content_type"]
        if config.get("url"):
            hook["config"]["url"] = config["url"]
        # PATCH replaces events, branch_filter and authorization_header (omitted events mean push).
        hook["events"] = self._stored_events(option.get("events"))
        hook["branch_filter"] = option.get("branch_filter", "")
        hook["authorization_header"] = option.get("authorization_header", "")
        if "active" in option:
            hook["active"] = bool(option["active"])
        hook["updated_at"] = now()
        return self.hook_json(hook)

    def _h_delete_hook(self, request: Request, doer: User, owner: str, repo: str, hook_id: int) -> Response:
        target = self._repo(owner, repo, doer)
        self._require_repo_admin(target, doer)
        hook = next((h for h in target.hooks if h["id"] == hook_id), None)
        if hook is None:
            raise ApiError(404, "not found")
        target.hooks.remove(hook)
        return Response(status=204)

    def _resolve(self, repo: Repo, ref: str | None) -> dict[str, bytes] | None:
        ref = ref or repo.default_branch
        sha = repo.refs.get(ref, ref)
        return repo.trees.get(sha)

    def _h_git_tree(self, request: Request, doer: User, owner: str, repo: str, sha: str) -> dict:
        target = self._repo(owner, repo, doer)
        files = self._resolve(target, sha)
        if files is None:
            raise ApiError(400, f"sha not found [{sha}]")
        resolved = target.refs.get(sha, sha)
        entries = _tree_entries(files, recursive=request.args.get("recursive", "") in ("true", "1"))
        per_page = request.args.get("per_page", 0, type=int) or 0
        if per_page <= 0 or per_page > self.git_trees_per_page:
            per_page = self.git_trees_per_page
        page = max(request.args.get("page", 1, type=int) or 1, 1)
        base = f"{self.api_url}/repos/{target.full_name}/git"
        tree = {
            "sha": resolved,
            "url": f"{base}/trees/{resolved}",
            "tree": [],
            "truncated": False,
            "page": page,
            "total_count": len(entries),
        }
        start = per_page * (page - 1)
        if start < len(entries):
            end = min(start + per_page, len(entries))
            tree["truncated"] = end < len(entries)
            tree["tree"] = [
                dict(entry, url=f"{base}/{'trees' if entry['type'] == 'tree' else 'blobs'}/{entry['sha']}")
                for entry in entries[start:end]
            ]
        return tree

    def _file(self, request: Request, doer: User, owner: str, repo: str, filepath: str) -> tuple[Repo, bytes]:
        target = self._repo(owner, repo, doer)
        files = self._resolve(target, request.args.get("ref"))
        if files is None or filepath not in files:
            raise ApiError(404, "not found")
        return target, files[filepath]

    def _h_raw(self, request: Request, doer: User, owner: str, repo: str, filepath: str) -> Response:
        _, data = self._file(request, doer, owner, repo, filepath)
        return Response(data, content_type="application/octet-stream")

    def _h_contents(self, request: Request, doer: User, owner: str, repo: str, filepath: str) -> dict:
        target, data = self._file(request, doer, owner, repo, filepath)
        ref = request.args.get("ref") or target.default_branch
        sha = git_blob_sha(data)
        api = f"{self.api_url}/repos/{target.full_name}"
        html = f"{self.url}/{target.full_name}/src/branch/{ref}/{filepath}"
        return {
            "name": filepath.rsplit("/", 1)[-1],
            "path": filepath,
            "sha": sha,
            "last_commit_sha": target.refs.get(ref, ref),
            "type": "file",
            "size": len(data),
            "encoding": "base64",
            "content": base64.b64encode(data).decode(),
            "target": None,
            "url": f"{api}/contents/{filepath}?ref={ref}",
            "html_url": html,
            "git_url": f"{api}/git/blobs/{sha}",
            "download_url": f"{self.url}/{target.full_name}/raw/branch/{ref}/{filepath}",
            "submodule_git_url": None,
            "_links": {"self": f"{api}/contents/{filepath}?ref={ref}", "git": f"{api}/git/blobs/{sha}", "html": html},
        }


def _tree_entries(files: dict[str, bytes], recursive: bool) -> list[dict]:
    """Entries like ``git ls-tree [-r -t]``: directories as ``tree`` entries, listed before their contents."""
    entries: dict[str, dict] = {}
    for path, data in files.items():
        parts = path.split("/")
        for depth in range(1, len(parts)):
            directory = "/".join(parts[:depth])
            if recursive or depth == 1:
                entries.setdefault(
                    directory,
                    {
                        "path": directory,
                        "mode": "040000",
                        "type": "tree",
                        "size": 0,
                        "sha": hashlib.sha1(directory.encode()).hexdigest(),
                    },
                )
        if recursive or len(parts) == 1:
            entries[path] = {
                "path": path,
                "mode": "100644",
                "type": "blob",
                "size": len(data),
                "sha": git_blob_sha(data),
            }
    return [entries[key] for key in sorted(entries)]
