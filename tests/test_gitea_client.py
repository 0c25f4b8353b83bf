"""GiteaClient and DryRunGitea against the Gitea stand-in over real HTTP."""

from __future__ import annotations

import json
import logging
import socket
import time

import pytest
import requests

from bot.gitea import (
    DryRunGitea,
    GiteaClient,
    GiteaError,
    GiteaForbidden,
    GiteaNotFound,
    GiteaUnauthorized,
    gitea_from_settings,
)
from core.config import Settings
from core.markdown import COMMENT_LIMIT
from tests.conftest_gitea import ALICE_TOKEN, BOB_TOKEN, REPO
from tests.gitea_standin import GiteaStandin

DIFF = "diff --git a/x.py b/x.py\n--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-x = 1\n+x = 2\n"


def client_for(gitea: GiteaStandin, token: str, **kwargs) -> GiteaClient:
    options = {"timeout": 2.0, "retries": 3, "backoff": 0.01, "max_backoff": 0.05} | kwargs
    return GiteaClient(gitea.url, token, **options)


# ---- every method -----------------------------------------------------------------------------------------


def test_whoami_version_and_auth_header(gitea, gitea_client):
    assert gitea_client.whoami() == "ssd-bot"
    assert gitea_client.whoami() == "ssd-bot"
    assert len(gitea.calls("GET", "/api/v1/user")) == 1  # cached
    assert gitea_client.version() == "1.25.4"
    assert gitea.requests[0].headers["Authorization"] == f"token {gitea.bot_token}"


def test_permission_levels(gitea, gitea_client):
    gitea.add_user("carol")
    gitea.grant(REPO, "carol", "admin")
    gitea.add_repo("bob/private", private=True)
    assert gitea_client.permission("acme", "widgets", "alice") == "write"
    assert gitea_client.permission("acme", "widgets", "bob") == "read"
    assert gitea_client.permission("acme", "widgets", "carol") == "admin"
    assert gitea_client.permission("acme", "widgets", "acme") == "owner"
    assert gitea_client.permission("bob", "private", "alice") == "none"
    # An unknown user has no access: fail closed.
    assert gitea_client.permission("acme", "widgets", "mallory") == "none"


def test_permission_403_says_the_token_must_be_admin(gitea):
    bob = client_for(gitea, BOB_TOKEN)
    assert bob.permission("acme", "widgets", "bob") == "read"  # one's own permission is allowed
    with pytest.raises(GiteaForbidden) as caught:
        bob.permission("acme", "widgets", "alice")
    assert caught.value.status == 403
    assert "site administrator" in str(caught.value) and "admin of the repository" in str(caught.value)
    assert len(gitea.calls("GET", "collaborators/alice/permission")) == 1  # 403 is not retried


def test_comments_create_get_list_edit(gitea, gitea_client):
    issue = gitea.add_issue(REPO, "Widget breaks", "It breaks.")
    created = gitea_client.create_comment("acme", "widgets", issue["number"], "👀 queued")
    assert created["body"] == "👀 queued" and created["user"]["login"] == "ssd-bot"
    assert created["html_url"].endswith(f"/acme/widgets/issues/{issue['number']}#issuecomment-{created['id']}")
    post = gitea.calls("POST", "/comments")[-1]
    assert post.json == {"body": "👀 queued"} and post.status == 201
    edited = gitea_client.edit_comment("acme", "widgets", created["id"], "done")
    assert edited["body"] == "done" and gitea.calls("PATCH")[-1].status == 200
    assert gitea_client.get_comment("acme", "widgets", created["id"])["body"] == "done"
    listed = gitea_client.list_comments("acme", "widgets", issue["number"])
    assert [c["id"] for c in listed] == [created["id"]]
    with pytest.raises(GiteaNotFound):
        gitea_client.edit_comment("acme", "widgets", 4242, "x")


def test_comment_on_missing_index_is_not_found_not_a_retried_500(gitea, gitea_client):
    with pytest.raises(GiteaNotFound, match="does not exist"):
        gitea_client.create_comment("acme", "widgets", 77, "hello")
    assert [r.status for r in gitea.calls("POST", "/issues/77/comments")] == [500]


def test_comment_on_locked_issue_needs_write(gitea):
    issue = gitea.add_issue(REPO, "Locked", locked=True)
    with pytest.raises(GiteaForbidden):
        client_for(gitea, BOB_TOKEN).create_comment("acme", "widgets", issue["number"], "me too")
    assert client_for(gitea, ALICE_TOKEN).create_comment("acme", "widgets", issue["number"], "ok")["id"]


