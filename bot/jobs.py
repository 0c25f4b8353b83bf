"""The RQ jobs of the Gitea conversation.

``process_delivery(inbox_id)`` (queue ``default``) turns one journaled webhook delivery into work: a merged
PR is ingested; a new comment is parsed for ``/ssd`` commands, each authorized, acknowledged (👀 on the
comment and one status comment) and enqueued as ``run_command`` on the command's queue.

``run_command(request)`` runs one command's handler and edits its status comment as it goes.

A job can also end without running its own error handling: the work horse or the whole worker is
SIGKILLed (OOM killer, a host going away). RQ 2.12 handles the two cases differently:

* horse killed, worker alive: the worker moves the job to the FailedJobRegistry ("Work-horse terminated
  unexpectedly") **without** calling the job's ``on_failure`` callback;
* worker killed: the job stays in the StartedJobRegistry until its heartbeat entry expires (about a
  minute and a half after the last heartbeat for the forking worker); ``StartedJobRegistry.cleanup``,
  run by any worker's maintenance (every 10 minutes) or by us, then calls ``on_failure`` with
  ``AbandonedJobError`` and moves the job to the FailedJobRegistry (or retries it when it has retries).

So each command job carries ``on_failure=on_job_failure`` and ``report_abandoned()`` (run by the scheduler
loop) runs the registry cleanup and then reports every failed command job whose status comment does not
say so yet. A killed job therefore always ends with "failed" on the issue.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import redis as redis_lib
from rq import Callback, Queue, get_current_job
from rq.exceptions import AbandonedJobError
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry, StartedJobRegistry

from bot import context
from bot.auth import BotTokenForbidden, authorize, is_bot_account
from bot.commands import registry
from bot.commands.api import CommandContext, GiteaAPI, cancel_key
from bot.commands.parse import ParsedCommand, parse_comment_capped
from bot.gitea import GiteaError, GiteaNotFound
from bot.reports import neutralize_bidi, public_text
from bot.status import Header, StatusComment
from core.config import Settings
from core.queues import ALL as QUEUES
from core.queues import queue as named_queue

log = logging.getLogger(__name__)

CLAIM_TTL = 30 * 24 * 3600  # longer than anyone replays a delivery
CLAIM_STALE = 600  # a claim this old that never finished belongs to a process that died mid-way
RESULT_TTL = 7 * 24 * 3600  # keep finished command jobs around for /ssd status and /ssd cancel answers
FAILURE_TTL = 30 * 24 * 3600
COMMENT_EVENTS = ("issue_comment", "pull_request_comment")
ABANDONED_REASON = (
    "the worker running this job stopped before it finished (killed or crashed). "
    "Nothing was reported by the command itself; run it again."
)


def job_id_for(comment_id: int, line: int) -> str:
    """Command job ids are short and typeable (``/ssd cancel cmd-9001-1``) and name their origin."""
    return f"cmd-{comment_id}-{line}"


# --------------------------------------------------------------------------- running a command


def new_error_id() -> str:
    return "err-" + uuid.uuid4().hex[:10]


def internal_error_reason(error_type: str, error_id: str) -> str:
    """What an issue is told about an unexpected failure: no message, traceback or path (they can hold server
    paths, hosts or data); the server log has them under ``error_id``."""
    return (
        f"internal error ({error_type}). The details are in the server log under error id `{error_id}`; "
        "an admin can look them up there."
    )


def run_command(request: dict[str, Any]) -> str:
    """Run one command (an RQ job). ``request`` is plain JSON: see ``_enqueue_command``."""
    job = get_current_job()
    settings = context.settings()
    gitea = context.gitea()
    conn = context.redis() if job is None else job.connection
    job_id = job.id if job is not None else request.get("job_id", "inline")
    header = Header(request["text"], request["user"], job_id)
    status = StatusComment(gitea, request["owner"], request["repo"], int(request["status_comment_id"]), header)
    ctx = CommandContext(
        gitea=gitea,
        settings=settings,
        owner=request["owner"],
        repo=request["repo"],
        index=int(request["index"]),
        user=request["user"],
        command=request["command"],
        job_id=job_id,
        redis=conn,
        status=status,
        job=job,
        issue_url=request.get("issue_url", ""),
    )
    started = time.monotonic()
    _update_meta(job, state="running", progress=0.0)
    try:
        status.running()
    except Exception:
        log.warning("job %s: could not mark the status comment running", job_id, exc_info=True)
    ctx._last_edit = time.monotonic()
    try:
        command = registry.get(request["command"])
        if command is None:
            raise registry.CommandError(f"`{request['command']}` is not a command of this worker's version")
        report = command.handler(ctx, dict(request.get("args") or {}))
    except Exception as exc:
        elapsed = time.monotonic() - started
        if isinstance(exc, registry.CommandError):
            reason = public_text(str(exc), settings.data_dir)  # an expected refusal: the reason says it all
        else:
            error_id = new_error_id()
            log.error("job %s (%s) failed; error id %s", job_id, request["text"], error_id, exc_info=exc)
            reason = internal_error_reason(type(exc).__name__, error_id)
            _update_meta(job, error_id=error_id)
        if not conn.exists(cancel_key(job_id)):
            try:
                status.failed(reason, elapsed)
                _update_meta(job, state="failed", reported=True)
            except Exception:  # the sweep reports it later from the FailedJobRegistry
                log.exception("job %s: could not report the failure on the issue", job_id)
        raise
    elapsed = time.monotonic() - started
    if conn.exists(cancel_key(job_id)):
        return report  # cancelled at the last moment: leave the "cancelled" comment alone
    status.done(public_text(report or "", settings.data_dir, other_paths=False), elapsed)
    _update_meta(job, state="done", progress=1.0, reported=True)
    return report


def _update_meta(job: Job | None, **values: Any) -> None:
    if job is not None:
        job.meta.update(values)
        job.save_meta()


# --------------------------------------------------------------------------- failures without a report


def _failure_reason(job: Job) -> str:
    result = job.latest_result()
    text = (result.exc_string if result is not None and result.exc_string else None) or job._exc_info or ""
    if "AbandonedJobError" in text:
        return ABANDONED_REASON
    if "Work-horse terminated unexpectedly" in text:
        first = text.strip().splitlines()[0]
        return f"the process running this job was killed ({first.strip().rstrip(';')}); out of memory?"
    last = [line for line in text.strip().splitlines() if line.strip()]
    if not last:
        return "the job failed without an error message"
    error_id = job.meta.get("error_id")  # run_command logged the details under it already
    if not error_id:
        error_id = new_error_id()
        log.error("job %s failed; error id %s:\n%s", job.id, error_id, text)
    return internal_error_reason(last[-1].split(":", 1)[0].strip()[:80], error_id)


def _report_failure(job: Job, reason: str, conn: redis_lib.Redis) -> bool:
    """Edit the job's status comment to failed, once. Returns whether it was reported now."""
    meta = job.get_meta(refresh=True)
    if not meta.get("ssd") or meta.get("reported") or conn.exists(cancel_key(job.id)):
        return False
    header = Header(meta.get("text", f"/ssd {meta.get('command', '?')}"), meta.get("requester", "?"), job.id)
    status = StatusComment(context.gitea(), meta["owner"], meta["repo"], int(meta["status_comment_id"]), header)
    try:
        status.failed(reason)
    except Exception:
        log.exception("job %s: could not report the failure; will try again on the next sweep", job.id)
        return False
    job.meta["reported"] = True
    job.meta["state"] = "failed"
    job.save_meta()
    return True


