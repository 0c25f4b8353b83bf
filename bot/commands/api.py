"""The API a command handler is written against: ``CommandContext``, the ``GiteaAPI`` it talks through,
and the ``Handler`` signature. It lives with the commands (Prow's ``plugins.go`` pattern); the dispatcher
(``bot.jobs``) builds a context and calls the handler, nothing more.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import redis as redis_lib
from rq.job import Job

from bot.status import StatusComment
from core.config import Settings

log = logging.getLogger(__name__)


@runtime_checkable
class GiteaAPI(Protocol):
    """What handlers may ask of Gitea. ``bot.gitea.GiteaClient`` (HTTP) and ``bot.gitea.DryRunGitea`` (the
    outbox) both satisfy it; ``tests/test_commands_api.py`` checks that their signatures match."""

    def whoami(self) -> str: ...
    def permission(self, owner: str, repo: str, user: str) -> str: ...
    def create_comment(self, owner: str, repo: str, index: int, body: str) -> dict: ...
    def edit_comment(self, owner: str, repo: str, comment_id: int, body: str) -> dict: ...
    def add_reaction(self, owner: str, repo: str, comment_id: int, content: str = "eyes") -> dict: ...
    def upload_comment_attachment(
        self,
        owner: str,
        repo: str,
        comment_id: int,
        filename: str,
        data: bytes,
        content_type: str = "application/octet-stream",
    ) -> dict: ...
    def get_issue(self, owner: str, repo: str, index: int) -> dict: ...
    def get_pull(self, owner: str, repo: str, index: int) -> dict: ...
    def pull_diff(self, owner: str, repo: str, index: int) -> str: ...
    def get_repo(self, owner: str, repo: str) -> dict: ...
    def list_tree(self, owner: str, repo: str, ref: str) -> list[dict]: ...
    def get_raw(self, owner: str, repo: str, path: str, ref: str) -> bytes: ...
    def list_pulls(self, owner: str, repo: str, state: str = "closed", sort: str | None = None) -> Iterator[dict]: ...
    def get_commit(self, owner: str, repo: str, sha: str) -> dict: ...
    def archive(self, owner: str, repo: str, ref: str, fmt: str = "tar.gz", max_bytes: int = 1 << 30) -> bytes: ...
    def clone(self, owner: str, repo: str, dest: Path) -> Path: ...


def cancel_key(job_id: str) -> str:
    """Set by ``/ssd cancel``; handlers that run long poll it (``ctx.cancelled()``)."""
    return f"ssd:cancelled:{job_id}"


@dataclass
class CommandContext:
    """What a handler gets: where it was asked, by whom, and ways to talk back."""

    gitea: GiteaAPI
    settings: Settings
    owner: str
    repo: str
    index: int
    user: str
    command: str
    job_id: str
    redis: redis_lib.Redis
    status: StatusComment | None = None
    job: Job | None = None
    issue_url: str = ""
    _last_edit: float = field(default=0.0, repr=False)

    def progress(self, fraction: float, message: str = "") -> None:
        """Record progress in the job (always) and in the status comment (at most every
        ``settings.status_edit_interval`` seconds, so a chatty handler cannot flood Gitea)."""
        fraction = min(1.0, max(0.0, float(fraction)))
        if self.job is not None:
            self.job.meta.update(progress=fraction, message=message)
            self.job.save_meta()
        now = time.monotonic()
        if self.status is None or now - self._last_edit < self.settings.status_edit_interval:
            return
        if self.cancelled():
            return  # cancelled: the comment already says so
        self._last_edit = now
        try:
            self.status.running(fraction, message)
        except Exception:  # a progress edit is best effort; the final edit is not
            log.warning("job %s: progress edit failed", self.job_id, exc_info=True)

    def cancelled(self) -> bool:
        """Whether ``/ssd cancel`` asked this job to stop."""
        return bool(self.redis.exists(cancel_key(self.job_id)))

    def attach(self, filename: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        """Upload a file (a plot) to the status comment; returns its download URL for the report."""
        if self.status is None:
            raise RuntimeError("no status comment to attach to")
        uploaded = self.gitea.upload_comment_attachment(
            self.owner, self.repo, self.status.comment_id, filename, data, content_type
        )
        return uploaded["browser_download_url"]


# A handler: (context, validated arguments) -> the Markdown report for the status comment.
Handler = Callable[[CommandContext, dict[str, Any]], str]
