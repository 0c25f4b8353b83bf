"""Who may run what.

The commenter's level comes from Gitea's collaborator-permission endpoint, asked with the bot's token,
and never from the payload: ``sender`` and ``repository.permissions`` in a webhook describe whoever
Gitea chose to describe (GITEA.md §3) and are only hints. That endpoint answers 403 unless the token
belongs to a site or repo admin, which is the most common set-up mistake, so it gets its own message.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from core.config import PERMISSION_LEVELS


class BotTokenForbidden(Exception):
    """The bot's token may not read collaborator permissions (it needs admin rights)."""


def rank(level: str) -> int:
    """Order of permission levels: none < read < write < admin < owner. Unknown levels rank lowest."""
    return PERMISSION_LEVELS.index(level) if level in PERMISSION_LEVELS else 0


def allows(have: str, need: str) -> bool:
    return rank(have) >= rank(need)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    level: str  # the commenter's level on the repo
    needed: str
    message: str = ""  # why not, for the reply


def token_message(owner: str, repo: str) -> str:
    return (
        f"I cannot check who may run commands on {owner}/{repo}: Gitea answered 403 to "
        f"`GET /repos/{owner}/{repo}/collaborators/{{user}}/permission`. The bot's token must belong to a "
        'site admin or an admin of this repository (see the README, "Gitea token").'
    )


def permission_of(gitea, owner: str, repo: str, user: str) -> str:
    """The user's level on the repo; raises BotTokenForbidden when the bot's token is not an admin's."""
    from bot.gitea import GiteaForbidden, GiteaNotFound

    try:
        level = gitea.permission(owner, repo, user)
    except GiteaForbidden:
        raise BotTokenForbidden(token_message(owner, repo)) from None
    except GiteaNotFound:
        return "none"  # unknown user (deleted since commenting)
    return level if level in PERMISSION_LEVELS else "none"


def authorize(
    gitea,
    owner: str,
    repo: str,
    user: str,
    needed: str,
    command: str,
    cache: dict[tuple[str, str, str], str] | None = None,
) -> Decision:
    """May ``user`` run ``command`` (needing ``needed``) on owner/repo?

    ``cache`` (one per comment) saves asking Gitea again for each command line of the same comment.
    """
    key = (owner, repo, user)
    if cache is not None and key in cache:
        level = cache[key]
    else:
        level = permission_of(gitea, owner, repo, user)
        if cache is not None:
            cache[key] = level
    if allows(level, needed):
        return Decision(True, level, needed)
    return Decision(
        False,
        level,
        needed,
        f"@{user}, `/ssd {command}` needs **{needed}** permission on {owner}/{repo}; you have **{level}**. "
        "Ask a maintainer to run it or to change your access.",
    )


def is_bot_account(login: str, bot_login: str | None, other_bots: Iterable[str]) -> bool:
    """Comments by the bot itself (they come back as webhooks) and by configured bot accounts."""
    lowered = login.lower()
    return lowered == (bot_login or "").lower() or lowered in {name.lower() for name in other_bots}