def on_job_failure(job: Job, connection: redis_lib.Redis, exc_type, exc_value, tb) -> None:
    """RQ's ``on_failure`` callback: an abandoned job (or one whose own report did not get out).

    Must not raise: RQ's registry cleanup would stop half-way. A report that cannot be posted now is
    left for ``report_abandoned``.
    """
    try:
        if exc_type is AbandonedJobError or isinstance(exc_value, AbandonedJobError):
            reason = ABANDONED_REASON
        else:
            meta = job.get_meta(refresh=True)
            if meta.get("reported"):
                return  # run_command reported it itself
            error_id = meta.get("error_id")  # set when run_command logged the details but could not post
            if not error_id:
                error_id = new_error_id()
                log.error("job %s failed; error id %s", job.id, error_id, exc_info=(exc_type, exc_value, tb))
            reason = internal_error_reason(getattr(exc_type, "__name__", "error"), error_id)
        _report_failure(job, reason, connection)
    except Exception:
        log.exception("job %s: failure callback failed", job.id)


def report_abandoned(conn: redis_lib.Redis | None = None, timestamp: float | None = None) -> list[str]:
    """Sweep: fail jobs whose worker died and report every failed command job not reported yet.

    ``timestamp`` is "now" for RQ's StartedJobRegistry expiry (tests pass a later time instead of
    waiting for the heartbeat entry to lapse). Returns the ids of the jobs reported by this call.
    """
    conn = conn or context.redis()
    reported: list[str] = []
    for name in QUEUES:
        queue = Queue(name, connection=conn)
        abandoned = StartedJobRegistry(queue=queue).get_expired_job_ids(timestamp)
        StartedJobRegistry(queue=queue).cleanup(timestamp=timestamp)  # calls on_job_failure for each
        failed_ids = FailedJobRegistry(queue=queue).get_job_ids()
        for job_id, job in zip(failed_ids, Job.fetch_many(failed_ids, connection=conn), strict=True):
            if job is None:
                continue  # expired since the registry was read
            already = job.meta.get("reported")
            if job.get_status() == JobStatus.STOPPED or conn.exists(cancel_key(job_id)):
                continue
            if already:
                if job_id in abandoned:
                    reported.append(job_id)  # reported just now by the failure callback
                continue
            if _report_failure(job, _failure_reason(job), conn):
                reported.append(job_id)
    return reported


