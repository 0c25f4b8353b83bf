"""Authorization comes first (issue #8): a commenter without permission learns only that, once per comment;
a comment's command lines are capped; a permission API that keeps failing is answered; ``/ssd status``
shows other repositories' jobs only to a site admin. Real Redis, real RQ workers, the Gitea stand-in."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from rq import Retry
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry

from bot import context
from bot.commands import registry
from bot.jobs import job_id_for
from core.config import Settings
from core.queues import ALL, queue
from tests.conftest_gitea import REPO
from tests.deliveries import comment_payload, gitea_json_bytes
from tests.harness import Bot, start_worker, wait_for

SECRET_REPO = "acme/secret"


def _queued(bot: Bot) -> int:
    return sum(queue(name, bot.conn).count for name in ALL)


def test_a_reader_gets_one_refusal_per_comment_and_never_usage_help(bot: Bot) -> None:
    index = bot.new_issue()
    # Malformed, unknown and well-formed lines alike: bob (read) may run none of the write commands.
    bot.comment("/ssd cancel\n/ssd eval n=zero\n/ssd cancel cmd-1-1\n/ssd eval t=nan", user="bob", index=index)
    bot.work()
    [reply] = bot.bot_comments(index)
    assert "@bob, `/ssd cancel` needs **write** permission on acme/widgets; you have **read**" in reply["body"]
    assert "Usage" not in reply["body"] and "missing required argument" not in reply["body"]
    assert len(bot.gitea.calls("GET", "/collaborators/bob/permission")) == 1
    assert _queued(bot) == 0


def test_a_reader_still_gets_help_for_an_unknown_command_after_the_permission_check(bot: Bot) -> None:
    index = bot.new_issue()
    bot.comment("/ssd stauts", user="bob", index=index)
    bot.work()
    [reply] = bot.bot_comments(index)
    assert "unknown command `stauts`. Did you mean `/ssd status`?" in reply["body"]
    assert bot.gitea.calls("GET", "/collaborators/bob/permission")  # asked before answering


def test_a_comment_of_20480_command_lines_gets_the_cap_and_one_answer(bot: Bot) -> None:
    index = bot.new_issue()
    body = "\n".join(["/ssd nope"] * 20480)
    started = time.monotonic()
    bot.comment(body, index=index)
    bot.work()
    elapsed = time.monotonic() - started
    replies = [c["body"] for c in bot.bot_comments(index)]
    cap = Settings.from_env(bot.env).max_commands_per_comment
    assert cap == 10
    assert len(replies) == cap + 1, len(replies)
    assert all("unknown command `nope`" in text for text in replies[:cap])
    assert "this comment holds 20480 command lines; I run at most 10 per comment" in replies[-1]
    assert "20470 after line 10 were ignored" in replies[-1]
    assert elapsed < 20, elapsed


def test_a_refused_commenter_with_thousands_of_lines_gets_exactly_one_reply(bot: Bot) -> None:
    from bot.jobs import process_delivery

    index = bot.new_issue()
    inbox_id = bot.comment("\n".join(["/ssd eval n=1"] * 5000), user="bob", index=index)
    bot.work()
    [reply] = bot.bot_comments(index)
    assert "needs **write** permission" in reply["body"]
    assert _queued(bot) == 0
    process_delivery(inbox_id)  # processed again (a re-enqueue after a crash): no second refusal, no cap note
    assert len(bot.bot_comments(index)) == 1


def test_the_cap_is_configurable_and_a_replay_does_not_answer_twice(bot: Bot) -> None:
    from bot.jobs import process_delivery

    context.configure(settings=Settings.from_env({**bot.env, "SSD_MAX_COMMANDS_PER_COMMENT": "2"}))
    index = bot.new_issue()
    inbox_id = bot.comment("/ssd help\n/ssd help eval\n/ssd help cancel\n/ssd help status", index=index)
    bot.work()
    comments = bot.bot_comments(index)
    assert len(comments) == 3  # two status comments and one note
    assert sum("✅ **done**" in c["body"] for c in comments) == 2
    assert "holds 4 command lines; I run at most 2 per comment" in comments[-1]["body"]
    process_delivery(inbox_id)  # the same delivery processed again (a replay, a re-enqueue)
    assert len(bot.bot_comments(index)) == 3


def test_a_permission_api_that_keeps_failing_gets_a_could_not_authorize_reply(bot: Bot) -> None:
    index = bot.new_issue()
    inbox_id = bot.comment("/ssd help", index=index, enqueue=False)
    bot.gitea.fail_path("/collaborators/", 503)
    job = queue("default", bot.conn).enqueue(
        "bot.jobs.process_delivery", inbox_id, job_id=f"delivery-{inbox_id}", retry=Retry(max=1)
    )
    bot.work()  # the first attempt fails and is retried at once (no interval); the retry is the last
    [reply] = bot.bot_comments(index)
    assert "@alice, this command could not be authorized" in reply["body"]
    assert "HTTP 503" in reply["body"] and "Nothing was run" in reply["body"]
    assert len(bot.gitea.calls("GET", "/collaborators/alice/permission")) == 2 * 4  # 2 attempts x (1 + 3 retries)
    assert job.get_status(refresh=True) == JobStatus.FINISHED
    assert _queued(bot) == 0 and not FailedJobRegistry("default", connection=bot.conn).count


# --------------------------------------------------------------------------- /ssd status, per repository


WORKER_SCRIPT_QUEUE = "cpu"


def _sleepy(ctx, args) -> str:  # the pytest side only validates; the worker subprocess runs its own copy
    raise AssertionError("runs in the worker subprocess")


@pytest.fixture
def secret_job(bot: Bot) -> Iterator[str]:
    """A job running (in a worker subprocess) for a command typed on a private repository."""
    bot.gitea.add_repo(SECRET_REPO, private=True)
    bot.gitea.grant(SECRET_REPO, "alice", "write")
    registry.register(
        registry.Command(
            "test-sleep", _sleepy, "sleeps", args=(registry.Arg("seconds", float, 0),), queue=WORKER_SCRIPT_QUEUE
        )
    )
    index = bot.gitea.add_issue(SECRET_REPO, "Merger talks with Initech")["number"]
    body = "/ssd test-sleep seconds=60"
    comment_id = bot.gitea.add_comment(SECRET_REPO, index, body, user="alice")["id"]
    payload = comment_payload(
        body=body,
        user="alice",
        number=index,
        comment_id=comment_id,
        owner="acme",
        repo="secret",
        issue_title="Merger talks with Initech",
    )
    inbox_id, _ = bot.inbox.record(
        "d-secret",
        "issue_comment",
        "issue_comment",
        "created",
        f"comment:{comment_id}:created",
        gitea_json_bytes(payload).decode(),
    )
    queue("default", bot.conn).enqueue("bot.jobs.process_delivery", inbox_id)
    bot.work(("default",))
    job_id = job_id_for(comment_id, 1)
    worker = start_worker(bot)
    try:
        wait_for(lambda: Job.fetch(job_id, connection=bot.conn).meta.get("message") == "sleeping", what="job start")
        yield job_id
    finally:
        worker.kill()
        worker.wait(timeout=10)
        registry.REGISTRY.pop("test-sleep", None)


def test_status_shows_a_reader_only_the_asking_repositorys_jobs(bot: Bot, secret_job: str) -> None:
    index = bot.new_issue()
    bot.comment("/ssd status", user="bob", index=index)
    bot.work(("default",))
    [status] = bot.bot_comments(index)
    body = status["body"]
    assert "✅ **done**" in body
    assert secret_job not in body and "secret" not in body and "test-sleep" not in body and "@alice" not in body
    assert "1 running job of other repositories not shown." in body


def test_status_shows_a_site_admin_every_repositorys_jobs(bot: Bot, secret_job: str) -> None:
    bot.gitea.add_user("root", admin=True)
    index = bot.new_issue()
    bot.comment("/ssd status", user="root", index=index)
    bot.work(("default",))
    [status] = bot.bot_comments(index)
    body = status["body"]
    assert f"`{secret_job}`" in body and "acme/secret#1" in body and "@alice" in body
    assert "not shown" not in body
    assert bot.gitea.calls("GET", "/api/v1/users/root")


def test_a_repo_admin_is_not_a_site_admin(bot: Bot, secret_job: str) -> None:
    bot.gitea.add_user("carol")
    bot.gitea.grant(REPO, "carol", "admin")
    index = bot.new_issue()
    bot.comment("/ssd status", user="carol", index=index)
    bot.work(("default",))
    [status] = bot.bot_comments(index)
    assert secret_job not in status["body"] and "1 running job of other repositories not shown." in status["body"]


def test_cancel_of_another_repositorys_job_is_answered_like_a_missing_job(bot: Bot, secret_job: str) -> None:
    bot.gitea.add_user("dana")
    bot.gitea.grant(REPO, "dana", "write")
    index = bot.new_issue()
    bot.comment(f"/ssd cancel {secret_job}", user="dana", index=index)
    bot.work(("default",))
    [status] = bot.bot_comments(index)
    body = status["body"]
    assert f"there is no job `{secret_job}` on acme/widgets" in body
    assert "secret" not in body.replace(f"`{secret_job}`", "") and "@alice" not in body
    assert Job.fetch(secret_job, connection=bot.conn).get_status() == JobStatus.STARTED  # untouched
