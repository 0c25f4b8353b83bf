"""process_delivery / run_command end to end: journaled deliveries, a real Redis, real RQ workers, real HTTP
to the Gitea stand-in. Also the cases where a job dies without reporting (SIGKILL) and the dry-run outbox."""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from pathlib import Path

import pytest
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry

from bot import context
from bot.commands import registry
from bot.gitea import GiteaError
from bot.jobs import ABANDONED_REASON, CLAIM_STALE, _claim, job_id_for, process_delivery, report_abandoned
from core.config import Settings
from core.queues import queue
from tests.conftest_gitea import REPO, seeded_standin
from tests.deliveries import comment_delivery, comment_payload, gitea_json_bytes, merged_pr_payload
from tests.harness import Bot, make_bot, start_sleeping_job

# --------------------------------------------------------------------------- the happy path


def test_help_end_to_end_reacts_posts_one_status_comment_and_renders_the_registry(bot: Bot) -> None:
    index = bot.new_issue()
    bot.comment("Thanks!\n\n/ssd help", index=index)
    command_comment = bot.last_comment_id()
    bot.work()

    reactions = bot.gitea.comments[command_comment]["reactions"]
    assert [(r["user"], r["content"]) for r in reactions] == [("ssd-bot", "eyes")]
    [status] = bot.bot_comments(index)
    created = [r for r in bot.gitea.calls("POST", f"/issues/{index}/comments")][0].json["body"]
    assert "⏳ **queued**, position 1" in created
    job_id = job_id_for(command_comment, 3)
    assert f"job `{job_id}`" in created and "requested by @alice" in created
    edits = bot.edits_of(status["id"])
    assert "⚙️ **running**" in edits[0]
    assert "✅ **done**" in edits[-1]
    body = status["body"]
    assert "| Command | Arguments | Who may run it | What it does |" in body
    for cmd in registry.commands():
        assert f"| `/ssd {cmd.name}` |" in body
    job = Job.fetch(job_id, connection=bot.conn)
    assert job.get_status() == JobStatus.FINISHED
    assert job.meta["status_comment_id"] == status["id"] and job.meta["requester"] == "alice"


def test_help_from_a_signed_webhook_through_the_web_edge_to_the_issue(bot: Bot) -> None:
    """The whole spine: Gitea's POST -> the Flask app (verify, journal, enqueue) -> RQ -> the stand-in."""
    from webhooks.app import create_app

    client = create_app(bot.settings).test_client()
    index = bot.new_issue()
    comment_id = bot.gitea.add_comment(REPO, index, "/ssd help", user="alice")["id"]
    body, headers = comment_delivery("s", number=index, comment_id=comment_id, body="/ssd help", user="alice")
    assert client.post("/webhooks/gitea", data=body, headers=headers).status_code == 202
    # Gitea's "Replay" sends the same payload with a new delivery id: answered, never run twice.
    replay_headers = {**headers, "X-Gitea-Delivery": str(uuid.uuid4())}
    assert client.post("/webhooks/gitea", data=body, headers=replay_headers).status_code in (200, 202)
    bot.work()
    [status] = bot.bot_comments(index)
    assert "✅ **done**" in status["body"] and "| `/ssd help` |" in status["body"]
    assert [r["content"] for r in bot.gitea.comments[comment_id]["reactions"]] == ["eyes"]


def test_several_commands_in_one_comment_get_one_status_comment_each(bot: Bot) -> None:
    index = bot.new_issue()
    bot.comment("/ssd help\n/ssd help cancel", index=index)
    bot.work()
    statuses = bot.bot_comments(index)
    assert len(statuses) == 2
    assert len(bot.gitea.calls("GET", "/collaborators/alice/permission")) == 1  # asked once per comment
    assert all("✅ **done**" in s["body"] for s in statuses)
    assert "Usage: `/ssd cancel <job>`" in statuses[1]["body"]


