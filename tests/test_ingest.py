"""Merged-PR ingestion against the Gitea stand-in over real HTTP, into a real buffer (SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid

import pytest

from bot import context
from bot.gitea import GiteaError
from bot.ingest import MAX_DIFF_BYTES, build_prompt, ingest_merged_pr
from core.config import Settings
from core.db import engine_for
from core.inbox import Delivery
from pipeline.buffer import TrainingBuffer
from tests.conftest_gitea import REPO
from tests.deliveries import GITEA_URL, merged_pr_payload

DIFF = (
    "diff --git a/widgets/layout.py b/widgets/layout.py\n--- a/widgets/layout.py\n+++ b/widgets/layout.py\n"
    "@@ -1,2 +1,2 @@\n-width = parent.width + 1\n+width = min(parent.width, limit)\n"
)


@pytest.fixture
def buffer(tmp_path) -> TrainingBuffer:
    return TrainingBuffer(engine_for(f"sqlite:///{tmp_path / 'buffer.db'}"), window=50)


def merge_delivery(pull: dict, *, merged: bool = True, delivery_id: str | None = None, **kwargs) -> Delivery:
    payload = merged_pr_payload(
        number=pull["number"],
        title=pull["title"],
        body=pull["body"],
        merged=merged,
        merge_commit_sha=pull["pull"]["merge_commit_sha"] or "f" * 40,
        **kwargs,
    )
    return Delivery(
        id=1,
        delivery_id=delivery_id or str(uuid.uuid4()),
        event="pull_request",
        event_type="pull_request",
        action="closed",
        payload=payload,
    )


def test_merged_pr_with_linked_issue(gitea, gitea_client, database_url):
    buffer = TrainingBuffer(engine_for(database_url), window=50)
    issue = gitea.add_issue(REPO, "Widgets overflow on resize", "Resizing spills widgets out.")
    pull = gitea.add_pull(
        REPO, "Clamp widget width", f"Fixes #{issue['number']}\n\nClamps it.", diff=DIFF, merged=True, merged_by="alice"
    )
    delivery = merge_delivery(pull, merged_by="alice", delivery_id="d-1")
    summary = ingest_merged_pr(delivery, gitea_client, buffer)
    assert summary["added"] is True and summary["issues"] == [f"acme/widgets#{issue['number']}"]
    [example] = buffer.active()
    assert example.prompt == "Widgets overflow on resize\n\nResizing spills widgets out."
    assert example.answer == DIFF
    assert (example.repo, example.pr_number) == ("acme/widgets", pull["number"])
    assert example.merge_sha == pull["pull"]["merge_commit_sha"]
    assert example.issue_numbers == [issue["number"]]
    assert example.merged_by == "alice" and example.merged_at == delivery.payload["pull_request"]["merged_at"]
    assert example.delivery_id == "d-1"
    assert [r.api_path for r in gitea.requests] == [
        f"/repos/acme/widgets/pulls/{pull['number']}.diff",
        f"/repos/acme/widgets/issues/{issue['number']}",
    ]


def test_several_issues_and_cross_repo(gitea, gitea_client, buffer):
    gitea.add_repo("acme/lib")
    first = gitea.add_issue(REPO, "First bug", "one")
    second = gitea.add_issue(REPO, "Second bug", "two")
    other = gitea.add_issue("acme/lib", "Library bug", "three")
    body = (
        f"Fixes #{first['number']}, fixes #{second['number']} and resolves acme/lib#{other['number']}.\n"
        f"```\nfixes #99\n```"
    )
    pull = gitea.add_pull(REPO, "Fix bugs", body, diff=DIFF, merged=True)
    summary = ingest_merged_pr(merge_delivery(pull), gitea_client, buffer)
    assert summary["issues"] == ["acme/widgets#1", "acme/widgets#2", "acme/lib#1"]
    [example] = buffer.active()
    assert example.prompt == "First bug\n\none\n\nSecond bug\n\ntwo\n\nLibrary bug\n\nthree"
    assert example.issue_numbers == [first["number"], second["number"]]
    assert not gitea.calls("GET", "/issues/99")  # code blocks never link


def test_issue_url_in_title(gitea, gitea_client, buffer):
    issue = gitea.add_issue(REPO, "Crash", "boom")
    # tests.deliveries builds repository.html_url on GITEA_URL, so that is the ROOT_URL the grammar uses.
    pull = gitea.add_pull(REPO, f"Fixes {GITEA_URL}/acme/widgets/issues/{issue['number']}", "", diff=DIFF, merged=True)
    assert ingest_merged_pr(merge_delivery(pull), gitea_client, buffer)["issues"] == ["acme/widgets#1"]
    assert buffer.active()[0].prompt == "Crash\n\nboom"


def test_fallback_to_the_pr_text(gitea, gitea_client, buffer):
    gitea.add_issue(REPO, "Unrelated", "x")
    pull = gitea.add_pull(
        REPO, "Speed up layout", "See #1 for context; fixes  #1 (two spaces).", diff=DIFF, merged=True
    )
    summary = ingest_merged_pr(merge_delivery(pull), gitea_client, buffer)
    assert summary["added"] and summary["prompt_from"] == "pull request" and summary["issues"] == []
    [example] = buffer.active()
    assert example.prompt == "Speed up layout\n\nSee #1 for context; fixes  #1 (two spaces)."
    assert example.issue_numbers == []


def test_referenced_pr_and_missing_issue_are_skipped(gitea, gitea_client, buffer):
    older = gitea.add_pull(REPO, "Older PR", "", diff=DIFF, merged=True)
    pull = gitea.add_pull(REPO, "Follow-up", f"Fixes #{older['number']}, fixes #404", diff=DIFF, merged=True)
    summary = ingest_merged_pr(merge_delivery(pull), gitea_client, buffer)
    assert summary["issues"] == [] and summary["prompt_from"] == "pull request"
    assert buffer.active()[0].prompt == "Follow-up\n\nFixes #1, fixes #404"


def test_redelivery_is_idempotent(gitea, gitea_client, buffer):
    issue = gitea.add_issue(REPO, "Bug", "b")
    pull = gitea.add_pull(REPO, "Fix", f"Closes #{issue['number']}", diff=DIFF, merged=True)
    first = merge_delivery(pull, delivery_id="first")
    assert ingest_merged_pr(first, gitea_client, buffer)["added"] is True
    calls = len(gitea.requests)
    replay = merge_delivery(pull, delivery_id="replayed")  # Gitea's Replay: same bytes, new delivery id
    summary = ingest_merged_pr(replay, gitea_client, buffer)
    assert summary["added"] is False and "redelivery" in summary["reason"]
    assert buffer.count() == 1 and buffer.active()[0].delivery_id == "first"
    assert len(gitea.requests) == calls  # no Gitea calls for a replay


def test_closed_without_merge_is_ignored(gitea, gitea_client, buffer):
    pull = gitea.add_pull(REPO, "Abandoned", "Fixes #1", diff=DIFF, merged=False, state="closed")
    summary = ingest_merged_pr(merge_delivery(pull, merged=False), gitea_client, buffer)
    assert summary["added"] is False and "not a merge" in summary["reason"]
    assert buffer.count() == 0 and gitea.requests == []


def test_empty_or_huge_diff_is_skipped(gitea, gitea_client, buffer):
    empty = gitea.add_pull(REPO, "Nothing", "", diff="", merged=True)
    assert "empty diff" in ingest_merged_pr(merge_delivery(empty), gitea_client, buffer)["reason"]
    huge = gitea.add_pull(REPO, "Vendored", "", diff="+x\n" * (MAX_DIFF_BYTES // 3 + 1), merged=True)
    assert "over" in ingest_merged_pr(merge_delivery(huge), gitea_client, buffer)["reason"]
    assert buffer.count() == 0


def test_gitea_down_fails_the_job_visibly(gitea, gitea_client, buffer):
    pull = gitea.add_pull(REPO, "Fix", "", diff=DIFF, merged=True)
    gitea.fail_next(4, status=500)  # every attempt of the client (1 + 3 retries)
    with pytest.raises(GiteaError):
        ingest_merged_pr(merge_delivery(pull), gitea_client, buffer)
    assert buffer.count() == 0
    assert ingest_merged_pr(merge_delivery(pull), gitea_client, buffer)["added"] is True  # the retry works


def test_defaults_come_from_the_process_context(gitea, gitea_client, tmp_path):
    """bot.jobs calls ingest_merged_pr(delivery) alone; the client and buffer come from bot.context."""
    engine = engine_for(f"sqlite:///{tmp_path / 'ctx.db'}")
    settings = Settings.from_env({"SSD_DATA_DIR": str(tmp_path), "SSD_BUFFER_SIZE": "7"})
    context.configure(gitea=gitea_client, engine=engine, settings=settings)
    pull = gitea.add_pull(REPO, "Fix", "", diff=DIFF, merged=True)
    assert ingest_merged_pr(merge_delivery(pull))["added"] is True
    assert TrainingBuffer(engine, window=7).count() == 1


def test_build_prompt():
    assert build_prompt([], {"title": "T", "body": None}) == "T"
    assert build_prompt([{"title": "A", "body": "  "}], {"title": "T", "body": "B"}) == "A"
