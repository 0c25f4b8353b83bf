"""Where a repository's merged PRs and code come from: a small protocol the builder depends on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class MergedPull:
    """One merged pull request, as much as the builder needs of it."""

    number: int
    title: str
    body: str
    merge_commit_sha: str
    merge_base: str | None  # None when the server did not say (an all-zero sha counts as unknown)
    merged_at: str = ""
    issue_numbers: list[int] = field(default_factory=list)  # issues it closes (same repository)
    problem_statement: str = ""  # the linked issues' text, or the PR's own title and body


class RepoSource(Protocol):
    """One repository on a forge. ``repo`` is ``owner/name``."""

    repo: str

    def merged_pulls(self, since: str | None = None, limit: int | None = None) -> list[MergedPull]:
        """Merged PRs, oldest merge first; ``since`` (ISO date) keeps those merged on or after it."""
        ...

    def pull_diff(self, number: int) -> str:
        """The PR's merged diff (``git diff merge_base...head``)."""
        ...

    def first_parent(self, commit: str) -> str:
        """The first parent of ``commit`` (the fallback base of a merge commit)."""
        ...

    def archive(self, commit: str) -> bytes:
        """A ``.tar.gz`` of the tree at ``commit`` (one top-level directory, as forges make them)."""
        ...
