"""The Gitea client the bot talks through, and its dry-run twin.

``GiteaClient`` is built on py-gitea 0.2.10's ``Gitea`` object and its ``requests`` session. py-gitea has no
request timeouts, swaps 401 and 403 (it raises ``Forbidden`` for 401) and lacks the comment, reaction, PR-diff,
permission, hook, tree and attachment endpoints. So every call here goes through one ``_request`` on that
session that adds a timeout, retries with exponential backoff and jitter on connection errors, timeouts, 5xx
and 429 (honouring ``Retry-After``), and maps statuses to our own errors. A timeout adapter is also mounted on
the session, so py-gitea's own methods (``client.api.get_user()`` …) cannot hang either.

``DryRunGitea`` has the same methods and writes what would be posted to ``outbox/`` as JSON files (and the log),
for running the service without a Gitea (``SSD_GITEA_URL`` unset).
"""

from __future__ import annotations

import email.utils
import itertools
import json
import logging
import os
import random
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests
from gitea import Gitea
from requests.adapters import HTTPAdapter

from core.config import PERMISSION_LEVELS, Settings
from core.markdown import split_for_comments, truncate_for_comment

log = logging.getLogger(__name__)

HOOK_EVENTS = ("pull_request_only", "issue_comment", "pull_request_comment")
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_AFTER = 120.0  # seconds; a longer Retry-After is capped rather than blocking a worker for hours
ADMIN_TOKEN_HINT = (
    "the Gitea token must belong to a site administrator or an admin of the repository: "
    "GET /repos/{owner}/{repo}/collaborators/{user}/permission answers 403 to anyone else "
    "(see SSD_GITEA_TOKEN in the README)"
)


class GiteaError(Exception):
    """A Gitea call failed. ``status`` is the HTTP status, 0 when no answer came (connection error/timeout)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"Gitea {status}: {message}" if status else f"Gitea unreachable: {message}")
        self.status = status
        self.message = message


class GiteaUnauthorized(GiteaError):
    """401: the token is missing, wrong or revoked."""


class GiteaForbidden(GiteaError):
    """403: the token is valid but may not do this."""


class GiteaNotFound(GiteaError):
    """404 (or the equivalent): the repository, issue, comment, file or ref does not exist or is hidden."""


def _error_for(status: int, message: str) -> GiteaError:
    kind = {401: GiteaUnauthorized, 403: GiteaForbidden, 404: GiteaNotFound}.get(status, GiteaError)
    return kind(status, message)


class _TimeoutAdapter(HTTPAdapter):
    """Gives every request on the session a default timeout (py-gitea passes none)."""

    def __init__(self, timeout: float, **kwargs: Any) -> None:
        self.timeout = timeout
        super().__init__(**kwargs)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        return super().send(request, **kwargs)


def _retry_after(response: requests.Response | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date), or None."""
    value = response.headers.get("Retry-After", "").strip() if response is not None else ""
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _message(response: requests.Response) -> str:
    """Gitea's ``{"message": …}`` when present; some 403/404 replies have an empty body."""
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if isinstance(payload, dict) and payload.get("message"):
        return str(payload["message"])
    return response.text.strip()[:300] or response.reason or "no message"


# ---- the client -------------------------------------------------------------------------------------------