def test_a_replayed_delivery_does_not_run_the_command_twice(bot: Bot) -> None:
    index = bot.new_issue()
    inbox_id = bot.comment("/ssd help", index=index)
    bot.work()
    # A replay that got past the web edge (a new inbox row for the same comment would be deduped there;
    # here the same journaled delivery is processed again, as after a re-enqueue).
    assert process_delivery(inbox_id)["skipped"] == [1]
    bot.work()
    assert len(bot.bot_comments(index)) == 1


def test_a_command_in_a_pr_conversation_answers_on_the_pr(bot: Bot) -> None:
    number = bot.gitea.add_pull(REPO, "Fix widget overflow", "Fixes #1", diff="x")["number"]
    comment_id = bot.gitea.add_comment(REPO, number, "/ssd help", user="alice")["id"]
    payload = comment_payload(body="/ssd help", user="alice", number=number, comment_id=comment_id, is_pull=True)
    inbox_id, _ = bot.inbox.record(
        "d-pr-comment",
        "issue_comment",
        "pull_request_comment",
        "created",
        f"comment:{comment_id}:created",
        gitea_json_bytes(payload).decode(),
    )
    assert process_delivery(inbox_id)["enqueued"] == [job_id_for(comment_id, 1)]
    bot.work()
    [status] = bot.bot_comments(number)
    assert "✅ **done**" in status["body"]


def test_edited_comments_and_other_events_do_not_trigger(bot: Bot) -> None:
    payload = comment_payload(action="edited", body="/ssd help", previous_body="hi")
    inbox_id, _ = bot.inbox.record(
        "d1", "issue_comment", "issue_comment", "edited", "comment:x:edited", gitea_json_bytes(payload).decode()
    )
    assert process_delivery(inbox_id) == {"ignored": "comment edited"}
    assert bot.gitea.calls("POST") == []


def _journal_pr(bot: Bot, payload: dict) -> int:
    key = f"merge:{REPO}:{payload['number']}:{payload['pull_request']['merge_commit_sha']}"
    inbox_id, _ = bot.inbox.record(
        "d-pr", "pull_request", "pull_request", "closed", key, gitea_json_bytes(payload).decode()
    )
    return inbox_id


def test_a_merged_pr_is_ingested_and_a_closed_unmerged_one_ignored(bot: Bot) -> None:
    issue = bot.new_issue("Widgets overflow on resize")
    pull = bot.gitea.add_pull(REPO, "Fix widget overflow", f"Fixes #{issue}", diff="--- a\n+++ b\n", merged=True)
    payload = merged_pr_payload(
        number=pull["number"], body=f"Fixes #{issue}", merge_commit_sha=pull["pull"]["merge_commit_sha"]
    )
    queue("default", bot.conn).enqueue("bot.jobs.process_delivery", _journal_pr(bot, payload))
    bot.work()
    from pipeline.buffer import TrainingBuffer

    [example] = TrainingBuffer(context.engine()).active()
    assert (example.repo, example.pr_number, example.answer) == (REPO, pull["number"], "--- a\n+++ b\n")

    unmerged = merged_pr_payload(number=pull["number"] + 1, merged=False, merge_commit_sha="")
    assert process_delivery(_journal_pr(bot, unmerged)) == {"ignored": "closed without merge"}
    assert TrainingBuffer(context.engine()).count() == 1


# --------------------------------------------------------------------------- who may run what


def test_a_reader_is_refused_a_write_command_with_a_clear_message(bot: Bot) -> None:
    index = bot.new_issue()
    bot.comment("/ssd cancel cmd-1-1", user="bob", index=index)
    bot.work()
    [reply] = bot.bot_comments(index)
    assert "@bob, `/ssd cancel` needs **write** permission on acme/widgets; you have **read**" in reply["body"]
    assert bot.gitea.calls("GET", "/collaborators/bob/permission")
    assert queue("default", bot.conn).count == 0 and not FailedJobRegistry("default", connection=bot.conn).count


