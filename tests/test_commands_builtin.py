"""The builtin commands end to end: help, status and cancel (real Redis, RQ workers, the Gitea stand-in)."""

from __future__ import annotations

import time

from rq.job import Job, JobStatus

from bot import context
from bot.jobs import job_id_for, report_abandoned
from core.queues import queue
from pipeline.buffer import Example, TrainingBuffer
from tests.conftest_gitea import REPO
from tests.harness import Bot, start_sleeping_job


def run(
    bot: Bot, body: str, user: str = "alice", index: int | None = None, queues: tuple[str, ...] = ("default",)
) -> dict:
    """Post a command, process it with an in-process worker, return the bot's newest comment on the issue."""
    index = index or bot.new_issue()
    bot.comment(body, user=user, index=index)
    bot.work(queues)
    return bot.bot_comments(index)[-1]


def test_help_for_one_command(bot: Bot) -> None:
    body = run(bot, "/ssd help cancel")["body"]
    assert "### `/ssd cancel`" in body
    assert "Usage: `/ssd cancel <job>`" in body
    assert "- `<job>` (required): the job id shown in its status comment" in body
    assert "Who may run it: writers and above on this repository." in body
    # Checked before enqueueing (issue #8): answered at once with the usage, no job.
    assert "there is no command `nosuch`" in run(bot, "/ssd help nosuch")["body"]


def test_status_shows_queues_buffer_and_adapter(bot: Bot) -> None:
    buffer = TrainingBuffer(context.engine(), window=bot.settings.buffer_size)
    for number in (1, 2):
        buffer.add(Example(repo=REPO, pr_number=number, merge_sha=f"{number:040x}", prompt="p", answer="a"))
    adapters = bot.settings.data_dir / "adapters"
    (adapters / "ssd-2026-01-20").mkdir(parents=True)
    (adapters / "current").symlink_to(adapters / "ssd-2026-01-20")
    queue("cpu", bot.conn).enqueue("time.sleep", 0)  # waiting: no cpu worker runs in this test
    body = run(bot, "/ssd status", user="bob")["body"]
    assert "| `default` | 0 | 1 | 1 |" in body  # the status job itself is running, on this test's worker
    assert "| `cpu` | 1 | 0 | 0 |" in body
    assert "| `gpu` | 0 | 0 | 0 |" in body
    assert "**Running jobs**: none besides this one." in body
    assert "**Training buffer**: 2 active examples (window 500), 0 archived" in body
    assert "**Current adapter**: ssd-2026-01-20" in body


def test_status_without_adapter_says_none(bot: Bot) -> None:
    assert "**Current adapter**: none" in run(bot, "/ssd status")["body"]


def test_status_lists_running_jobs_and_cancel_stops_one(bot: Bot, extra_command) -> None:
    index, job_id, status, worker = start_sleeping_job(bot, extra_command)
    try:
        body = run(bot, "/ssd status")["body"]
        assert "**Running jobs**" in body
        assert (
            f"| `{job_id}` | `/ssd test-sleep seconds=60` | [acme/widgets#{index}]"
            f"(http://localhost:3000/acme/widgets/issues/{index}) | @alice | 10% sleeping |"
        ) in body

        bot.gitea.add_user("carol")
        bot.gitea.grant(REPO, "carol", "write")
        refused = run(bot, f"/ssd cancel {job_id}", user="carol")["body"]
        assert "❌" in refused and "only @alice (who asked for" in refused and "you have **write**" in refused
        assert Job.fetch(job_id, connection=bot.conn).get_status() == JobStatus.STARTED

        started = time.monotonic()
        done = run(bot, f"/ssd cancel {job_id}")["body"]
        assert f"Cancelled `{job_id}`" in done and "stopped while running" in done
        assert worker.wait(timeout=15) == 0  # burst worker: the horse was killed, the worker finished
        assert time.monotonic() - started < 15  # not the 60 s the job wanted
    finally:
        if worker.poll() is None:
            worker.kill()
    assert Job.fetch(job_id, connection=bot.conn).get_status() == JobStatus.STOPPED
    cancelled = bot.gitea.comments[status["id"]]["body"]
    assert "🚫 **cancelled** by @alice" in cancelled
    assert report_abandoned(bot.conn, timestamp=time.time() + 600) == []  # a cancel is not a failure
    assert bot.gitea.comments[status["id"]]["body"] == cancelled


def test_cancel_a_queued_job_by_a_repo_admin(bot: Bot, extra_command) -> None:
    extra_command("test-wait", lambda ctx, args: "ran", queue_name="cpu")
    index = bot.new_issue()
    bot.comment("/ssd test-wait\n/ssd test-wait", index=index)
    job_id = job_id_for(bot.last_comment_id(), 1)
    bot.work(("default",))
    status, second = bot.bot_comments(index)
    assert "⏳ **queued**, position 1" in status["body"]
    assert "⏳ **queued**, position 2" in second["body"]

    bot.gitea.add_user("dana")
    bot.gitea.grant(REPO, "dana", "admin")
    done = run(bot, f"/ssd cancel `{job_id}`", user="dana")["body"]
    assert "removed from the queue" in done
    assert Job.fetch(job_id, connection=bot.conn).get_status() == JobStatus.CANCELED
    assert queue("cpu", bot.conn).count == 1
    assert "🚫 **cancelled** by @dana" in bot.gitea.comments[status["id"]]["body"]
    bot.work(("cpu",))  # only the second one runs
    assert "🚫" in bot.gitea.comments[status["id"]]["body"]
    assert "✅ **done**" in bot.gitea.comments[second["id"]]["body"]


def test_cancel_unknown_and_finished_jobs(bot: Bot) -> None:
    assert "there is no job `cmd-404-1`" in run(bot, "/ssd cancel cmd-404-1")["body"]
    index = bot.new_issue()
    bot.comment("/ssd help", index=index)
    help_job = job_id_for(bot.last_comment_id(), 1)
    bot.work()
    body = run(bot, f"/ssd cancel {help_job}")["body"]
    assert "❌ **failed**" in body and "is already finished; nothing to cancel" in body
    assert "<summary>traceback</summary>" not in body  # an expected refusal, not a crash
