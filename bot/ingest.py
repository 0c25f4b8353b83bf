"""Merged PRs -> training buffer examples.

A ``pull_request`` delivery with ``action: closed`` and ``pull_request.merged: true`` becomes one example:
prompt = the title and body of the issues the PR closes (found with Gitea's own closing-keyword grammar,
``bot.closing``), or the PR's own title and body when it closes none; answer = the merged diff from
``GET /repos/{o}/{r}/pulls/{n}.diff``. The buffer's unique (repo, pr_number, merge_sha) key makes a
redelivery (Gitea's "Replay" has a new delivery id) a no-op; it is checked first, so a replay costs no
Gitea calls either.

The bot reads issues with an admin's token, which sees everything. A reference is only followed when the
PR's own readers could read the issue too: the PR's own repository, or another repository that is neither
private nor internal. Otherwise "Fixes other-org/private#3" in a public PR would copy a private issue into
the buffer (and into every model trained on it). Each PR that is not ingested is logged with the reason.
"""

from __future__ import annotations

import logging
from typing import Any

from bot.closing import IssueRef, closed_issues
from bot.gitea import GiteaNotFound
from pipeline.buffer import Example, TrainingBuffer

log = logging.getLogger(__name__)

# A diff larger than this is a vendored dependency or generated code, not a worked example; storing it
# would bloat the buffer and every training run that reads it.
MAX_DIFF_BYTES = 2 * 1024 * 1024


def _root_url(repository: dict) -> str | None:
    """Gitea's ROOT_URL, from ``repository.html_url`` = ROOT_URL + full_name (needed to read issue URLs)."""
    html_url, full_name = repository.get("html_url") or "", repository.get("full_name") or ""
    if full_name and html_url.endswith("/" + full_name):
        return html_url[: -len(full_name)]
    return None


def _text(title: str | None, body: str | None) -> str:
    return "\n\n".join(part.strip() for part in (title or "", body or "") if part and part.strip())


def build_prompt(issues: list[dict], pull: dict) -> str:
    """The linked issues' title + body (several joined by a blank line), else the PR's title + body."""
    if issues:
        return "\n\n".join(_text(issue.get("title"), issue.get("body")) for issue in issues)
    return _text(pull.get("title"), pull.get("body"))


def _readable_by_all(gitea: Any, full_name: str, cache: dict[str, bool]) -> bool:
    """Whether a repository other than the PR's is public (not private, not internal); unknown means no."""
    if full_name not in cache:
        owner, name = full_name.split("/", 1)
        try:
            info = gitea.get_repo(owner, name)
            cache[full_name] = not info.get("private", True) and not info.get("internal", True)
        except GiteaNotFound:
            cache[full_name] = False
    return cache[full_name]


def _linked_issues(gitea: Any, refs: list[IssueRef], repo: str) -> list[tuple[IssueRef, dict]]:
    """Fetch each referenced index the PR's readers could read; keep real issues (Gitea never closes a PR
    through a keyword)."""
    found = []
    public: dict[str, bool] = {}
    for ref in refs:
        owner, name = ref.repo(repo).split("/", 1)
        if ref.repo(repo) != repo.lower() and not _readable_by_all(gitea, ref.repo(repo), public):
            log.info(
                "ingest: %s#%d is in a private or internal repository (or a missing one); not followed from a PR of %s",
                ref.repo(repo),
                ref.index,
                repo,
            )
            continue
        try:
            issue = gitea.get_issue(owner, name, ref.index)
        except GiteaNotFound:
            log.info(
                "ingest: %s#%d is referenced but does not exist (or is hidden); skipped", ref.repo(repo), ref.index
            )
            continue
        if issue.get("pull_request"):
            log.info("ingest: %s#%d is a pull request, not an issue; skipped", ref.repo(repo), ref.index)
            continue
        found.append((ref, issue))
    return found