def test_a_reader_may_run_read_commands(bot: Bot) -> None:
    index = bot.new_issue()
    bot.comment("/ssd help", user="bob", index=index)
    bot.work()
    [status] = bot.bot_comments(index)
    assert "✅ **done**" in status["body"]


def test_authorization_uses_the_permission_endpoint_not_the_payload_sender(bot: Bot) -> None:
    # mallory is no collaborator (a public repo gives her read), but the payload's repository.permissions
    # claims admin/push/pull for her and sender.is_admin could be anything: neither is used.
    index = bot.new_issue()
    bot.gitea.add_user("mallory")
    bot.comment("/ssd cancel cmd-1-1", user="mallory", index=index)
    bot.work()
    [reply] = bot.bot_comments(index)
    assert "you have **read**" in reply["body"]


def test_the_bots_own_comments_and_configured_bot_accounts_are_ignored(bot: Bot, gitea) -> None:
    index = bot.new_issue()
    bot.comment("/ssd help", user="ssd-bot", index=index)
    context.configure(settings=Settings.from_env({**bot.env, "SSD_BOT_ACCOUNTS": "renovate"}))
    gitea.add_user("renovate")
    bot.comment("/ssd help", user="renovate", index=index)
    bot.work()
    assert len(bot.gitea.comments_on(REPO, index)) == 2  # just the two command comments
    assert bot.gitea.calls("POST") == []
    assert [r.path for r in bot.gitea.calls("GET")] == ["/api/v1/user"]  # asked once who it is


def test_quoted_fenced_and_commented_commands_do_nothing(bot: Bot) -> None:
    index = bot.new_issue()
    bot.comment("> /ssd help\n\n```\n/ssd status\n```\n\n`/ssd help`\n<!-- /ssd cancel x -->", index=index)
    bot.work()
    assert bot.gitea.calls("POST") == []
    assert bot.bot_comments(index) == []


def test_a_non_admin_bot_token_is_reported_once(own_redis, tmp_path) -> None:
    redis_conn, redis_url = own_redis
    standin = seeded_standin()
    standin.users["ssd-bot"].is_admin = False  # a plain collaborator token: 403 on others' permissions
    standin.grant(REPO, "ssd-bot", "write")
    standin.start()
    try:
        bot = make_bot(standin, redis_conn, tmp_path, redis_url)
        index = bot.new_issue()
        bot.comment("/ssd help\n/ssd status", index=index)
        bot.work()
        [reply] = bot.bot_comments(index)
        assert "Gitea answered 403" in reply["body"]
        assert "must belong to a site admin or an admin of this repository" in reply["body"]
        assert queue("default", redis_conn).count == 0
    finally:
        standin.stop()


# --------------------------------------------------------------------------- bad input


def test_an_unknown_command_suggests_the_nearest_one_with_its_usage(bot: Bot) -> None:
    index = bot.new_issue()
    bot.comment("/ssd cancle cmd-1-1", index=index)
    bot.work()
    [reply] = bot.bot_comments(index)
    assert "unknown command `cancle`. Did you mean `/ssd cancel`?" in reply["body"]
    assert "Usage: `/ssd cancel <job>`" in reply["body"]


def test_a_bad_argument_shows_why_and_the_usage(bot: Bot) -> None:
    index = bot.new_issue()
    bot.comment("/ssd cancel\n/ssd help what=ever\n/ssd help 'x", index=index)
    bot.work()
    bodies = [c["body"] for c in bot.bot_comments(index)]
    assert len(bodies) == 3
    assert "missing required argument `job`" in bodies[0] and "Usage: `/ssd cancel <job>`" in bodies[0]
    assert "unknown argument `what`" in bodies[1] and "Usage: `/ssd help [<command>]`" in bodies[1]
    assert "No closing quotation" in bodies[2]


# --------------------------------------------------------------------------- failures


def _boom(ctx, args) -> str:
    raise RuntimeError("the suite file is corrupt")