def test_reaction_new_then_existing(gitea, gitea_client):
    issue = gitea.add_issue(REPO, "x")
    comment = gitea.add_comment(REPO, issue["number"], "/ssd help", user="alice")
    first = gitea_client.add_reaction("acme", "widgets", comment["id"])
    again = gitea_client.add_reaction("acme", "widgets", comment["id"], "eyes")
    assert first["content"] == again["content"] == "eyes"
    assert [r.status for r in gitea.calls("POST", "/reactions")] == [201, 200]
    assert gitea.calls("POST", "/reactions")[0].json == {"content": "eyes"}
    assert len(gitea.comments[comment["id"]]["reactions"]) == 1
    with pytest.raises(GiteaForbidden):
        gitea_client.add_reaction("acme", "widgets", comment["id"], "thumbsup")


def test_issue_pull_and_diff(gitea, gitea_client):
    issue = gitea.add_issue(REPO, "Bug", "Steps")
    pull = gitea.add_pull(REPO, "Fix bug", f"Fixes #{issue['number']}", diff=DIFF, merged=True, merged_by="alice")
    got = gitea_client.get_issue("acme", "widgets", issue["number"])
    assert got["title"] == "Bug" and got["pull_request"] is None
    as_issue = gitea_client.get_issue("acme", "widgets", pull["number"])
    assert as_issue["pull_request"]["merged"] is True
    pr = gitea_client.get_pull("acme", "widgets", pull["number"])
    assert pr["merged"] is True and pr["merged_by"]["login"] == "alice" and len(pr["merge_commit_sha"]) == 40
    assert gitea_client.pull_diff("acme", "widgets", pull["number"]) == DIFF
    with pytest.raises(GiteaNotFound):
        gitea_client.get_pull("acme", "widgets", issue["number"])
    with pytest.raises(GiteaNotFound):
        gitea_client.pull_diff("acme", "widgets", 999)


def test_repo_tree_pages_and_raw(gitea, gitea_client):
    files = {f"src/mod{i}.py": f"x = {i}\n" for i in range(7)} | {"README.md": "# widgets\n"}
    sha = gitea.add_files(REPO, files)
    gitea.git_trees_per_page = 3  # force several pages
    repo = gitea_client.get_repo("acme", "widgets")
    assert repo["full_name"] == "acme/widgets" and repo["default_branch"] == "main"
    assert repo["permissions"] == {"admin": True, "push": True, "pull": True}
    entries = gitea_client.list_tree("acme", "widgets", "main")
    blobs = sorted(e["path"] for e in entries if e["type"] == "blob")
    assert blobs == sorted(files)
    assert [e["path"] for e in entries if e["type"] == "tree"] == ["src"]
    assert len(gitea.calls("GET", "/git/trees/main")) == 3  # 9 entries, 3 per page
    assert [e["path"] for e in gitea_client.list_tree("acme", "widgets", sha)] == [e["path"] for e in entries]
    assert gitea_client.get_raw("acme", "widgets", "src/mod3.py", "main") == b"x = 3\n"
    assert gitea_client.get_raw("acme", "widgets", "src/mod3.py", sha) == b"x = 3\n"
    with pytest.raises(GiteaNotFound):
        gitea_client.get_raw("acme", "widgets", "nope.py", "main")
    with pytest.raises(GiteaNotFound):
        gitea_client.list_tree("acme", "widgets", "no-such-branch")


def test_hooks_create_list_update_delete(gitea, gitea_client):
    gitea_client.hook_page_size = 2
    for n in range(3):
        gitea_client.create_hook("acme", "widgets", f"https://bot.example/{n}", "s3cret")
    sent = gitea.calls("POST", "/hooks")[0].json
    assert sent == {
        "type": "gitea",
        "config": {"url": "https://bot.example/0", "content_type": "json", "secret": "s3cret"},
        "events": ["pull_request_only", "issue_comment", "pull_request_comment"],
        "branch_filter": "",
        "authorization_header": "",
        "active": True,
    }
    hooks = gitea_client.list_hooks("acme", "widgets")
    assert [h["config"]["url"] for h in hooks] == [f"https://bot.example/{n}" for n in range(3)]
    assert all("secret" not in h["config"] and h["active"] for h in hooks)
    updated = gitea_client.update_hook("acme", "widgets", hooks[0]["id"], "https://bot.example/0", ["issue_comment"])
    assert updated["events"] == ["issue_comment"]
    gitea_client.delete_hook("acme", "widgets", hooks[0]["id"])
    assert len(gitea_client.list_hooks("acme", "widgets")) == 2
    with pytest.raises(GiteaForbidden):  # hooks need repo admin
        client_for(gitea, ALICE_TOKEN).list_hooks("acme", "widgets")


