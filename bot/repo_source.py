"""``RepoSource`` (``pipeline/repo_suite/source.py``) on Gitea: merged PRs, their diffs, code at a commit.

Problem statements use the same closing-keyword grammar and linked-issue fetch as the training buffer
(``bot.closing``, ``bot.ingest``), so an instance's text is exactly what training would have seen for that PR.
The code at a commit comes from ``GET /repos/{o}/{r}/archive/{sha}.tar.gz`` (``fetch="archive"``, the
default) or from ``git archive`` of a bare mirror of ``clone_url`` (``fetch="clone"``: one clone, then
incremental fetches, better for many commits of a large repository). Callers cache archives per commit
(``pipeline.repo_suite.workspace.RepoCache``).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

from bot.closing import closed_issues
from bot.ingest import _linked_issues, _root_url, build_prompt
from core.config import Settings
from pipeline.repo_suite.build import BuildReport, Candidate, build_instances
from pipeline.repo_suite.environment import EnvironmentCache
from pipeline.repo_suite.source import MergedPull
from pipeline.repo_suite.workspace import RepoCache

FETCH_MODES = ("archive", "clone")


class GiteaRepoSource:
    def __init__(self, gitea: Any, repo: str, *, fetch: str = "archive", mirror_dir: Path | None = None) -> None:
        if fetch not in FETCH_MODES:
            raise ValueError(f"fetch must be one of {', '.join(FETCH_MODES)}, got {fetch!r}")
        if fetch == "clone" and mirror_dir is None:
            raise ValueError("fetch='clone' needs a mirror directory")
        self.gitea = gitea
        self.repo = repo
        self.owner, self.name = repo.split("/", 1)
        self.fetch = fetch
        self.mirror_dir = mirror_dir
        self._root_url: str | None = None

    def _root(self) -> str | None:
        if self._root_url is None:
            self._root_url = _root_url(self.gitea.get_repo(self.owner, self.name)) or ""
        return self._root_url or None

    def merged_pulls(self, since: str | None = None, limit: int | None = None) -> list[MergedPull]:
        """The most recently created merged PRs (up to ``limit``, merged on or after ``since``), oldest merge first."""
        found: list[dict] = []
        for pull in self.gitea.list_pulls(self.owner, self.name, state="closed"):
            if not pull.get("merged") or not pull.get("merge_commit_sha"):
                continue
            if since and (pull.get("merged_at") or "") < since:
                continue
            found.append(pull)
            if limit and len(found) >= limit:
                break
        found.sort(key=lambda p: (p.get("merged_at") or "", p["number"]))
        return [self._merged_pull(pull) for pull in found]

    def _merged_pull(self, pull: dict) -> MergedPull:
        refs = closed_issues(
            pull.get("title") or "", pull.get("body") or "", self.repo, pr_number=pull["number"], root_url=self._root()
        )
        linked = _linked_issues(self.gitea, refs, self.repo)
        return MergedPull(
            number=int(pull["number"]),
            title=pull.get("title") or "",
            body=pull.get("body") or "",
            merge_commit_sha=pull["merge_commit_sha"],
            merge_base=pull.get("merge_base") or None,
            merged_at=pull.get("merged_at") or "",
            issue_numbers=[ref.index for ref, _ in linked if ref.repo(self.repo) == self.repo.lower()],
            problem_statement=build_prompt([issue for _, issue in linked], pull),
        )

    def pull_diff(self, number: int) -> str:
        return self.gitea.pull_diff(self.owner, self.name, number)

    def first_parent(self, commit: str) -> str:
        parents = self.gitea.get_commit(self.owner, self.name, commit).get("parents") or []
        if not parents:
            raise ValueError(f"{self.repo}@{commit[:12]} has no parent commit")
        return parents[0]["sha"]

    def archive(self, commit: str) -> bytes:
        if not re.fullmatch(r"[0-9a-f]{7,64}", commit):
            raise ValueError(f"{commit!r} is not a commit sha")
        if self.fetch == "archive":
            return self.gitea.archive(self.owner, self.name, commit)
        mirror = self._mirror_for(commit)
        made = subprocess.run(
            ["git", "--git-dir", str(mirror), "archive", "--format=tar.gz", f"--prefix={self.name}/", commit, "--"],
            capture_output=True,
        )
        if made.returncode != 0:
            raise ValueError(f"{self.repo}@{commit[:12]}: {made.stderr.decode(errors='replace').strip()[:300]}")
        return made.stdout

    def _mirror_for(self, commit: str) -> Path:
        """The mirror, fetched again when it does not have ``commit`` yet (new merges since the clone)."""
        assert self.mirror_dir is not None
        mirror = self.mirror_dir / f"{self.owner}__{self.name}.git"
        if (mirror / "HEAD").is_file() and subprocess.run(
            ["git", "--git-dir", str(mirror), "cat-file", "-e", f"{commit}^{{commit}}"], capture_output=True
        ).returncode == 0:
            return mirror
        return self.gitea.clone(self.owner, self.name, mirror)


def buffer_candidates(examples: list[Any]) -> list[Candidate]:
    """Training-buffer examples as build candidates: their stored prompt and diff; the base commit is then
    the merge commit's first parent (the buffer does not keep the merge base)."""
    return [
        Candidate(
            MergedPull(
                number=example.pr_number,
                title="",
                body="",
                merge_commit_sha=example.merge_sha,
                merge_base=None,
                merged_at=example.merged_at,
                issue_numbers=list(example.issue_numbers),
                problem_statement=example.prompt,
            ),
            diff=example.answer,
        )
        for example in sorted(examples, key=lambda e: (e.merged_at, e.pr_number))
    ]


def build_repo_suite(
    gitea: Any,
    repo: str,
    settings: Settings,
    *,
    since: str | None = None,
    limit: int | None = None,
    examples: list[Any] | None = None,
    overrides: dict[str, Any] | None = None,
    reruns: int = 2,
    progress: Any = None,
) -> BuildReport:
    """Build the instances of ``repo`` with the service's caches; ``examples`` (buffer rows) replace the
    listing of merged PRs on Gitea when given."""
    root = settings.repo_cache_dir
    source = GiteaRepoSource(gitea, repo, fetch=settings.repo_fetch, mirror_dir=root / "mirrors")
    candidates = None
    if examples is not None:
        candidates = buffer_candidates([e for e in examples if e.repo.lower() == repo.lower()])
        if since:
            candidates = [c for c in candidates if c.pull.merged_at >= since]
        if limit:
            candidates = candidates[-limit:]
    overrides = {"timeout_s": settings.repo_test_timeout, **(overrides or {})}
    return build_instances(
        source,
        RepoCache(root),
        EnvironmentCache(root / "envs"),
        candidates=candidates,
        since=since,
        limit=limit,
        overrides=overrides,
        reruns=reruns,
        progress=progress,
        allow_unsafe=settings.unsafe_execution,
    )
