"""Ingest follows only the references the PR's own readers could read (issue #8), and says in the log why a
merged PR was not ingested (dry run included). The Gitea stand-in over real HTTP, a real buffer."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import pytest

from bot.gitea import DryRunGitea
from bot.ingest import ingest_merged_pr
from core.db import engine_for
from core.inbox import Delivery
from pipeline.buffer import TrainingBuffer
from tests.conftest_gitea import REPO
from tests.deliveries import merged_pr_payload

DIFF = "diff --git a/x.py b/x.py\n--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-a = 1\n+a = 2\n"


@pytest.fixture
def buffer(tmp_path: Path) -> TrainingBuffer:
    return TrainingBuffer(engine_for(f"sqlite:///{tmp_path / 'buffer.db'}"), window=50)


def _delivery(pull: dict, owner: str = "acme", repo: str = "widgets") -> Delivery:
    payload = merged_pr_payload(
        number=pull["number"],
        title=pull["title"],
        body=pull["body"],
        owner=owner,
        repo=repo,
        merge_commit_sha=pull["pull"]["merge_commit_sha"] or "f" * 40,
    )
    return Delivery(
        id=1,
        delivery_id=str(uuid.uuid4()),
        event="pull_request",
        event_type="pull_request",
        action="closed",
        payload=payload,
    )


def test_private_and_internal_issues_of_other_repositories_are_not_copied(gitea, gitea_client, buffer) -> None:
    gitea.add_repo("other-org/private", private=True)
    gitea.add_repo("other-org/internal", internal=True)
    gitea.add_repo("other-org/public")
    gitea.add_issue("other-org/private", "Acquisition of Initech", "PRIVATE: the price is 4M")
    gitea.add_issue("other-org/internal", "Staff list", "INTERNAL: do not share")
    gitea.add_issue("other-org/public", "Upstream crash", "Public: crashes on resize")
    own = gitea.add_issue(REPO, "Widgets overflow", "Own: spills out")
    body = (
        f"Fixes other-org/private#1\nFixes other-org/internal#1\nFixes other-org/public#1\n"
        f"Fixes #{own['number']}\nFixes other-org/missing#1"
    )
    pull = gitea.add_pull(REPO, "Clamp width", body, diff=DIFF, merged=True)

    summary = ingest_merged_pr(_delivery(pull), gitea=gitea_client, buffer=buffer)

    assert summary["added"] is True
    assert sorted(summary["issues"]) == sorted(["other-org/public#1", f"{REPO}#{own['number']}"])
    [example] = buffer.active()
    assert "Public: crashes on resize" in example.prompt and "Own: spills out" in example.prompt
    assert "PRIVATE" not in example.prompt and "INTERNAL" not in example.prompt
    # The private and internal issues were never even fetched with the bot's admin token.
    assert not gitea.calls("GET", "/repos/other-org/private/issues")
    assert not gitea.calls("GET", "/repos/other-org/internal/issues")


def test_a_private_repository_may_use_its_own_issues(gitea, gitea_client, buffer) -> None:
    gitea.add_repo("acme/closed", private=True)
    issue = gitea.add_issue("acme/closed", "Secret bug", "Own private text")
    pull = gitea.add_pull("acme/closed", "Fix it", f"Fixes #{issue['number']}", diff=DIFF, merged=True)

    summary = ingest_merged_pr(_delivery(pull, repo="closed"), gitea=gitea_client, buffer=buffer)

    assert summary["added"] is True and summary["issues"] == [f"acme/closed#{issue['number']}"]
    assert "Own private text" in buffer.active()[0].prompt


def test_dry_run_logs_why_a_merged_pr_was_not_ingested(
    tmp_path: Path, buffer, caplog: pytest.LogCaptureFixture
) -> None:
    payload = merged_pr_payload(number=7, title="Fix", body="Fixes #1", merge_commit_sha="a" * 40)
    delivery = Delivery(
        id=1, delivery_id="d-7", event="pull_request", event_type="pull_request", action="closed", payload=payload
    )
    gitea = DryRunGitea(tmp_path / "outbox")
    gitea.remember(payload)
    with caplog.at_level(logging.INFO, logger="bot.ingest"):
        summary = ingest_merged_pr(delivery, gitea=gitea, buffer=buffer)
    assert summary["added"] is False
    [line] = [r.getMessage() for r in caplog.records if "not ingested" in r.getMessage()]
    assert "acme/widgets!7" in line and "diff unavailable" in line and "dry-run" in line