def test_upload_comment_attachment(gitea, gitea_client):
    issue = gitea.add_issue(REPO, "x")
    comment = gitea_client.create_comment("acme", "widgets", issue["number"], "report")
    data = json.dumps({"pass@1": 0.5}).encode()
    attachment = gitea_client.upload_comment_attachment(
        "acme", "widgets", comment["id"], "result.json", data, "application/json"
    )
    assert attachment["name"] == "result.json" and attachment["size"] == len(data)
    assert requests.get(attachment["browser_download_url"], timeout=5).content == data
    upload = gitea.calls("POST", "/assets")[-1]
    assert upload.status == 201 and upload.headers["Content-Type"].startswith("multipart/form-data")
    assert gitea_client.get_comment("acme", "widgets", comment["id"])["assets"][0]["uuid"] == attachment["uuid"]


# ---- failures, retries, timeouts ----------------------------------------------------------------------------


def test_401_and_403_are_not_swapped(gitea):
    with pytest.raises(GiteaUnauthorized) as caught:
        client_for(gitea, "wrong-token").whoami()
    assert caught.value.status == 401
    with pytest.raises(GiteaForbidden) as caught:
        client_for(gitea, BOB_TOKEN).create_hook("acme", "widgets", "https://x", "s")
    assert caught.value.status == 403
    assert len(gitea.calls("GET", "/user")) == 1  # neither is retried


def test_500_then_recovers(gitea, gitea_client):
    issue = gitea.add_issue(REPO, "Flaky")
    gitea.fail_next(2, status=500)
    assert gitea_client.get_issue("acme", "widgets", issue["number"])["title"] == "Flaky"
    assert [r.status for r in gitea.calls("GET", f"/issues/{issue['number']}")] == [500, 500, 200]


def test_gives_up_after_the_configured_retries(gitea, gitea_client):
    gitea.fail_next(10, status=503)
    with pytest.raises(GiteaError) as caught:
        gitea_client.get_repo("acme", "widgets")
    assert caught.value.status == 503 and "after 4 attempts" in str(caught.value)
    assert len(gitea.requests) == 4  # 1 + retries=3


def test_hang_times_out_then_retries(gitea):
    client = client_for(gitea, gitea.bot_token, timeout=0.3)
    gitea.hang_next(1, 3.0)
    started = time.monotonic()
    assert client.get_repo("acme", "widgets")["name"] == "widgets"
    elapsed = time.monotonic() - started
    assert 0.3 <= elapsed < 2.5
    assert len(gitea.calls("GET", "/repos/acme/widgets")) == 2


def test_py_gitea_calls_get_the_timeout_too(gitea):
    client = client_for(gitea, gitea.bot_token, timeout=0.3)
    gitea.hang_next(1, 3.0)
    started = time.monotonic()
    with pytest.raises(requests.Timeout):
        client.api.get_version()  # py-gitea's own method, on the same session
    assert time.monotonic() - started < 2.5


def test_429_waits_for_retry_after(gitea, gitea_client):
    gitea.fail_next(1, status=429, headers={"Retry-After": "1"})
    started = time.monotonic()
    assert gitea_client.version() == "1.25.4"
    assert time.monotonic() - started >= 1.0
    assert [r.status for r in gitea.calls("GET", "/version")] == [429, 200]


def test_connection_refused_is_retried_then_reported():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    client = GiteaClient(f"http://127.0.0.1:{port}", "t", timeout=0.5, retries=2, backoff=0.01)
    with pytest.raises(GiteaError) as caught:
        client.whoami()
    assert caught.value.status == 0 and "after 3 attempts" in str(caught.value)