class GiteaClient:
    """Gitea's REST API as the bot needs it. Methods follow ARCHITECTURE.md; ``index`` is an issue/PR number."""

    tree_page_size = 1000  # Gitea's [api] DEFAULT_GIT_TREES_PER_PAGE, also its maximum
    hook_page_size = 50  # [api] MAX_RESPONSE_ITEMS
    pull_page_size = 50  # [api] MAX_RESPONSE_ITEMS

    def __init__(
        self,
        base_url: str,
        token: str,
        timeout: float = 15.0,
        retries: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
    ) -> None:
        self.base_url = base_url.rstrip("/").removesuffix("/api/v1")
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.api = Gitea(self.base_url, token_text=token)
        self.session: requests.Session = self.api.requests
        # py-gitea keeps the token in its per-call headers; the session needs it for our own calls too. The
        # JSON Content-type it also keeps there would break multipart uploads, so it is not copied.
        self.session.headers["Authorization"] = self.api.headers["Authorization"]
        self.session.headers["Accept"] = "application/json"
        self.session.headers["User-Agent"] = "ssd-bot"
        adapter = _TimeoutAdapter(timeout)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self._login: str | None = None

    def __repr__(self) -> str:
        return f"GiteaClient({self.base_url!r})"

    # ---- transport ----

    def _delay(self, attempt: int, response: requests.Response | None) -> float:
        delay = min(self.max_backoff, self.backoff * 2**attempt) * random.uniform(0.5, 1.0)
        # 429 and 503 are the statuses RFC 9110 pairs with Retry-After (a proxy in front of Gitea sends them).
        after = _retry_after(response) if response is not None and response.status_code in (429, 503) else None
        if after is not None:
            delay = max(delay, min(after, MAX_RETRY_AFTER))
        return delay

    def _request(self, method: str, path: str, *, recover: Callable[[], Any] | None = None, **kwargs: Any) -> Any:
        """One API call with timeout, retries and error mapping; returns the ``requests.Response``.

        ``recover`` is for calls that are not idempotent: after a failure that may still have been applied
        (a timeout, a dropped connection, a 5xx) it is asked, before retrying, whether the effect is already
        there; whatever it returns other than None is returned instead of retrying.
        """
        url = f"{self.base_url}/api/v1{path}"
        kwargs.setdefault("timeout", self.timeout)
        for attempt in itertools.count():
            response: requests.Response | None = None
            try:
                response = self.session.request(method, url, **kwargs)
            except requests.ConnectTimeout as exc:
                failure, maybe_applied = f"connect timeout after {self.timeout}s ({exc.__class__.__name__})", False
            except requests.Timeout:
                failure, maybe_applied = f"no answer within {self.timeout}s", True
            except requests.ConnectionError as exc:
                failure, maybe_applied = f"connection error: {exc}", True
            else:
                if response.status_code < 400:
                    return response
                message = _message(response)
                if response.status_code not in RETRY_STATUSES:
                    raise _error_for(response.status_code, f"{method} {path}: {message}")
                failure, maybe_applied = f"{response.status_code} {message}", response.status_code != 429
            if attempt >= self.retries:
                status = response.status_code if response is not None else 0
                raise _error_for(status, f"{method} {path} failed after {attempt + 1} attempts: {failure}")
            if recover is not None and maybe_applied:
                recovered = recover()
                if recovered is not None:
                    log.info("gitea %s %s: %s, but it had been applied; not retrying", method, path, failure)
                    return recovered
            delay = self._delay(attempt, response)
            log.warning(
                "gitea %s %s: %s; retry %d/%d in %.2fs", method, path, failure, attempt + 1, self.retries, delay
            )
            time.sleep(delay)
        raise AssertionError("unreachable")

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._request(method, path, **kwargs)
        if not isinstance(response, requests.Response):
            return response  # a recovered result
        return response.json() if response.content else None

    @staticmethod
    def _repo_path(owner: str, repo: str) -> str:
        return f"/repos/{quote(owner, safe='')}/{quote(repo, safe='')}"

    # ---- identity ----

    def user(self) -> dict:
        """The token's user (``GET /user``); ``is_admin`` says whether it is a site administrator."""
        return self._json("GET", "/user")

    def whoami(self) -> str:
        """The bot's own login (``GET /user``), cached: the bot ignores comments by this account."""
        if self._login is None:
            self._login = self.user()["login"]
        return self._login

    def version(self) -> str:
        return self._json("GET", "/version")["version"]

    def get_user(self, login: str) -> dict:
        """``GET /users/{username}``; with an admin's token ``is_admin`` is the real site-admin flag."""
        return self._json("GET", f"/users/{quote(login, safe='')}")

    def permission(self, owner: str, repo: str, user: str) -> str:
        """The user's access level on the repo: none|read|write|admin|owner.

        Authoritative, unlike the ``sender``/``repository.permissions`` fields of a delivery. Gitea answers
        403 unless the token is a site admin, a repo admin or the user themself; that is a set-up error, so
        it raises ``GiteaForbidden`` saying what token is needed. An unknown user has no access: ``none``.
        """
        path = f"{self._repo_path(owner, repo)}/collaborators/{quote(user, safe='')}/permission"
        try:
            level = self._json("GET", path).get("permission", "none")
        except GiteaForbidden as exc:
            hint = ADMIN_TOKEN_HINT.format(owner=owner, repo=repo, user=user)
            raise GiteaForbidden(403, f"cannot read {user}'s permission on {owner}/{repo}: {hint}") from exc
        except GiteaNotFound:
            log.info("permission: %s not found on %s/%s; treating as none", user, owner, repo)
            return "none"
        if level not in PERMISSION_LEVELS:
            log.warning("permission: unexpected level %r for %s on %s/%s; treating as none", level, user, owner, repo)
            return "none"
        return level

    # ---- comments and reactions ----

    def list_comments(self, owner: str, repo: str, index: int) -> list[dict]:
        """All plain comments of an issue/PR, oldest first (this endpoint is not paginated)."""
        return self._json("GET", f"{self._repo_path(owner, repo)}/issues/{int(index)}/comments")

    def get_comment(self, owner: str, repo: str, comment_id: int) -> dict:
        return self._json("GET", f"{self._repo_path(owner, repo)}/issues/comments/{int(comment_id)}")

    def create_comment(self, owner: str, repo: str, index: int, body: str) -> dict:
        """Post a comment and return it. A body over ``core.markdown.COMMENT_LIMIT`` is posted as continuation
        comments; the first one is returned (the one to edit later).

        Gitea answers a comment on a missing index with 500, not 404; before retrying a failure the client
        lists the issue's comments, which turns that into ``GiteaNotFound`` and also finds a comment that was
        created although the answer was lost (so a retry never posts it twice).
        """
        parts = split_for_comments(body)
        first = self._post_comment(owner, repo, index, parts[0])
        for part in parts[1:]:
            self._post_comment(owner, repo, index, part)
        return first

    def _post_comment(self, owner: str, repo: str, index: int, body: str) -> dict:
        path = f"{self._repo_path(owner, repo)}/issues/{int(index)}/comments"
        started = datetime.now(UTC)

        def already_posted() -> dict | None:
            try:
                comments = self.list_comments(owner, repo, index)
                me = self.whoami()
            except GiteaNotFound:
                raise GiteaNotFound(404, f"{owner}/{repo}#{index} does not exist (cannot comment on it)") from None
            except GiteaError:
                return None  # cannot tell; the retry decides
            # Gitea's clock and ours differ; a window of two minutes is wide enough and narrow enough.
            for comment in reversed(comments):
                created = _parse_time(comment.get("created_at"))
                if (
                    comment.get("user", {}).get("login") == me
                    and comment.get("body") == body
                    and created is not None
                    and created >= started - timedelta(minutes=2)
                ):
                    return comment
            return None

        return self._json("POST", path, json={"body": body}, recover=already_posted)

    def edit_comment(self, owner: str, repo: str, comment_id: int, body: str) -> dict:
        """Replace a comment's body. An edit cannot add continuation comments (the status comment must stay
        one comment), so a body over the limit is truncated with a note."""
        path = f"{self._repo_path(owner, repo)}/issues/comments/{int(comment_id)}"
        return self._json("PATCH", path, json={"body": truncate_for_comment(body)})

    def add_reaction(self, owner: str, repo: str, comment_id: int, content: str = "eyes") -> dict:
        """React to a comment (201 new, 200 when it was already there: both fine, so retries are safe)."""
        path = f"{self._repo_path(owner, repo)}/issues/comments/{int(comment_id)}/reactions"
        return self._json("POST", path, json={"content": content})

    def upload_comment_attachment(
        self,
        owner: str,
        repo: str,
        comment_id: int,
        filename: str,
        data: bytes,
        content_type: str = "application/octet-stream",
    ) -> dict:
        """Attach a file to a comment; the answer's ``browser_download_url`` is the link to put in reports."""
        path = f"{self._repo_path(owner, repo)}/issues/comments/{int(comment_id)}/assets"
        return self._json("POST", path, params={"name": filename}, files={"attachment": (filename, data, content_type)})

    # ---- issues and pulls ----

    def get_issue(self, owner: str, repo: str, index: int) -> dict:
        return self._json("GET", f"{self._repo_path(owner, repo)}/issues/{int(index)}")

    def get_pull(self, owner: str, repo: str, index: int) -> dict:
        return self._json("GET", f"{self._repo_path(owner, repo)}/pulls/{int(index)}")

    def pull_diff(self, owner: str, repo: str, index: int) -> str:
        """``git diff merge_base...head`` of the PR; still served after the merge and branch deletion."""
        response = self._request("GET", f"{self._repo_path(owner, repo)}/pulls/{int(index)}.diff")
        return response.content.decode("utf-8", errors="replace")

    def list_pulls(self, owner: str, repo: str, state: str = "closed", sort: str | None = None) -> Iterator[dict]:
        """Every PR in ``state`` (open|closed|all), page by page (newest first unless ``sort="oldest"``);
        a generator, so a caller that has enough stops fetching."""
        params: dict[str, Any] = {"state": state, "limit": self.pull_page_size}
        if sort:
            params["sort"] = sort
        for page in itertools.count(1):
            batch = self._json("GET", f"{self._repo_path(owner, repo)}/pulls", params={**params, "page": page})
            yield from batch
            if len(batch) < self.pull_page_size:
                return

    def get_commit(self, owner: str, repo: str, sha: str) -> dict:
        """``GET /repos/{o}/{r}/git/commits/{sha}``: the commit with its ``parents``."""
        return self._json(
            "GET",
            f"{self._repo_path(owner, repo)}/git/commits/{quote(sha, safe='')}",
            params={"stat": "false", "verification": "false", "files": "false"},
        )

    def archive(self, owner: str, repo: str, ref: str, fmt: str = "tar.gz", max_bytes: int = 1 << 30) -> bytes:
        """``GET /repos/{o}/{r}/archive/{ref}.{fmt}``: the tree at ``ref`` (one top-level directory)."""
        if fmt not in ("tar.gz", "zip"):
            raise ValueError(f"archive format must be tar.gz or zip, got {fmt!r}")
        path = f"{self._repo_path(owner, repo)}/archive/{quote(ref, safe='')}.{fmt}"
        response = self._request("GET", path, stream=True)
        chunks, size = [], 0
        for chunk in response.iter_content(1 << 20):
            size += len(chunk)
            if size > max_bytes:
                response.close()
                raise GiteaError(response.status_code, f"GET {path}: archive over {max_bytes} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def clone(self, owner: str, repo: str, dest: Path) -> Path:
        """A bare mirror of the repository's ``clone_url`` at ``dest``, cloned once and fetched afterwards.

        The token travels as an HTTP header given to git through its environment (GIT_CONFIG_*), so it is in
        neither the command line (visible to every local user) nor the mirror's config on disk."""
        import subprocess

        clone_url = self.get_repo(owner, repo)["clone_url"]
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(dest.parent),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "http.extraHeader",
            "GIT_CONFIG_VALUE_0": f"Authorization: {self.session.headers['Authorization']}",
        }
        if (dest / "HEAD").is_file():
            argv = [
                "git",
                "--git-dir",
                str(dest),
                "fetch",
                "-q",
                "--prune",
                clone_url,
                "+refs/heads/*:refs/heads/*",
                "+refs/pull/*:refs/pull/*",
            ]
        else:
            dest.parent.mkdir(parents=True, exist_ok=True)
            argv = ["git", "clone", "-q", "--mirror", clone_url, str(dest)]
        result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=self.timeout * 40)
        if result.returncode != 0:
            raise GiteaError(0, f"git clone/fetch of {owner}/{repo} failed: {result.stderr.strip()[-300:]}")
        return dest

    # ---- repository ----

    def get_repo(self, owner: str, repo: str) -> dict:
        return self._json("GET", self._repo_path(owner, repo))

    def list_tree(self, owner: str, repo: str, ref: str) -> list[dict]:
        """Every entry (blobs and trees) under ``ref`` (branch, tag or sha), all pages of the recursive tree."""
        path = f"{self._repo_path(owner, repo)}/git/trees/{quote(ref, safe='')}"
        entries: list[dict] = []
        for page in itertools.count(1):
            try:
                tree = self._json(
                    "GET", path, params={"recursive": "true", "page": page, "per_page": self.tree_page_size}
                )
            except GiteaError as exc:
                if exc.status == 400:  # Gitea answers an unknown sha/ref with 400 "sha not found"
                    raise GiteaNotFound(404, f"{owner}/{repo}: ref {ref!r} not found") from exc
                raise
            batch = tree.get("tree") or []
            entries.extend(batch)
            # Older Gitea versions set ``truncated`` on every page of a long tree, so stop on the count too.
            if not tree.get("truncated") or not batch or len(entries) >= int(tree.get("total_count") or 0):
                return entries
        raise AssertionError("unreachable")

    def get_raw(self, owner: str, repo: str, path: str, ref: str) -> bytes:
        url = f"{self._repo_path(owner, repo)}/raw/{quote(path.lstrip('/'))}"
        return self._request("GET", url, params={"ref": ref}).content

    # ---- hooks ----

    def list_hooks(self, owner: str, repo: str) -> list[dict]:
        hooks: list[dict] = []
        for page in itertools.count(1):
            batch = self._json(
                "GET", f"{self._repo_path(owner, repo)}/hooks", params={"page": page, "limit": self.hook_page_size}
            )
            hooks.extend(batch)
            if len(batch) < self.hook_page_size:
                return hooks
        raise AssertionError("unreachable")

    def create_hook(self, owner: str, repo: str, url: str, secret: str, events: Iterable[str] = HOOK_EVENTS) -> dict:
        """A ``gitea`` hook posting JSON signed with ``secret``; ``active`` must be sent (it defaults to false)."""
        option = {
            "type": "gitea",
            "config": {"url": url, "content_type": "json", "secret": secret},
            "events": list(events),
            "branch_filter": "",
            "authorization_header": "",
            "active": True,
        }
        return self._json("POST", f"{self._repo_path(owner, repo)}/hooks", json=option)

    def update_hook(self, owner: str, repo: str, hook_id: int, url: str, events: Iterable[str] = HOOK_EVENTS) -> dict:
        """PATCH replaces events/branch filter/authorization header; Gitea cannot change a secret this way."""
        option = {
            "config": {"url": url, "content_type": "json"},
            "events": list(events),
            "branch_filter": "",
            "authorization_header": "",
            "active": True,
        }
        return self._json("PATCH", f"{self._repo_path(owner, repo)}/hooks/{int(hook_id)}", json=option)

    def delete_hook(self, owner: str, repo: str, hook_id: int) -> None:
        self._request("DELETE", f"{self._repo_path(owner, repo)}/hooks/{int(hook_id)}")


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# ---- dry run ----------------------------------------------------------------------------------------------


