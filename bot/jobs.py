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
import traceback
from dataclasses import dataclass, field
from typing import Any

import redis as redis_lib
from rq import Callback, Queue, get_current_job
from rq.exceptions import AbandonedJobError
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry, StartedJobRegistry

from bot import context
from bot.auth import BotTokenForbidden, authorize, is_bot_account
from bot.commands import registry
from bot.commands.parse import ParsedCommand, parse_comment
from bot.status import Header, StatusComment
from ssd.config import Settings
from ssd.queues import ALL as QUEUES
from ssd.queues import queue as named_queue

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


def cancel_key(job_id: str) -> str:
    return f"ssd:cancelled:{job_id}"


def job_id_for(comment_id: int, line: int) -> str:
    """Command job ids are short and typeable (``/ssd cancel cmd-9001-1``) and name their origin."""
    return f"cmd-{comment_id}-{line}"


# --------------------------------------------------------------------------- running a command


@dataclass
class CommandContext:
    """What a handler gets: where it was asked, by whom, and ways to talk back."""

    gitea: Any
    settings: Settings
    owner: str
    repo: str
    index: int
    user: str
    command: str
    job_id: str
    redis: redis_lib.Redis
    status: StatusComment | None = None
    job: Job | None = None
    issue_url: str = ""
    _last_edit: float = field(default=0.0, repr=False)

    def progress(self, fraction: float, message: str = "") -> None:
        """Record progress in the job (always) and in the status comment (at most every
        ``settings.status_edit_interval`` seconds, so a chatty handler cannot flood Gitea)."""
        fraction = min(1.0, max(0.0, float(fraction)))
        if self.job is not None:
            self.job.meta.update(progress=fraction, message=message)
            self.job.save_meta()
        now = time.monotonic()
        if self.status is None or now - self._last_edit < self.settings.status_edit_interval:
            return
        if self.redis.exists(cancel_key(self.job_id)):
            return  # cancelled: the comment already says so
        self._last_edit = now
        try:
            self.status.running(fraction, message)
        except Exception:  # a progress edit is best effort; the final edit is not
            log.warning("job %s: progress edit failed", self.job_id, exc_info=True)

    def attach(self, filename: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        """Upload a file (a plot) to the status comment; returns its download URL for the report."""
        if self.status is None:
            raise RuntimeError("no status comment to attach to")
        uploaded = self.gitea.upload_comment_attachment(
            self.owner, self.repo, self.status.comment_id, filename, data, content_type
        )
        return uploaded["browser_download_url"]


def _short_traceback(exc: BaseException, limit: int = 6) -> str:
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=-limit))
    return text[-4000:]


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
        gitea=gitea, settings=settings, owner=request["owner"], repo=request["repo"], index=int(request["index"]),
        user=request["user"], command=request["command"], job_id=job_id, redis=conn, status=status, job=job,
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
            reason, trace = str(exc), ""  # an expected refusal: the reason says it all
        else:
            reason, trace = f"{type(exc).__name__}: {exc}", _short_traceback(exc)
        if not conn.exists(cancel_key(job_id)):
            try:
                status.failed(reason, trace, elapsed)
                _update_meta(job, state="failed", reported=True)
            except Exception:  # the sweep reports it later from the FailedJobRegistry
                log.exception("job %s: could not report the failure on the issue", job_id)
        raise
    elapsed = time.monotonic() - started
    if conn.exists(cancel_key(job_id)):
        return report  # cancelled at the last moment: leave the "cancelled" comment alone
    status.done(report or "", elapsed)
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
    return last[-1][:500] if last else "the job failed without an error message"


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
            reason = f"{getattr(exc_type, '__name__', exc_type)}: {exc_value}"
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


def process_delivery(inbox_id: int) -> dict[str, Any]:
    """Handle one journaled delivery (an RQ job on ``default``). Returns a summary for logs and tests."""
    from webhooks.inbox import Inbox

    delivery = Inbox(context.engine()).get(inbox_id)
    payload = delivery.payload
    gitea = context.gitea()
    if hasattr(gitea, "remember"):  # DryRunGitea answers later reads (issue, PR) from the payload
        gitea.remember(payload)
    action = payload.get("action") or delivery.action
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
    quoted = f"`{parsed.text.replace('`', '')}`: " if parsed is not None and parsed.text else ""
    gitea.create_comment(scope.owner, scope.repo, scope.index, f"⚠️ {quoted}{text}")


def _claim(conn: redis_lib.Redis, key: str) -> bool:
    """SET NX guard so a replayed delivery never runs a command twice. A claim left by a process that
    died before finishing is taken over after CLAIM_STALE seconds, so a retry still runs the command."""
    value = f"claimed:{time.time():.3f}"
    if conn.set(key, value, nx=True, ex=CLAIM_TTL):
        return True
    current = conn.get(key) or b""
    if not current.startswith(b"claimed:"):
        return False
    try:
        age = time.time() - float(current[len(b"claimed:"):])
    except ValueError:
        age = CLAIM_STALE + 1
    if age <= CLAIM_STALE:
        return False
    return conn.set(key, value, xx=True, ex=CLAIM_TTL, get=True) == current  # only one taker wins