def test_comment_whose_answer_was_lost_is_not_posted_twice(gitea):
    issue = gitea.add_issue(REPO, "x")
    client = client_for(gitea, gitea.bot_token, timeout=0.3)
    gitea.hang_next(1, 1.0, after=True)  # Gitea stores the comment, the answer comes too late
    created = client.create_comment("acme", "widgets", issue["number"], "status: queued (job 17)")
    time.sleep(0.8)  # let the late answer finish
    comments = gitea.comments_on(REPO, issue["number"])
    assert [c["body"] for c in comments] == ["status: queued (job 17)"]
    assert created["id"] == comments[0]["id"]
    assert len(gitea.calls("POST", "/comments")) == 1


def test_comment_retried_after_500_is_posted_once(gitea, gitea_client):
    issue = gitea.add_issue(REPO, "x")
    gitea.fail_next(1, status=502)
    gitea_client.create_comment("acme", "widgets", issue["number"], "hello")
    assert [c["body"] for c in gitea.comments_on(REPO, issue["number"])] == ["hello"]


# ---- long bodies ------------------------------------------------------------------------------------------


def _lines(count: int, width: int = 99) -> str:
    return "".join(f"{n:06d} " + "x" * (width - 8) + "\n" for n in range(count))


def test_long_comment_is_split_into_continuations(gitea, gitea_client):
    issue = gitea.add_issue(REPO, "x")
    body = _lines(1600)  # 160,000 characters
    first = gitea_client.create_comment("acme", "widgets", issue["number"], body)
    posted = [c["body"] for c in gitea.comments_on(REPO, issue["number"])]
    assert len(posted) == 3 and first["body"] == posted[0]
    assert all(len(p.encode()) <= COMMENT_LIMIT for p in posted)
    assert "continued in the next comment, part 2/3" in posted[0]
    assert posted[2].startswith("*(continued, part 3/3)*")
    kept = [line for p in posted for line in p.splitlines() if line[:6].isdigit()]
    assert kept == body.splitlines()  # nothing lost, nothing repeated, lines never cut


def test_long_edit_is_truncated_with_a_note(gitea, gitea_client):
    issue = gitea.add_issue(REPO, "x")
    comment = gitea_client.create_comment("acme", "widgets", issue["number"], "queued")
    edited = gitea_client.edit_comment("acme", "widgets", comment["id"], _lines(1000))
    assert len(edited["body"].encode()) <= COMMENT_LIMIT
    assert "truncated by ssd-bot" in edited["body"]
    assert len(gitea.comments_on(REPO, issue["number"])) == 1


# ---- dry run ---------------------------------------------------------------------------------------------


def test_dry_run_writes_the_outbox(tmp_path, caplog):
    outbox = tmp_path / "outbox"
    dry = DryRunGitea(outbox)
    assert dry.whoami() == "ssd-bot"
    with caplog.at_level(logging.WARNING, logger="bot.gitea"):
        assert dry.permission("acme", "widgets", "alice") == "owner"
    assert "trusting the commenter" in caplog.text
    comment = dry.create_comment("acme", "widgets", 3, "hello")
    dry.edit_comment("acme", "widgets", comment["id"], "done")
    dry.add_reaction("acme", "widgets", 11, "eyes")
    attachment = dry.upload_comment_attachment("acme", "widgets", comment["id"], "r.json", b"{}", "application/json")
    dry.create_hook("acme", "widgets", "https://bot.example/webhooks/gitea", "s3cret")
    records = [json.loads(p.read_text()) for p in sorted(outbox.glob("*.json"))]
    assert [r["action"] for r in records] == [
        "create_comment",
        "edit_comment",
        "add_reaction",
        "upload_comment_attachment",
        "create_hook",
    ]
    assert records[0]["body"] == "hello" and records[0]["index"] == 3
    assert records[1]["comment_id"] == comment["id"] and records[1]["body"] == "done"
    assert "s3cret" not in json.dumps(records)
    assert attachment["browser_download_url"].startswith("file://")
    assert (outbox / "attachments").is_dir()


def test_dry_run_reads(tmp_path):
    dry = DryRunGitea(tmp_path)
    with pytest.raises(GiteaNotFound):
        dry.get_issue("acme", "widgets", 3)
    dry.remember({"repository": {"full_name": "acme/widgets"}, "issue": {"number": 3, "title": "Bug"}})
    assert dry.get_issue("acme", "widgets", 3)["title"] == "Bug"
    assert dry.get_repo("acme", "widgets")["full_name"] == "acme/widgets"
    with pytest.raises(GiteaNotFound):
        dry.pull_diff("acme", "widgets", 4)
    ids = [dry._new_id() for _ in range(1000)]
    assert len(set(ids)) == 1000 and ids == sorted(ids)


