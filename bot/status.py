"""The status comment: one per command, edited in place as its job moves.

queued (with position) -> running (live progress) -> done (the report) | failed (the reason) | cancelled.
The body ends with a hidden marker naming the job, so a person (or a later sweep) can tell which job a
comment belongs to. A failure shows a short reason, never a traceback (details go to the server log under
an error id), and bidi control characters in echoed text are shown, not obeyed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.reports import neutralize_bidi
from core.markdown import truncate_for_comment

log = logging.getLogger(__name__)

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"


@dataclass(frozen=True)
class Header:
    """What every state of the comment shows: which command, for whom, which job."""

    command_text: str  # the command line as written, e.g. "/ssd eval t=0.2"
    requester: str
    job_id: str

    def render(self) -> str:
        text = self.command_text if len(self.command_text) <= 200 else self.command_text[:197] + "…"
        return f"`{text.replace('`', '')}` · requested by @{self.requester} · job `{self.job_id}`"


def progress_bar(fraction: float, width: int = 20) -> str:
    fraction = min(1.0, max(0.0, fraction))
    filled = round(fraction * width)
    return "█" * filled + "░" * (width - filled)


def render(
    header: Header,
    state: str,
    *,
    position: int | None = None,
    fraction: float | None = None,
    message: str = "",
    report: str = "",
    reason: str = "",
    by: str = "",
    elapsed: float | None = None,
) -> str:
    """The comment body for one state. Pure, so each state can be tested as text."""
    took = f" in {elapsed:.1f} s" if elapsed is not None else ""
    if state == QUEUED:
        line = f"⏳ **queued**, position {position}" if position else "⏳ **queued**"
        body = line
    elif state == RUNNING:
        line = "⚙️ **running**"
        if fraction is not None:
            line += f" `{progress_bar(fraction)}` {fraction:.0%}"
        body = line + (f"\n\n{message}" if message else "")
    elif state == DONE:
        body = f"✅ **done**{took}" + (f"\n\n{report.strip()}" if report.strip() else "")
    elif state == FAILED:
        body = f"❌ **failed**{took}: {reason or 'unknown error'}"
    elif state == CANCELLED:
        body = "🚫 **cancelled**" + (f" by @{by}" if by else "") + (f"\n\n{message}" if message else "")
    else:
        raise ValueError(f"unknown status {state!r}")
    text = f"{header.render()}\n\n{body}\n\n<!-- ssd-job:{header.job_id} state:{state} -->"
    return truncate_for_comment(neutralize_bidi(text))


class StatusComment:
    """A status comment already posted on the issue; each method edits it to a new state."""

    def __init__(self, gitea, owner: str, repo: str, comment_id: int, header: Header) -> None:
        self.gitea = gitea
        self.owner = owner
        self.repo = repo
        self.comment_id = comment_id
        self.header = header

    @classmethod
    def post(cls, gitea, owner: str, repo: str, index: int, header: Header, position: int | None) -> StatusComment:
        """Create the comment in its queued state."""
        created = gitea.create_comment(owner, repo, index, render(header, QUEUED, position=position))
        return cls(gitea, owner, repo, int(created["id"]), header)

    def edit(self, state: str, **fields) -> None:
        self.gitea.edit_comment(self.owner, self.repo, self.comment_id, render(self.header, state, **fields))

    def queued(self, position: int | None) -> None:
        self.edit(QUEUED, position=position)

    def running(self, fraction: float | None = None, message: str = "") -> None:
        self.edit(RUNNING, fraction=fraction, message=message)

    def done(self, report: str, elapsed: float | None = None) -> None:
        self.edit(DONE, report=report, elapsed=elapsed)

    def failed(self, reason: str, elapsed: float | None = None) -> None:
        self.edit(FAILED, reason=reason, elapsed=elapsed)

    def cancelled(self, by: str = "", message: str = "") -> None:
        self.edit(CANCELLED, by=by, message=message)