def handle_comment(payload: dict[str, Any]) -> dict[str, Any]:
    """Parse, authorize, acknowledge and enqueue the commands of a new comment."""
    settings = context.settings()
    comment = payload["comment"]
    login = comment["user"]["login"]  # the comment's author; ``sender`` is never used for authorization
    if is_bot_account(login, context.bot_login(), settings.bot_accounts):
        return {"ignored": f"comment by bot account {login}"}
    commands = parse_comment(comment.get("body") or "")
    if not commands:
        return {"ignored": "no commands"}
    repository = payload["repository"]
    scope = _CommentScope(
        owner=repository["owner"]["login"], repo=repository["name"], index=int(payload["issue"]["number"]),
        comment_id=int(comment["id"]), user=login,
        issue_url=payload["issue"].get("html_url") or comment.get("html_url", ""),
    )
    gitea = context.gitea()
    conn = context.redis()
    try:
        gitea.add_reaction(scope.owner, scope.repo, scope.comment_id, "eyes")
    except Exception:  # the acknowledgement is a courtesy; the status comment is the real answer
        log.warning("could not react to comment %s", scope.comment_id, exc_info=True)
    outcome: dict[str, Any] = {"enqueued": [], "replied": [], "skipped": []}
    token_refused = False
    levels: dict[tuple[str, str, str], str] = {}
    for parsed in commands:
        key = f"cmd:{scope.comment_id}:{parsed.line}"
        if not _claim(conn, key):
            outcome["skipped"].append(parsed.line)
            continue
        try:
            result = _handle_one(gitea, conn, settings, scope, parsed, token_refused, levels)
        except Exception:
            conn.delete(key)  # let a retry of this delivery do this command again
            raise
        if result == "token":
            token_refused = True
        conn.set(key, f"done:{result}", ex=CLAIM_TTL)
        outcome["replied" if not result.startswith("cmd-") else "enqueued"].append(result)
    return outcome


def _handle_one(gitea, conn, settings: Settings, scope: _CommentScope, parsed: ParsedCommand,
                token_refused: bool, levels: dict[tuple[str, str, str], str]) -> str:
    """One command line. Returns the job id, or what was replied instead."""
    command = registry.get(parsed.name) if parsed.name else None
    if command is None:
        if not parsed.name:
            _reply(gitea, scope, parsed, f"{parsed.error or 'no command name'}. Try `/ssd help`.")
            return "error"
        near = registry.nearest(parsed.name)
        if near:
            _reply(gitea, scope, parsed, f"unknown command `{parsed.name}`. Did you mean `/ssd {near}`?\n\n"
                   f"Usage: `{registry.get(near).usage}`\n\n`/ssd help` lists every command.")
        else:
            names = ", ".join(f"`{c.name}`" for c in registry.commands())
            _reply(gitea, scope, parsed, f"unknown command `{parsed.name}`. Commands: {names}. "
                   "`/ssd help` explains them.")
        return "unknown"
    try:
        args = command.validate(parsed)
    except registry.UsageError as exc:
        _reply(gitea, scope, parsed, f"{exc}.\n\nUsage: `{command.usage}`")
        return "usage"
    needed = command.required_permission(settings)
    try:
        decision = authorize(gitea, scope.owner, scope.repo, scope.user, needed, command.name, cache=levels)
    except BotTokenForbidden as exc:
        if not token_refused:
            _reply(gitea, scope, None, str(exc))
        return "token"
    if not decision.allowed:
        _reply(gitea, scope, parsed, decision.message)
        return "refused"
    return _enqueue_command(gitea, conn, settings, scope, parsed, command, args)


def _enqueue_command(gitea, conn, settings: Settings, scope: _CommentScope, parsed: ParsedCommand,
                     command: registry.Command, args: dict[str, Any]) -> str:
    job_id = job_id_for(scope.comment_id, parsed.line)
    queue = named_queue(command.queue_name(settings), conn)
    position = queue.count + 1
    header = Header(parsed.text, scope.user, job_id)
    status = StatusComment.post(gitea, scope.owner, scope.repo, scope.index, header, position)
    request = {
        "owner": scope.owner, "repo": scope.repo, "index": scope.index, "issue_url": scope.issue_url,
        "comment_id": scope.comment_id, "line": parsed.line, "user": scope.user, "command": command.name,
        "text": parsed.text, "args": args, "status_comment_id": status.comment_id,
    }
    meta = {
        "ssd": True, "owner": scope.owner, "repo": scope.repo, "index": scope.index,
        "issue_url": scope.issue_url, "requester": scope.user, "command": command.name, "text": parsed.text,
        "status_comment_id": status.comment_id, "state": "queued",
    }
    queue.enqueue(
        "bot.jobs.run_command", request, job_id=job_id, meta=meta, description=parsed.text,
        job_timeout=command.timeout or settings.job_timeout, result_ttl=RESULT_TTL, failure_ttl=FAILURE_TTL,
        on_failure=Callback("bot.jobs.on_job_failure"),
    )
    return job_id
