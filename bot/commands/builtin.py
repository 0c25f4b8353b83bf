"""The commands every installation has: ``help``, ``status`` and ``cancel``."""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rq import Queue, Worker
from rq.command import send_stop_job_command
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry

from bot.auth import allows, permission_of
from bot.commands.registry import Arg, Command, CommandError, command, commands, get, shown
from bot.status import Header, StatusComment
from core.markdown import md_table
from core.queues import ALL as QUEUES

if TYPE_CHECKING:
    from bot.commands.api import CommandContext

log = logging.getLogger(__name__)


def who_may(level: str) -> str:
    return {"none": "anyone", "read": "readers", "write": "writers", "admin": "repo admins", "owner": "the owner"}.get(
        level, level
    ) + ("" if level in ("none", "owner") else " and above")


def _arg_text(arg: Arg) -> str:
    text = f"`<{arg.name}>`" if arg.positional else f"`{arg.name}={arg.metavar}`"
    if arg.required:
        text += " (required)"
    elif isinstance(arg.default, bool):
        text += f" (default `{'yes' if arg.default else 'no'}`)"
    elif arg.default not in (None, "", [], ()):
        default = ",".join(map(str, arg.default)) if isinstance(arg.default, list | tuple) else arg.default
        text += f" (default `{default}`)"
    return text + (f": {arg.help}" if arg.help else "")


def _arguments_cell(cmd: Command) -> str:
    return "\n".join(_arg_text(arg) for arg in cmd.args) or "–"


def help_table(settings) -> str:
    """The command table, rendered from the registry itself."""
    rows = [
        (f"`/ssd {c.name}`", _arguments_cell(c), who_may(c.required_permission(settings)), c.summary)
        for c in commands()
    ]
    return md_table(["Command", "Arguments", "Who may run it", "What it does"], rows)


def _check_help_args(settings: Any, args: dict[str, Any]) -> None:
    if args.get("command") and get(args["command"]) is None:
        raise CommandError(f"there is no command `{shown(args['command'], 40)}`; `/ssd help` lists them")


@command(
    "help",
    "List the commands, or explain one: `/ssd help eval`.",
    permission="read",
    args=[Arg("command", positional=True, help="a command name")],
    check=_check_help_args,
)
def help_command(ctx: CommandContext, args: dict[str, Any]) -> str:
    name = args.get("command")
    if name:
        cmd = get(name)
        if cmd is None:
            raise CommandError(f"there is no command `{shown(name, 40)}`; `/ssd help` lists them")
        text = f"### `/ssd {cmd.name}`\n\n{cmd.summary}\n\nUsage: `{cmd.usage}`\n\n"
        if cmd.help and cmd.help != cmd.summary:
            text += cmd.help + "\n\n"
        if cmd.args:
            text += "\n".join(f"- {_arg_text(arg)}" for arg in cmd.args) + "\n\n"
        return text + f"Who may run it: {who_may(cmd.required_permission(ctx.settings))} on this repository."
    return (
        "### ssd-bot commands\n\n"
        "Write a command on a line of its own in a comment, e.g. `/ssd status`. Several lines run several "
        "commands; lines in code blocks, quotes and HTML comments are ignored.\n\n" + help_table(ctx.settings)
    )


# --------------------------------------------------------------------------- status


def _issue_link(meta: dict) -> str:
    where = f"{meta.get('owner')}/{meta.get('repo')}#{meta.get('index')}"
    return f"[{where}]({meta['issue_url']})" if meta.get("issue_url") else where


def _current_adapter(data_dir: Path) -> str:
    """There is no adapter registry yet: ``data_dir/adapters/current`` (a link, directory or file) names it."""
    current = data_dir / "adapters" / "current"
    if current.is_symlink():
        return current.resolve().name
    if current.is_file():
        return current.read_text(encoding="utf-8").strip() or "none"
    if current.is_dir():
        return current.name
    return "none"


def _buffer_line(ctx: CommandContext) -> str:
    from bot import context
    from pipeline.buffer import TrainingBuffer

    buffer = TrainingBuffer(context.engine(), window=ctx.settings.buffer_size)
    active, total = buffer.count(), buffer.count(include_archived=True)
    return f"{active} active examples (window {buffer.window}), {total - active} archived"


def is_site_admin(gitea, login: str) -> bool:
    """Whether ``login`` is a Gitea site admin. ``GET /users/{username}`` shows the real ``is_admin`` to an
    admin's token (the bot's); payloads always say false. Any doubt (an error, dry run) means no."""
    try:
        return bool(gitea.get_user(login).get("is_admin"))
    except Exception:
        log.warning("could not tell whether %s is a site admin; assuming not", login, exc_info=True)
        return False


def _same_repo(meta: dict, owner: str, repo: str) -> bool:
    return (str(meta.get("owner", "")).lower(), str(meta.get("repo", "")).lower()) == (owner.lower(), repo.lower())