def ingest_merged_pr(delivery: Any, gitea: Any = None, buffer: TrainingBuffer | None = None) -> dict[str, Any]:
    """Store one buffer example for a merged-PR delivery; returns what happened (for logs, tests, metrics).

    ``delivery`` is a ``core.inbox.Delivery`` (or just its payload dict). ``gitea`` and ``buffer``
    default to the process's client and a buffer on the configured database (``bot.context``).
    Closed-unmerged PRs are ignored. Gitea failures that survive the client's retries raise, so the RQ job
    fails visibly and can be retried; a PR whose diff is gone is skipped with a reason.
    """
    summary = _ingest(delivery, gitea, buffer)
    if not summary["added"]:
        log.info("ingest %s!%s: not ingested: %s", summary["repo"] or "?", summary["pr"], summary.get("reason"))
    return summary


def _ingest(delivery: Any, gitea: Any, buffer: TrainingBuffer | None) -> dict[str, Any]:
    payload = delivery.payload if hasattr(delivery, "payload") else delivery
    delivery_id = getattr(delivery, "delivery_id", None) or ""
    pull = payload.get("pull_request") or {}
    repository = payload.get("repository") or {}
    repo = repository.get("full_name") or ""
    number = int(payload.get("number") or pull.get("number") or 0)
    summary: dict[str, Any] = {"repo": repo, "pr": number, "added": False}
    if payload.get("action") != "closed" or not pull.get("merged"):
        return summary | {"reason": "not a merge (closed without merging, or another action)"}
    # In the merge delivery base.sha is the merge commit too; merge_commit_sha is the documented field.
    merge_sha = pull.get("merge_commit_sha") or (pull.get("base") or {}).get("sha") or ""
    if "/" not in repo or number <= 0 or not merge_sha:
        return summary | {"reason": "payload lacks repository.full_name, number or merge_commit_sha"}
    summary["merge_sha"] = merge_sha

    if gitea is None or buffer is None:
        from bot import context

        gitea = gitea if gitea is not None else context.gitea()
        if buffer is None:
            buffer = TrainingBuffer(context.engine(), window=context.settings().buffer_size)
    if buffer.get(repo, number, merge_sha) is not None:
        return summary | {"reason": "already in the buffer (redelivery)"}

    owner, name = repo.split("/", 1)
    try:
        diff = gitea.pull_diff(owner, name, number)
    except GiteaNotFound as exc:
        return summary | {"reason": f"diff unavailable: {exc.message}"}
    if not diff.strip():
        return summary | {"reason": "empty diff"}
    if len(diff.encode("utf-8")) > MAX_DIFF_BYTES:
        return summary | {"reason": f"diff over {MAX_DIFF_BYTES} bytes"}

    refs = closed_issues(
        pull.get("title") or "", pull.get("body") or "", repo, pr_number=number, root_url=_root_url(repository)
    )
    linked = _linked_issues(gitea, refs, repo)
    example = Example(
        repo=repo,
        pr_number=number,
        merge_sha=merge_sha,
        prompt=build_prompt([issue for _, issue in linked], pull),
        answer=diff,
        # Numbers only mean something within the PR's repo; cross-repo issues still shape the prompt.
        issue_numbers=[ref.index for ref, _ in linked if ref.repo(repo) == repo.lower()],
        merged_by=((pull.get("merged_by") or {}).get("login") or (payload.get("sender") or {}).get("login") or ""),
        merged_at=pull.get("merged_at") or "",
        delivery_id=delivery_id,
    )
    added = buffer.add(example)
    summary.update(
        added=added,
        issues=[f"{ref.repo(repo)}#{ref.index}" for ref, _ in linked],
        prompt_from="issues" if linked else "pull request",
    )
    if not added:
        summary["reason"] = "already in the buffer (redelivery)"
    else:
        log.info("ingest %s!%d (%s): %s", repo, number, merge_sha[:10], summary)
    return summary