def test_gitea_from_settings(tmp_path, gitea):
    dry = gitea_from_settings(Settings.from_env({"SSD_DATA_DIR": str(tmp_path)}))
    assert isinstance(dry, DryRunGitea) and dry.outbox_dir == tmp_path.resolve() / "outbox"
    real = gitea_from_settings(
        Settings.from_env(
            {
                "SSD_DATA_DIR": str(tmp_path),
                "SSD_GITEA_URL": gitea.url,
                "SSD_GITEA_TOKEN": gitea.bot_token,
                "SSD_GITEA_TIMEOUT": "3",
                "SSD_GITEA_RETRIES": "1",
            }
        )
    )
    assert isinstance(real, GiteaClient) and real.timeout == 3.0 and real.retries == 1
    assert real.whoami() == "ssd-bot"


# ---- ssd gitea install-webhook / check ---------------------------------------------------------------------

HOOK_URL = "https://bot.example/webhooks/gitea"


@pytest.fixture
def gitea_env(gitea, tmp_path, monkeypatch):
    monkeypatch.setenv("SSD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SSD_GITEA_URL", gitea.url)
    monkeypatch.setenv("SSD_GITEA_TOKEN", gitea.bot_token)
    monkeypatch.setenv("SSD_WEBHOOK_SECRET", "hook-secret")
    monkeypatch.setenv("SSD_GITEA_RETRIES", "0")
    return monkeypatch


def ssd(*argv: str) -> int:
    from ssd.cli import main

    return main(list(argv))


def test_install_webhook_creates_the_hook(gitea, gitea_env, capsys):
    assert ssd("gitea", "install-webhook", "--repo", "acme/widgets", "--url", HOOK_URL) == 0
    [post] = gitea.calls("POST", "/repos/acme/widgets/hooks")
    assert post.json["type"] == "gitea" and post.json["active"] is True
    assert post.json["config"] == {"url": HOOK_URL, "content_type": "json", "secret": "hook-secret"}
    assert post.json["events"] == ["pull_request_only", "issue_comment", "pull_request_comment"]
    [hook] = gitea.repo(REPO).hooks
    assert hook["active"] and hook["config"]["secret"] == "hook-secret"
    assert "created hook" in capsys.readouterr().out
    # Again: it says so and changes nothing.
    assert ssd("gitea", "install-webhook", "--repo", "acme/widgets", "--url", HOOK_URL) == 0
    assert "already exists" in capsys.readouterr().out
    assert len(gitea.calls("POST", "/hooks")) == 1 and len(gitea.repo(REPO).hooks) == 1


def test_install_webhook_generated_secret_and_loopback_note(gitea, gitea_env, tmp_path, capsys):
    gitea_env.delenv("SSD_WEBHOOK_SECRET")
    assert (
        ssd("gitea", "install-webhook", "--repo", "acme/widgets", "--url", "http://127.0.0.1:8080/webhooks/gitea") == 0
    )
    secret = (tmp_path / "data" / "webhook_secret").read_text().strip()
    assert gitea.calls("POST", "/hooks")[0].json["config"]["secret"] == secret and len(secret) == 64
    assert "ALLOWED_HOST_LIST" in capsys.readouterr().out


def test_install_webhook_update_and_replace(gitea, gitea_env, capsys):
    # A hook made without "active": true (the API default is false) delivers nothing.
    requests.post(
        f"{gitea.api_url}/repos/acme/widgets/hooks",
        timeout=5,
        headers={"Authorization": f"token {gitea.bot_token}"},
        json={"type": "gitea", "config": {"url": HOOK_URL, "content_type": "json"}, "events": ["push"]},
    )
    assert gitea.repo(REPO).hooks[0]["active"] is False
    assert ssd("gitea", "install-webhook", "--repo", "acme/widgets", "--url", HOOK_URL) == 1
    assert "--update" in capsys.readouterr().out
    assert ssd("gitea", "install-webhook", "--repo", "acme/widgets", "--url", HOOK_URL, "--update") == 0
    [patch] = gitea.calls("PATCH", "/hooks/")
    assert patch.json["active"] is True and "issue_comment" in patch.json["events"]
    assert gitea.repo(REPO).hooks[0]["active"] is True
    assert ssd("gitea", "install-webhook", "--repo", "acme/widgets", "--url", HOOK_URL, "--replace") == 0
    assert len(gitea.calls("DELETE", "/hooks/")) == 1
    [hook] = gitea.repo(REPO).hooks
    assert hook["config"]["secret"] == "hook-secret" and hook["active"]