# --------------------------------------------------------------------------- deliveries


class MalformedPayload(ValueError):
    """A signed delivery that lacks a field the bot needs, or has one of the wrong type. Retrying cannot
    help, so it is logged under an error id, marked processed and never retried."""


def _require(payload: Any, path: str, kind: type | tuple[type, ...]) -> Any:
    value = payload
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            raise MalformedPayload(f"payload has no {path}")
        value = value[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise MalformedPayload(f"payload field {path} is {type(value).__name__}, not {getattr(kind, '__name__', kind)}")
    return value


def check_payload(event_type: str, action: str, payload: dict[str, Any]) -> None:
    """Raise MalformedPayload unless every field the handlers read is there with its Gitea type."""
    if event_type == "pull_request" and action == "closed":
        _require(payload, "pull_request", dict)
        if payload["pull_request"].get("merged") is not True:
            return
        number = payload.get("number", payload["pull_request"].get("number"))
        if not isinstance(number, int) or isinstance(number, bool):
            raise MalformedPayload(f"payload field number is {type(number).__name__}, not int")
        _require(payload, "repository.full_name", str)
        for path in ("pull_request.title", "pull_request.body", "pull_request.merge_commit_sha"):
            if path.rsplit(".", 1)[1] in payload["pull_request"]:
                _require(payload, path, (str, type(None)))
    elif event_type in COMMENT_EVENTS and "comment" in payload and action == "created":
        _require(payload, "comment.id", int)
        _require(payload, "comment.user.login", str)
        _require(payload, "comment.body", (str, type(None)))
        _require(payload, "repository.name", str)
        _require(payload, "repository.owner.login", str)
        _require(payload, "issue.number", int)


def process_delivery(inbox_id: int) -> dict[str, Any]:
    """Handle one journaled delivery (an RQ job on ``default``). Returns a summary for logs and tests.

    The row is marked processed when this returns, or when the last attempt RQ will make fails; an
    earlier exception leaves it unprocessed for RQ's retry (and, should Redis lose the job, for the
    scheduler's ``enqueue_pending``).
    """
    from core.inbox import Inbox

    inbox = Inbox(context.engine())
    delivery = inbox.get(inbox_id)
    payload = delivery.payload
    action = payload.get("action") or delivery.action
    try:
        if not isinstance(action, str):
            raise MalformedPayload(f"payload field action is {type(action).__name__}, not str")
        check_payload(delivery.event_type, action, payload)
    except MalformedPayload as exc:
        error_id = new_error_id()
        log.error(
            "delivery %s (inbox %d, %s) is malformed and will not be retried; error id %s: %s",
            delivery.delivery_id,
            inbox_id,
            delivery.event_type,
            error_id,
            exc,
        )
        inbox.mark_processed(inbox_id, f"malformed ({error_id}): {exc}")
        return {"malformed": str(exc), "error_id": error_id}
    try:
        summary = _process(delivery, payload, action)
    except Exception as exc:
        if _is_last_attempt():  # RQ gives up after this: the row is done with, and says how it ended
            error_id = new_error_id()
            log.error(
                "delivery %s (inbox %d) failed for good; error id %s",
                delivery.delivery_id,
                inbox_id,
                error_id,
                exc_info=exc,
            )
            inbox.mark_processed(inbox_id, f"failed ({error_id}): {type(exc).__name__}")
        raise
    inbox.mark_processed(inbox_id, ", ".join(f"{key}: {value}" for key, value in summary.items()))
    return summary


def _process(delivery, payload: dict[str, Any], action: str) -> dict[str, Any]:
    gitea = context.gitea()
    if hasattr(gitea, "remember"):  # DryRunGitea answers later reads (issue, PR) from the payload
        gitea.remember(payload)
    if delivery.event_type == "pull_request" and action == "closed":
        if not (payload.get("pull_request") or {}).get("merged"):
            return {"ignored": "closed without merge"}
        from bot.ingest import ingest_merged_pr

        return {"ingested": ingest_merged_pr(delivery)}
    if delivery.event_type in COMMENT_EVENTS and "comment" in payload:
        if action != "created":
            return {"ignored": f"comment {action}"}  # edits do not re-run commands
        return handle_comment(payload)
    return {"ignored": f"{delivery.event_type}/{action}"}


@dataclass
class _CommentScope:
    owner: str
    repo: str
    index: int
    comment_id: int
    user: str
    issue_url: str


def _reply(gitea, scope: _CommentScope, parsed: ParsedCommand | None, text: str) -> None:
    quoted = f"`{registry.shown(parsed.text.replace('`', ''), 200)}`: " if parsed is not None and parsed.text else ""
    gitea.create_comment(scope.owner, scope.repo, scope.index, neutralize_bidi(f"⚠️ {quoted}{text}"))


@dataclass
class _CommentState:
    """What the command lines of one comment share: permission levels asked once, answers given once."""

    levels: dict[tuple[str, str, str], str] = field(default_factory=dict)
    token_refused: bool = False
    refused: bool = False


def _answer_once(conn: redis_lib.Redis, key: str, answer) -> bool:
    """Call ``answer()`` unless an earlier attempt of this delivery already did (a retry or a replay)."""
    if not conn.set(key, "answered", nx=True, ex=CLAIM_TTL):
        return False
    try:
        answer()
    except Exception:
        conn.delete(key)  # not answered after all: a retry of the delivery tries again
        raise
    return True


def _refused_key(scope: _CommentScope) -> str:
    """Set once a refusal was answered on this comment (so a retry or replay neither repeats it nor adds
    the over-cap note)."""
    return f"cmd:{scope.comment_id}:refused"


def _is_last_attempt() -> bool:
    """Whether the delivery job running now has no RQ retry left (outside a job, the caller retries)."""
    job = get_current_job()
    return job is not None and not job.retries_left


def _claim_value(owner: str | None) -> str:
    return f"claimed:{time.time():.3f}" + (f":{owner}" if owner else "")


def _claim(conn: redis_lib.Redis, key: str, owner: str | None = None) -> bool:
    """SET NX guard so a replayed delivery never runs a command line twice.

    The claim names the delivery job holding it (``owner``, by default the RQ job running now). RQ runs
    one attempt of a job at a time, so finding our own job's claim means an earlier attempt died between
    claiming and finishing (its work horse was killed): this attempt, RQ's retry, takes it over at once.
    If that attempt got as far as enqueueing the command job, the line is marked done instead of being
    enqueued again. A claim of unknown origin (no job) is taken over after CLAIM_STALE seconds.
    """
    if owner is None:
        job = get_current_job()
        owner = job.id if job is not None else None
    value = _claim_value(owner)
    if conn.set(key, value, nx=True, ex=CLAIM_TTL):
        return True
    current = conn.get(key) or b""
    if not current.startswith(b"claimed:"):
        return False
    stamp, _, holder = current[len(b"claimed:") :].decode(errors="replace").partition(":")
    if owner is None or holder != owner:
        try:
            age = time.time() - float(stamp)
        except ValueError:
            age = CLAIM_STALE + 1
        if age <= CLAIM_STALE:
            return False  # another delivery job is on this line now
    if conn.set(key, value, xx=True, ex=CLAIM_TTL, get=True) != current:
        return False  # someone else took it over first
    comment_id, _, line = key.removeprefix("cmd:").partition(":")
    command_job = job_id_for(int(comment_id), int(line)) if comment_id.isdigit() and line.isdigit() else None
    if command_job is not None and Job.exists(command_job, connection=conn):
        log.info("%s: the attempt that died had already enqueued %s", key, command_job)
        conn.set(key, f"done:{command_job}", ex=CLAIM_TTL)
        return False
    return True


def handle_comment(payload: dict[str, Any]) -> dict[str, Any]:
    """Parse, authorize, acknowledge and enqueue the commands of a new comment."""
    settings = context.settings()
    comment = payload["comment"]
    login = comment["user"]["login"]  # the comment's author; ``sender`` is never used for authorization
    if is_bot_account(login, context.bot_login(), settings.bot_accounts):
        return {"ignored": f"comment by bot account {login}"}
    commands, total = parse_comment_capped(comment.get("body") or "", settings.max_commands_per_comment)
    if not commands:
        return {"ignored": "no commands"}
    repository = payload["repository"]
    scope = _CommentScope(
        owner=repository["owner"]["login"],
        repo=repository["name"],
        index=int(payload["issue"]["number"]),
        comment_id=int(comment["id"]),
        user=login,
        issue_url=payload["issue"].get("html_url") or comment.get("html_url", ""),
    )
    gitea = context.gitea()
    conn = context.redis()
    try:
        gitea.add_reaction(scope.owner, scope.repo, scope.comment_id, "eyes")
    except Exception:  # the acknowledgement is a courtesy; the status comment is the real answer
        log.warning("could not react to comment %s", scope.comment_id, exc_info=True)
    outcome: dict[str, Any] = {"enqueued": [], "replied": [], "skipped": []}
    state = _CommentState()
    for parsed in commands:
        key = f"cmd:{scope.comment_id}:{parsed.line}"
        if not _claim(conn, key):
            outcome["skipped"].append(parsed.line)
            continue
        try:
            result, job_id = _handle_one(gitea, conn, settings, scope, parsed, state)
        except Exception:
            conn.delete(key)  # let a retry of this delivery do this command again
            raise
        conn.set(key, f"done:{job_id or result.value}", ex=CLAIM_TTL)
        if result is Outcome.ENQUEUED:
            outcome["enqueued"].append(job_id)
        else:
            outcome["replied"].append(result.value)
    refused = state.refused or state.token_refused or conn.exists(_refused_key(scope))
    if total > len(commands) and not refused:  # a refused commenter gets the refusal alone
        _answer_once(
            conn,
            f"cmd:{scope.comment_id}:over-cap",
            lambda: _reply(
                gitea,
                scope,
                None,
                f"this comment holds {total} command lines; I run at most "
                f"{settings.max_commands_per_comment} per comment (SSD_MAX_COMMANDS_PER_COMMENT), so the "
                f"{total - len(commands)} after line {commands[-1].line} were ignored.",
            ),
        )
        outcome["over_cap"] = total - len(commands)
    return outcome


class Outcome(StrEnum):
    """What became of one command line."""

    ENQUEUED = "enqueued"  # acknowledged with a status comment and queued as a job
    TOKEN_REFUSED = "token"  # the bot's token may not read permissions: said once per comment
    UNAUTHORIZED = "unauthorized"  # Gitea kept failing to say the commenter's permission
    REFUSED = "refused"  # the commenter lacks the permission
    ERROR = "error"  # not a command line at all
    UNKNOWN = "unknown"  # no such command
    USAGE = "usage"  # arguments that do not fit the command


def _handle_one(
    gitea: GiteaAPI,
    conn: redis_lib.Redis,
    settings: Settings,
    scope: _CommentScope,
    parsed: ParsedCommand,
    state: _CommentState,
) -> tuple[Outcome, str | None]:
    """One command line: look the command up, authorize, then validate. Returns the outcome and, when
    enqueued, the job id. A commenter without permission learns only that (once per comment), never usage
    help."""
    command = registry.get(parsed.name) if parsed.name else None
    # Unknown commands and unsplittable lines get help at the lowest level any command needs.
    needed = command.required_permission(settings) if command is not None else "read"
    name = command.name if command is not None else registry.shown(parsed.name or "", 40)
    try:
        decision = authorize(gitea, scope.owner, scope.repo, scope.user, needed, name, cache=state.levels)
    except BotTokenForbidden as exc:
        if not state.token_refused:
            _reply(gitea, scope, None, str(exc))
        state.token_refused = True
        return Outcome.TOKEN_REFUSED, None
    except GiteaError as exc:  # the permission API failed past the client's own retries
        if not _is_last_attempt():
            raise  # RQ retries the delivery later; this line's claim is released
        log.error("comment %s: cannot authorize %s: %s", scope.comment_id, scope.user, exc)
        answer = f"HTTP {exc.status}" if exc.status else "no answer"
        _reply(
            gitea,
            scope,
            parsed,
            f"@{scope.user}, this command could not be authorized: Gitea kept failing "
            f"when asked for your permission on {scope.owner}/{scope.repo} ({answer}). Nothing was "
            "run; post the command again later.",
        )
        return Outcome.UNAUTHORIZED, None
    if not decision.allowed:
        state.refused = True
        _answer_once(conn, _refused_key(scope), lambda: _reply(gitea, scope, None, decision.message))
        return Outcome.REFUSED, None
    if command is None:
        if not parsed.name:
            _reply(gitea, scope, parsed, f"{registry.shown(parsed.error or 'no command name', 120)}. Try `/ssd help`.")
            return Outcome.ERROR, None
        near = registry.nearest(parsed.name)
        if near:
            _reply(
                gitea,
                scope,
                parsed,
                f"unknown command `{name}`. Did you mean `/ssd {near}`?\n\n"
                f"Usage: `{registry.get(near).usage}`\n\n`/ssd help` lists every command.",
            )
        else:
            names = ", ".join(f"`{c.name}`" for c in registry.commands())
            _reply(gitea, scope, parsed, f"unknown command `{name}`. Commands: {names}. `/ssd help` explains them.")
        return Outcome.UNKNOWN, None
    try:
        args = command.validate(parsed, settings)
        if command.check is not None:
            command.check(settings, args)
    except (registry.UsageError, registry.CommandError) as exc:
        _reply(gitea, scope, parsed, f"{public_text(str(exc), settings.data_dir)}.\n\nUsage: `{command.usage}`")
        return Outcome.USAGE, None
    return Outcome.ENQUEUED, _enqueue_command(gitea, conn, settings, scope, parsed, command, args)


def status_comment_key(job_id: str) -> str:
    return f"ssd:status-comment:{job_id}"


def _status_comment_once(
    gitea, conn: redis_lib.Redis, scope: _CommentScope, header: Header, job_id: str, position: int
) -> StatusComment:
    """Post the command's status comment, or take over the one an earlier attempt of this delivery posted
    before it died (a killed work horse): the retry must not leave a second comment saying "queued" forever."""
    earlier = conn.get(status_comment_key(job_id))
    if earlier is not None:
        status = StatusComment(gitea, scope.owner, scope.repo, int(earlier), header)
        try:
            status.queued(position)
            return status
        except GiteaNotFound:
            pass  # deleted since: post a new one
    status = StatusComment.post(gitea, scope.owner, scope.repo, scope.index, header, position)
    conn.set(status_comment_key(job_id), status.comment_id, ex=CLAIM_TTL)
    return status


def _enqueue_command(
    gitea,
    conn,
    settings: Settings,
    scope: _CommentScope,
    parsed: ParsedCommand,
    command: registry.Command,
    args: dict[str, Any],
) -> str:
    job_id = job_id_for(scope.comment_id, parsed.line)
    queue = named_queue(command.queue_name(settings), conn)
    position = queue.count + 1
    header = Header(parsed.text, scope.user, job_id)
    status = _status_comment_once(gitea, conn, scope, header, job_id, position)
    request = {
        "owner": scope.owner,
        "repo": scope.repo,
        "index": scope.index,
        "issue_url": scope.issue_url,
        "comment_id": scope.comment_id,
        "line": parsed.line,
        "user": scope.user,
        "command": command.name,
        "text": parsed.text,
        "args": args,
        "status_comment_id": status.comment_id,
    }
    meta = {
        "ssd": True,
        "owner": scope.owner,
        "repo": scope.repo,
        "index": scope.index,
        "issue_url": scope.issue_url,
        "requester": scope.user,
        "command": command.name,
        "text": parsed.text,
        "status_comment_id": status.comment_id,
        "state": "queued",
    }
    queue.enqueue(
        "bot.jobs.run_command",
        request,
        job_id=job_id,
        meta=meta,
        description=parsed.text,
        job_timeout=command.timeout or settings.job_timeout,
        result_ttl=RESULT_TTL,
        failure_ttl=FAILURE_TTL,
        on_failure=Callback("bot.jobs.on_job_failure"),
    )
    return job_id