def test_a_failing_handler_reports_the_reason_and_rq_records_the_failure(bot: Bot, extra_command) -> None:
    extra_command("test-boom", _boom)
    index = bot.new_issue()
    bot.comment("/ssd test-boom", index=index)
    bot.work()
    [status] = bot.bot_comments(index)
    assert "❌ **failed**" in status["body"]
    # A short reason and an error id; the message and traceback stay in the server log (issue #8).
    assert "internal error (RuntimeError)" in status["body"] and "error id `err-" in status["body"]
    assert "the suite file is corrupt" not in status["body"] and "in _boom" not in status["body"]
    job_id = job_id_for(bot.last_comment_id() - 1, 1)
    assert job_id in FailedJobRegistry("default", connection=bot.conn).get_job_ids()
    assert report_abandoned(bot.conn) == []  # already reported: the sweep leaves it alone
    assert len(bot.edits_of(status["id"])) == 2  # running, failed


def test_gitea_answering_500_then_recovering(bot: Bot) -> None:
    index = bot.new_issue()
    bot.comment("/ssd help", index=index)
    bot.gitea.fail_next(2, 500)  # the first calls of process_delivery (GET /user, the reaction) fail once each
    bot.work()
    [status] = bot.bot_comments(index)
    assert "✅ **done**" in status["body"]
    assert [r.status for r in bot.gitea.calls()][:2] == [500, 500]


def test_gitea_down_past_the_retries_fails_the_delivery_job_and_a_retry_still_runs_the_command(bot: Bot) -> None:
    index = bot.new_issue()
    inbox_id = bot.comment("/ssd help", index=index, enqueue=False)
    command_comment = bot.last_comment_id()
    context.bot_login()  # known from an earlier delivery
    bot.gitea.fail_next(8, 503)  # reaction (4 tries, then given up) and the permission check (4 tries)
    with pytest.raises(GiteaError):
        process_delivery(inbox_id)
    assert bot.bot_comments(index) == []
    # The claim on the command line was released, so the retried delivery runs it.
    assert process_delivery(inbox_id)["enqueued"] == [job_id_for(command_comment, 1)]
    bot.work()
    [status] = bot.bot_comments(index)
    assert "✅ **done**" in status["body"]


def test_claims_guard_against_replays_but_not_against_a_crashed_first_attempt(own_redis) -> None:
    conn, _ = own_redis
    assert _claim(conn, "cmd:1:1") is True
    assert _claim(conn, "cmd:1:1") is False  # in progress elsewhere
    conn.set("cmd:1:1", "done:cmd-1-1")
    assert _claim(conn, "cmd:1:1") is False  # finished
    conn.set("cmd:2:1", f"claimed:{time.time() - CLAIM_STALE - 5:.3f}")  # its process died mid-way
    assert _claim(conn, "cmd:2:1") is True
    assert _claim(conn, "cmd:2:1") is False


def _plot(ctx, args) -> str:
    url = ctx.attach("plot.png", b"\x89PNG fake bytes", "image/png")
    return f"![plot]({url})"


def test_attach_uploads_to_the_status_comment(bot: Bot, extra_command) -> None:
    extra_command("test-plot", _plot)
    index = bot.new_issue()
    bot.comment("/ssd test-plot", index=index)
    bot.work()
    [status] = bot.bot_comments(index)
    [key] = bot.gitea.comments[status["id"]]["assets"]
    assert bot.gitea.attachments[key][1] == b"\x89PNG fake bytes"
    assert f"![plot]({bot.gitea.url}/attachments/{key})" in status["body"]


def _chatty(ctx, args) -> str:
    for step in range(50):
        ctx.progress(step / 50, f"step {step}")
    return "chatted"