def test_install_webhook_errors_are_clear(gitea, gitea_env, capsys):
    gitea_env.setenv("SSD_GITEA_TOKEN", BOB_TOKEN)
    assert ssd("gitea", "install-webhook", "--repo", "acme/widgets", "--url", HOOK_URL) == 1
    assert "403" in capsys.readouterr().err
    gitea_env.setenv("SSD_GITEA_TOKEN", "revoked")
    assert ssd("gitea", "install-webhook", "--repo", "acme/widgets", "--url", HOOK_URL) == 1
    assert "rejected SSD_GITEA_TOKEN" in capsys.readouterr().err
    gitea_env.setenv("SSD_GITEA_TOKEN", gitea.bot_token)
    assert ssd("gitea", "install-webhook", "--repo", "acme/nope", "--url", HOOK_URL) == 1
    assert "not found" in capsys.readouterr().err
    assert ssd("gitea", "install-webhook", "--repo", "acme/widgets", "--url", "ftp://x") == 2
    gitea_env.delenv("SSD_GITEA_URL")
    assert ssd("gitea", "install-webhook", "--repo", "acme/widgets", "--url", HOOK_URL) == 2
    assert "SSD_GITEA_URL" in capsys.readouterr().err


def test_check(gitea, gitea_env, capsys):
    assert ssd("gitea", "check") == 0
    out = capsys.readouterr().out
    assert "version 1.25.4" in out and "ssd-bot (site admin: yes)" in out
    assert ssd("gitea", "check", "--repo", "acme/widgets") == 0
    assert "permission lookups work" in capsys.readouterr().out
    gitea_env.setenv("SSD_GITEA_TOKEN", BOB_TOKEN)
    assert ssd("gitea", "check", "--repo", "acme/widgets") == 1
    out = capsys.readouterr().out
    assert "bob (site admin: no)" in out and "FAIL" in out and "site administrator" in out
    assert ssd("gitea", "check") == 1


# ---- the stand-in speaks Gitea's JSON -------------------------------------------------------------------


def test_standin_answers_like_gitea(gitea):
    gitea.add_issue(REPO, "Bug <b> & co", "x")
    auth = {"Authorization": f"Bearer {gitea.bot_token}"}  # either scheme, case-insensitive
    response = requests.get(f"{gitea.api_url}/repos/acme/widgets/issues/1", headers=auth, timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json;charset=utf-8"
    assert response.text.endswith("}\n") and ", " not in response.text and '": ' not in response.text
    assert "Bug \\u003cb\\u003e \\u0026 co" in response.text  # Go's HTML escaping
    missing = requests.get(f"{gitea.api_url}/repos/acme/widgets/issues/9", headers=auth, timeout=5)
    assert missing.status_code == 404 and missing.json()["message"] == "not found" and "url" in missing.json()
    assert requests.get(f"{gitea.api_url}/user", timeout=5).status_code == 401
    bad = {"Authorization": f"token {gitea.bot_token} extra"}  # exactly two fields
    assert requests.get(f"{gitea.api_url}/user", headers=bad, timeout=5).status_code == 401
    comments = requests.get(f"{gitea.api_url}/repos/acme/widgets/issues/1/comments", headers=auth, timeout=5)
    assert comments.headers["X-Total-Count"] == "0"


def test_editing_someone_elses_comment_needs_write(gitea):
    issue = gitea.add_issue(REPO, "x")
    comment = gitea.add_comment(REPO, issue["number"], "mine", user="alice")
    with pytest.raises(GiteaForbidden):
        client_for(gitea, BOB_TOKEN).edit_comment("acme", "widgets", comment["id"], "yours now")
    assert gitea.comments[comment["id"]]["body"] == "mine"


def test_503_retry_after_http_date_is_honoured(gitea, gitea_client):
    from datetime import UTC, datetime, timedelta
    from email.utils import format_datetime

    when = format_datetime(datetime.now(UTC) + timedelta(seconds=2), usegmt=True)
    gitea.fail_next(1, status=503, headers={"Retry-After": when})
    started = time.monotonic()
    assert gitea_client.version() == "1.25.4"
    assert time.monotonic() - started >= 0.9  # whole seconds in the header: at least ~1 s of the 2
