"""A Gitea repository at a ref as audit input: the same ``SourceFile`` objects the local walker yields.

The tree comes from the recursive git-trees API (paginated by the client), file bytes from the raw
endpoint, one request per candidate file, so the same caps as for a local directory bound the requests.
Symlinks are listed by git with mode 120000; their "content" is the link target, so they are skipped,
never followed. Submodules (160000) point at another repository and are skipped too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

from bot.gitea import GiteaError
from pipeline.audit.sources import Budget, Limits, ScanStats, SourceFile

_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")


class GiteaTree:
    """One repo at one ref. ``ref`` None means the default branch (read from the repo)."""

    def __init__(self, gitea: Any, owner: str, repo: str, ref: str | None = None) -> None:
        self.gitea, self.owner, self.repo = gitea, owner, repo
        info = gitea.get_repo(owner, repo)
        self.html_url = str(info.get("html_url") or "").rstrip("/")
        self.ref = ref or info.get("default_branch") or "main"
        self.entries = gitea.list_tree(owner, repo, self.ref)

    @property
    def source(self) -> dict:
        return {
            "kind": "gitea",
            "repo": f"{self.owner}/{self.repo}",
            "ref": self.ref,
            "html_url": self.html_url,
            "sha": self.ref if _SHA.match(self.ref) else None,
        }

    def link(self, path: str, line: int) -> str:
        """The line on Gitea: ``/src/commit/{sha}/…`` for a commit, ``/src/branch/{ref}/…`` otherwise."""
        kind = "commit" if _SHA.match(self.ref) else "branch"
        return f"{self.html_url}/src/{kind}/{quote(self.ref, safe='/')}/{quote(path)}#L{line}"

    def files(
        self,
        limits: Limits | None = None,
        stats: ScanStats | None = None,
        progress: Callable[[float, str], None] | None = None,
    ) -> Iterator[SourceFile]:
        stats = stats if stats is not None else ScanStats()
        budget = Budget(limits or Limits(), stats)
        blobs = sorted((e for e in self.entries if e.get("type") != "tree"), key=lambda e: e.get("path", ""))
        for number, entry in enumerate(blobs, start=1):
            path, mode = str(entry.get("path", "")), str(entry.get("mode", ""))
            if mode == "120000":
                stats.seen += 1
                stats.skip("symlink (not followed)")
                continue
            if mode == "160000" or entry.get("type") == "commit":
                stats.seen += 1
                stats.skip("submodule")
                continue
            if not budget.admit(path, entry.get("size")):
                continue
            try:
                data = self.gitea.get_raw(self.owner, self.repo, path, self.ref)
            except GiteaError:
                stats.skip("unreadable")
                continue
            if progress and number % 25 == 0:
                progress(number / len(blobs), f"read {number}/{len(blobs)} files")
            if budget.record(data):
                yield SourceFile(path, data)