def test_progress_edits_are_throttled(bot: Bot, extra_command) -> None:
    extra_command("test-chatty", _chatty)
    context.configure(settings=Settings.from_env({**bot.env, "SSD_STATUS_EDIT_INTERVAL": "60"}))
    index = bot.new_issue()
    bot.comment("/ssd test-chatty", index=index)
    bot.work()
    [status] = bot.bot_comments(index)
    assert len(bot.edits_of(status["id"])) == 2  # running and done; the 50 progress calls only touch job.meta
    job = Job.fetch(job_id_for(bot.last_comment_id() - 1, 1), connection=bot.conn)
    assert job.meta["message"] == "step 49"

    context.configure(settings=Settings.from_env({**bot.env, "SSD_STATUS_EDIT_INTERVAL": "0"}))
    bot.comment("/ssd test-chatty", index=index)
    bot.work()
    newest = bot.bot_comments(index)[-1]
    edits = bot.edits_of(newest["id"])
    assert len(edits) == 52 and "`██████████░░░░░░░░░░` 50%\n\nstep 25" in edits[26]


# --------------------------------------------------------------------------- killed workers


def test_a_worker_killed_mid_job_ends_with_a_failure_report(bot: Bot, extra_command) -> None:
    index, job_id, status, worker = start_sleeping_job(bot, extra_command)
    assert "⚙️ **running**" in bot.gitea.comments[status["id"]]["body"]
    os.killpg(worker.pid, signal.SIGKILL)  # the worker and its work horse die at once (host or container gone)
    worker.wait(timeout=10)

    assert report_abandoned(bot.conn) == []  # heartbeat entry not expired yet: a live job looks the same
    assert Job.fetch(job_id, connection=bot.conn).get_status() == JobStatus.STARTED
    # RQ declares the job abandoned once its heartbeat entry lapses (about 90 s); run the sweep as of then.
    assert report_abandoned(bot.conn, timestamp=time.time() + 120) == [job_id]

    body = bot.gitea.comments[status["id"]]["body"]
    assert "❌ **failed**" in body and ABANDONED_REASON in body
    job = Job.fetch(job_id, connection=bot.conn)
    assert job.get_status() == JobStatus.FAILED and job.meta["reported"] is True
    assert report_abandoned(bot.conn, timestamp=time.time() + 120) == []  # reported once


def test_a_killed_work_horse_is_reported_by_the_sweep(bot: Bot, extra_command) -> None:
    index, job_id, status, worker = start_sleeping_job(bot, extra_command)
    children = Path(f"/proc/{worker.pid}/task/{worker.pid}/children").read_text().split()
    assert len(children) == 1, children
    os.kill(int(children[0]), signal.SIGKILL)  # e.g. the OOM killer picks the horse; the worker lives on
    worker.wait(timeout=30)  # burst mode: the worker records the failure and exits
    job = Job.fetch(job_id, connection=bot.conn)
    assert job.get_status() == JobStatus.FAILED
    assert "❌" not in bot.gitea.comments[status["id"]]["body"]  # RQ calls no failure callback here

    assert report_abandoned(bot.conn) == [job_id]
    body = bot.gitea.comments[status["id"]]["body"]
    assert "❌ **failed**" in body and "Work-horse terminated unexpectedly" in body and "out of memory?" in body


# --------------------------------------------------------------------------- dry run


def test_dry_run_help_writes_the_reply_to_the_outbox(own_redis, tmp_path) -> None:
    bot = make_bot(None, own_redis[0], tmp_path, own_redis[1])
    assert bot.settings.dry_run
    bot.comment("/ssd help")
    bot.work()
    records = [json.loads(p.read_text()) for p in sorted(bot.settings.outbox_dir.glob("*.json"))]
    actions = [r["action"] for r in records]
    assert actions == ["add_reaction", "create_comment", "edit_comment", "edit_comment"]
    assert "⏳ **queued**" in records[1]["body"]
    assert "✅ **done**" in records[-1]["body"] and "| `/ssd help` |" in records[-1]["body"]
    assert records[-1]["comment_id"] == records[1]["comment_id"]