class DryRunGitea:
    """The client's methods without a Gitea: posts become JSON files in ``outbox_dir`` (and log lines).

    Reads answer what can be known offline: the bot is ``ssd-bot``; every commenter is trusted (``owner``,
    with a warning: there is nobody to ask); issues, PRs and repos are what ``remember()`` was given from a
    delivery's payload, else ``GiteaNotFound``.
    """

    login = "ssd-bot"

    def __init__(self, outbox_dir: Path | str) -> None:
        self.outbox_dir = Path(outbox_dir)
        self.outbox_dir.mkdir(parents=True, exist_ok=True)
        self._known: dict[tuple[str, str, str, Any], dict] = {}
        self._seq = itertools.count(1)
        self._last_id = 0

    def __repr__(self) -> str:
        return f"DryRunGitea({str(self.outbox_dir)!r})"

    def _new_id(self) -> int:
        # Unique across the web and worker processes sharing an outbox: milliseconds then the pid's last three
        # digits; strictly increasing within this process even when called twice in one millisecond.
        candidate = int(time.time() * 1000) * 1000 + os.getpid() % 1000
        if candidate <= self._last_id:
            candidate = self._last_id + 1000
        self._last_id = candidate
        return candidate

    def _write(self, action: str, record: dict) -> Path:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        path = self.outbox_dir / f"{stamp}-{os.getpid()}-{next(self._seq):04d}-{action}.json"
        record = {"action": action, "at": datetime.now(UTC).isoformat(), **record}
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        tmp.replace(path)  # readers never see half a file
        where = f"{record.get('owner')}/{record.get('repo')}"
        target = record.get("index", record.get("comment_id", ""))
        log.info("dry-run: would %s on %s %s -> %s", action, where, target, path.name)
        return path

    def remember(self, payload: dict) -> None:
        """Keep the repository, issue and pull request of a delivery payload for later reads."""
        repository = payload.get("repository") or {}
        full_name = repository.get("full_name") or ""
        if "/" not in full_name:
            return
        owner, repo = full_name.split("/", 1)
        self._known[("repo", owner, repo, None)] = repository
        issue = payload.get("issue")
        if isinstance(issue, dict) and "number" in issue:
            self._known[("issue", owner, repo, int(issue["number"]))] = issue
        pull = payload.get("pull_request")
        if isinstance(pull, dict) and "number" in pull:
            self._known[("pull", owner, repo, int(pull["number"]))] = pull

    def _recall(self, kind: str, owner: str, repo: str, key: Any = None) -> dict:
        try:
            return self._known[(kind, owner, repo, key)]
        except KeyError:
            what = f"{owner}/{repo}" + (f"#{key}" if key is not None else "")
            raise GiteaNotFound(404, f"dry-run: no Gitea configured to fetch {kind} {what}") from None

    def user(self) -> dict:
        return {"login": self.login, "username": self.login, "is_admin": False}

    def whoami(self) -> str:
        return self.login

    def version(self) -> str:
        return "dry-run"

    def get_user(self, login: str) -> dict:
        return {"login": login, "username": login, "is_admin": False}  # nobody is a site admin in a dry run

    def permission(self, owner: str, repo: str, user: str) -> str:
        log.warning(
            "dry-run: no Gitea to ask for %s's permission on %s/%s; trusting the commenter (owner)", user, owner, repo
        )
        return "owner"

    def list_comments(self, owner: str, repo: str, index: int) -> list[dict]:
        return []

    def get_comment(self, owner: str, repo: str, comment_id: int) -> dict:
        raise GiteaNotFound(404, f"dry-run: no Gitea configured to fetch comment {comment_id}")

    def _comment(self, owner: str, repo: str, index: int | None, comment_id: int, body: str, path: Path) -> dict:
        return {
            "id": comment_id,
            "body": body,
            "html_url": path.resolve().as_uri(),
            "issue_url": "",
            "pull_request_url": "",
            "user": {"login": self.login, "username": self.login},
            "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "assets": [],
            "index": index,
        }

    def create_comment(self, owner: str, repo: str, index: int, body: str) -> dict:
        comment_id = self._new_id()
        path = self._write(
            "create_comment",
            {"owner": owner, "repo": repo, "index": int(index), "comment_id": comment_id, "body": body},
        )
        return self._comment(owner, repo, int(index), comment_id, body, path)

    def edit_comment(self, owner: str, repo: str, comment_id: int, body: str) -> dict:
        path = self._write("edit_comment", {"owner": owner, "repo": repo, "comment_id": int(comment_id), "body": body})
        return self._comment(owner, repo, None, int(comment_id), body, path)

    def add_reaction(self, owner: str, repo: str, comment_id: int, content: str = "eyes") -> dict:
        self._write("add_reaction", {"owner": owner, "repo": repo, "comment_id": int(comment_id), "content": content})
        return {
            "user": {"login": self.login},
            "content": content,
            "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }

    def upload_comment_attachment(
        self,
        owner: str,
        repo: str,
        comment_id: int,
        filename: str,
        data: bytes,
        content_type: str = "application/octet-stream",
    ) -> dict:
        directory = self.outbox_dir / "attachments"
        directory.mkdir(exist_ok=True)
        target = directory / f"{self._new_id()}-{Path(filename).name}"
        target.write_bytes(data)
        self._write(
            "upload_comment_attachment",
            {
                "owner": owner,
                "repo": repo,
                "comment_id": int(comment_id),
                "filename": filename,
                "content_type": content_type,
                "size": len(data),
                "stored_at": str(target),
            },
        )
        return {
            "id": self._new_id(),
            "name": filename,
            "size": len(data),
            "download_count": 0,
            "uuid": target.name,
            "browser_download_url": target.resolve().as_uri(),
        }

    def get_issue(self, owner: str, repo: str, index: int) -> dict:
        return self._recall("issue", owner, repo, int(index))

    def get_pull(self, owner: str, repo: str, index: int) -> dict:
        return self._recall("pull", owner, repo, int(index))

    def pull_diff(self, owner: str, repo: str, index: int) -> str:
        raise GiteaNotFound(404, f"dry-run: no Gitea configured to fetch the diff of {owner}/{repo}!{index}")

    def get_repo(self, owner: str, repo: str) -> dict:
        return self._recall("repo", owner, repo)

    def list_pulls(self, owner: str, repo: str, state: str = "closed", sort: str | None = None) -> Iterator[dict]:
        raise GiteaNotFound(404, f"dry-run: no Gitea configured to list the pull requests of {owner}/{repo}")

    def get_commit(self, owner: str, repo: str, sha: str) -> dict:
        raise GiteaNotFound(404, f"dry-run: no Gitea configured to read {owner}/{repo}@{sha}")

    def archive(self, owner: str, repo: str, ref: str, fmt: str = "tar.gz", max_bytes: int = 1 << 30) -> bytes:
        raise GiteaNotFound(404, f"dry-run: no Gitea configured to download {owner}/{repo}@{ref}")

    def clone(self, owner: str, repo: str, dest: Path) -> Path:
        raise GiteaNotFound(404, f"dry-run: no Gitea configured to clone {owner}/{repo}")

    def list_tree(self, owner: str, repo: str, ref: str) -> list[dict]:
        raise GiteaNotFound(404, f"dry-run: no Gitea configured to list {owner}/{repo} at {ref}")

    def get_raw(self, owner: str, repo: str, path: str, ref: str) -> bytes:
        raise GiteaNotFound(404, f"dry-run: no Gitea configured to read {owner}/{repo}:{path} at {ref}")

    def list_hooks(self, owner: str, repo: str) -> list[dict]:
        return []

    def create_hook(self, owner: str, repo: str, url: str, secret: str, events: Iterable[str] = HOOK_EVENTS) -> dict:
        hook_id = self._new_id()
        # The secret stays out of the outbox file: it is a credential.
        self._write(
            "create_hook",
            {
                "owner": owner,
                "repo": repo,
                "hook_id": hook_id,
                "url": url,
                "events": list(events),
                "secret_set": bool(secret),
            },
        )
        return {
            "id": hook_id,
            "type": "gitea",
            "config": {"url": url, "content_type": "json"},
            "events": list(events),
            "active": True,
        }

    def update_hook(self, owner: str, repo: str, hook_id: int, url: str, events: Iterable[str] = HOOK_EVENTS) -> dict:
        self._write(
            "update_hook", {"owner": owner, "repo": repo, "hook_id": int(hook_id), "url": url, "events": list(events)}
        )
        return {
            "id": int(hook_id),
            "type": "gitea",
            "config": {"url": url, "content_type": "json"},
            "events": list(events),
            "active": True,
        }

    def delete_hook(self, owner: str, repo: str, hook_id: int) -> None:
        self._write("delete_hook", {"owner": owner, "repo": repo, "hook_id": int(hook_id)})


def gitea_from_settings(settings: Settings) -> GiteaClient | DryRunGitea:
    """The real client when ``SSD_GITEA_URL`` is set, else the dry-run outbox."""
    if settings.dry_run:
        return DryRunGitea(settings.outbox_dir)
    assert settings.gitea_token  # Settings.from_env requires it with a URL
    return GiteaClient(
        settings.gitea_url or "", settings.gitea_token, timeout=settings.gitea_timeout, retries=settings.gitea_retries
    )
