"""Fixtures for the Gitea stand-in (a plugin registered by tests/conftest.py).

``gitea``: a started stand-in with the repo ``acme/widgets``, the site-admin bot ``ssd-bot``, the maintainer
``alice`` (write) and the reader ``bob`` (read). ``gitea_client``: a ``GiteaClient`` on it with the bot's token
and short timeouts/backoff so retry tests take milliseconds.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.gitea_standin import GiteaStandin

BOT_TOKEN = "bot-token-0123456789"
ALICE_TOKEN = "alice-token-0123456789"
BOB_TOKEN = "bob-token-0123456789"
REPO = "acme/widgets"


def seeded_standin() -> GiteaStandin:
    standin = GiteaStandin()
    standin.add_user("ssd-bot", admin=True, token=BOT_TOKEN)
    standin.add_user("alice", token=ALICE_TOKEN)
    standin.add_user("bob", token=BOB_TOKEN)
    standin.add_repo(REPO)
    standin.grant(REPO, "alice", "write")
    standin.grant(REPO, "bob", "read")
    standin.bot_token = BOT_TOKEN  # type: ignore[attr-defined]
    standin.alice_token = ALICE_TOKEN  # type: ignore[attr-defined]
    standin.bob_token = BOB_TOKEN  # type: ignore[attr-defined]
    return standin


@pytest.fixture
def gitea() -> Iterator[GiteaStandin]:
    standin = seeded_standin().start()
    yield standin
    standin.stop()


@pytest.fixture
def gitea_client(gitea: GiteaStandin):
    from bot.gitea import GiteaClient

    return GiteaClient(gitea.url, BOT_TOKEN, timeout=2.0, retries=3, backoff=0.01, max_backoff=0.05)
