"""The handler API: both Gitea clients satisfy ``GiteaAPI`` with the same signatures, so a handler written
against the Protocol runs unchanged in dry-run mode."""

from __future__ import annotations

import inspect

import pytest

from bot.commands.api import GiteaAPI
from bot.gitea import DryRunGitea, GiteaClient

PROTOCOL_METHODS = sorted(
    name for name, member in vars(GiteaAPI).items() if callable(member) and not name.startswith("_")
)


def _parameters(function: object) -> list[tuple[str, object, object]]:
    signature = inspect.signature(function)
    return [(p.name, p.kind, p.default) for p in signature.parameters.values() if p.name != "self"]


def test_the_protocol_names_what_handlers_use() -> None:
    assert {"create_comment", "edit_comment", "upload_comment_attachment", "permission", "get_issue"} <= set(
        PROTOCOL_METHODS
    )


@pytest.mark.parametrize("client", [GiteaClient, DryRunGitea])
@pytest.mark.parametrize("name", PROTOCOL_METHODS)
def test_each_client_has_the_method_with_the_protocols_signature(client: type, name: str) -> None:
    assert hasattr(client, name), f"{client.__name__} lacks {name}"
    assert _parameters(getattr(client, name)) == _parameters(getattr(GiteaAPI, name))


def test_instances_are_gitea_apis(tmp_path) -> None:
    assert isinstance(DryRunGitea(tmp_path / "outbox"), GiteaAPI)
    assert isinstance(GiteaClient("http://127.0.0.1:9", "token"), GiteaAPI)
    assert not isinstance(object(), GiteaAPI)