@command(
    "status",
    "Show queue depth, this repository's running jobs (a site admin sees all), the training "
    "buffer and the current adapter.",
    permission="read",
)
def status_command(ctx: CommandContext, args: dict[str, Any]) -> str:
    conn = ctx.redis
    # Anyone who can read the repo may ask (everyone, on a public one): other repositories' jobs (their
    # issues, command lines, requesters) are only listed for a site admin.
    everything = is_site_admin(ctx.gitea, ctx.user)
    hidden = 0
    depth_rows, running_rows = [], []
    for name in QUEUES:
        queue = Queue(name, connection=conn)
        started = StartedJobRegistry(queue=queue)
        running_ids = started.get_job_ids(cleanup=False)
        depth_rows.append((f"`{name}`", queue.count, len(running_ids), Worker.count(queue=queue)))
        for job in Job.fetch_many(running_ids, connection=conn):
            if job is None or job.id == ctx.job_id:
                continue
            meta = job.meta
            if not everything and not (meta.get("ssd") and _same_repo(meta, ctx.owner, ctx.repo)):
                hidden += 1
                continue
            progress = meta.get("progress")
            done = f"{progress:.0%}" if isinstance(progress, int | float) else ""
            running_rows.append(
                (
                    f"`{job.id}`",
                    f"`{meta.get('text') or job.description}`",
                    _issue_link(meta) if meta.get("ssd") else "",
                    f"@{meta.get('requester', '?')}",
                    " ".join(part for part in (done, meta.get("message", "")) if part),
                )
            )
    parts = ["### ssd-bot status", md_table(["Queue", "Queued", "Running", "Workers"], depth_rows, align="lrrr")]
    if running_rows:
        parts.append("**Running jobs**\n\n" + md_table(["Job", "Command", "Issue", "By", "Progress"], running_rows))
    else:
        parts.append("**Running jobs**: none besides this one.")
    if hidden:
        parts.append(f"{hidden} running job{'s' if hidden > 1 else ''} of other repositories not shown.")
    parts.append(f"**Training buffer**: {_buffer_line(ctx)}")
    parts.append(f"**Current adapter**: {_current_adapter(ctx.settings.data_dir)}")
    parts += _loop_lines(ctx)
    return "\n\n".join(parts)


def _loop_lines(ctx: CommandContext) -> list[str]:
    """The continuous loop: last runs, the promoted adapter's gate metrics, what is served, the next run."""
    from bot.loop import status_lines

    try:
        return status_lines(ctx.settings)
    except Exception:  # a damaged loop state file must not take /ssd status down with it
        log.warning("status: the loop's state could not be read", exc_info=True)
        return ["**Loop**: its state could not be read (see the server log)."]


# --------------------------------------------------------------------------- cancel


JOB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")


def job_id_arg(text: str) -> str:
    """A job id as shown in a status comment (backticks allowed around it)."""
    value = text.strip().strip("`")
    if not JOB_ID.match(value):
        raise ValueError("expected a job id such as cmd-123-1")
    return value


job_id_arg.metavar = "JOB"  # type: ignore[attr-defined]


@command(
    "cancel",
    "Cancel a queued or running job of this repository (its requester or a repo admin).",
    args=[Arg("job", type=job_id_arg, required=True, positional=True, help="the job id shown in its status comment")],
)
def cancel_command(ctx: CommandContext, args: dict[str, Any]) -> str:
    from bot.commands.api import cancel_key

    job_id = args["job"].strip("`")
    missing = CommandError(
        f"there is no job `{job_id}` on {ctx.owner}/{ctx.repo} (finished jobs are forgotten after a week)"
    )
    try:
        job = Job.fetch(job_id, connection=ctx.redis)
    except NoSuchJobError:
        raise missing from None
    meta = job.meta
    if not meta.get("ssd"):
        raise CommandError(f"`{job_id}` is not a command job")
    # Job ids are guessable: another repository's job is answered like a missing one (its requester, issue
    # and repository stay private), except to a site admin.
    if not _same_repo(meta, ctx.owner, ctx.repo) and not is_site_admin(ctx.gitea, ctx.user):
        raise missing
    owner, repo = meta["owner"], meta["repo"]
    if ctx.user.lower() != str(meta.get("requester", "")).lower():
        level = permission_of(ctx.gitea, owner, repo, ctx.user)
        if not allows(level, "admin"):
            raise CommandError(
                f"@{ctx.user}, only @{meta.get('requester')} (who asked for `{job_id}`) or an "
                f"admin of {owner}/{repo} may cancel it; you have **{level}**"
            )
    state = job.get_status()
    # Mark first: a running job checks this before each edit, and the failure sweep skips it.
    ctx.redis.set(cancel_key(job_id), ctx.user, ex=30 * 24 * 3600)
    if state in (JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.SCHEDULED):
        job.cancel()
        how = "removed from the queue"
    elif state == JobStatus.STARTED:
        try:
            send_stop_job_command(ctx.redis, job_id)
        except InvalidJobOperation:
            ctx.redis.delete(cancel_key(job_id))
            raise CommandError(f"`{job_id}` is between states; try again in a moment") from None
        _wait_until_stopped(job)
        how = "stopped while running"
    else:
        ctx.redis.delete(cancel_key(job_id))
        raise CommandError(f"`{job_id}` is already {state.value if state else 'gone'}; nothing to cancel")
    header = Header(meta.get("text", f"/ssd {meta.get('command')}"), meta.get("requester", "?"), job_id)
    StatusComment(ctx.gitea, owner, repo, int(meta["status_comment_id"]), header).cancelled(by=ctx.user)
    return f"Cancelled `{job_id}` (`{meta.get('text', '')}` on {_issue_link(meta)}): {how}."


def _wait_until_stopped(job: Job, timeout: float = 10.0) -> None:
    """The stop command is asynchronous (the worker kills its work horse); wait so that the cancelled
    comment is the last edit of the job's status comment."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if job.get_status(refresh=True) != JobStatus.STARTED:
            return
        time.sleep(0.1)
