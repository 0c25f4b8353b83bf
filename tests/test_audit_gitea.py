"""The audit over the Gitea stand-in (real HTTP): the same findings as the local walk, links to the lines,
and ``/ssd audit`` end to end: a comment, the real handle_comment, a real RQ worker, the report edited in."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.audit_source import GiteaTree
from pipeline.audit import Limits, ScanStats, audit_files, audit_path
from tests.audit_fixture import EXPECTED, FIXTURE, rows
from tests.harness import needs_matplotlib, needs_model

REPO = "acme/widgets"


def _fixture_files() -> dict[str, bytes]:
    return {p.relative_to(FIXTURE).as_posix(): p.read_bytes() for p in sorted(FIXTURE.rglob("*")) if p.is_file()}


def _audit_gitea(client, ref: str | None = None, limits: Limits | None = None):
    tree = GiteaTree(client, "acme", "widgets", ref)
    stats = ScanStats()
    return tree, audit_files(tree.files(limits, stats), stats, tree.source)


def test_gitea_tree_gives_the_same_findings_as_the_local_dir(gitea, gitea_client) -> None:
    gitea.add_files(REPO, _fixture_files())
    tree, result = _audit_gitea(gitea_client)
    local = audit_path(str(FIXTURE))
    assert rows(result) == rows(local) == EXPECTED
    assert [f.to_dict() for f in result.flags] == [f.to_dict() for f in local.flags]
    assert result.stats.skipped == local.stats.skipped and result.stats.read == local.stats.read
    assert result.source == {
        "kind": "gitea",
        "repo": REPO,
        "ref": "main",
        "html_url": f"{gitea.url}/{REPO}",
        "sha": None,
    }
    assert tree.link("configs/sampling.yaml", 10) == f"{gitea.url}/{REPO}/src/branch/main/configs/sampling.yaml#L10"
    # Only candidate files are fetched: one raw request each (README.md is one: its run instructions), none for
    # NOTES.txt.
    raw = [c.path for c in gitea.calls("GET", "/raw/")]
    assert len(raw) == local.stats.read == 24  # including the binary and the 3 invalid files
    assert any(p.endswith("README.md") for p in raw) and not any(p.endswith("NOTES.txt") for p in raw)


def test_gitea_ref_sha_links_and_caps(gitea, gitea_client) -> None:
    sha = gitea.add_files(
        REPO,
        {
            "serve/Modelfile": "FROM smollm2\nPARAMETER temperature 0.3\n",
            "a.yaml": "temperature: 0.5\n",
            "b.yaml": "temperature: 0.6\n",
        },
        ref="dev",
    )
    tree, result = _audit_gitea(gitea_client, ref=sha)
    assert tree.link("serve/Modelfile", 2) == f"{gitea.url}/{REPO}/src/commit/{sha}/serve/Modelfile#L2"
    assert {(f.path, f.line, f.display) for f in result.findings} == {
        ("serve/Modelfile", 2, "0.3"),
        ("a.yaml", 1, "0.5"),
        ("b.yaml", 1, "0.6"),
    }
    _, capped = _audit_gitea(gitea_client, ref="dev", limits=Limits(max_files=1))
    assert capped.stats.read == 1 and capped.stats.skipped["file cap reached"] == 2


# ---------------------------------------------------------------- /ssd audit through the bot


@pytest.fixture
def spine(gitea, settings_env: dict[str, str], redis_conn) -> dict:
    from bot import context
    from core.config import Settings

    env = {
        **settings_env,
        "SSD_GITEA_URL": gitea.url,
        "SSD_GITEA_TOKEN": gitea.bot_token,
        "SSD_STATUS_EDIT_INTERVAL": "0",
    }
    context.configure(settings=Settings.from_env(env), redis=redis_conn)
    gitea.add_issue(REPO, "What do we sample with?")
    return {"gitea": gitea, "conn": redis_conn}


def _comment_and_work(spine: dict, body: str) -> str:
    from rq import SimpleWorker

    from bot.jobs import handle_comment
    from core.queues import queue
    from tests.deliveries import comment_payload

    gitea, conn = spine["gitea"], spine["conn"]
    posted = gitea.add_comment(REPO, 1, body, user="alice")
    outcome = handle_comment(comment_payload(body=body, user="alice", number=1, comment_id=posted["id"]))
    assert outcome["enqueued"], outcome
    assert queue("cpu", conn).count == 1
    SimpleWorker([queue(name, conn) for name in ("default", "cpu", "gpu")], connection=conn).work(burst=True)
    return gitea.comments_on(REPO, 1)[-1]["body"]


def test_slash_audit_posts_one_report(spine: dict) -> None:
    gitea = spine["gitea"]
    gitea.add_files(REPO, _fixture_files())
    report = _comment_and_work(spine, "/ssd audit")
    assert "### /ssd audit: acme/widgets at main" in report
    assert "Temperature audit of `acme/widgets` at `main`:" in report
    assert f"<summary>{len(EXPECTED)} findings in 20 files</summary>" in report
    assert f"]({gitea.url}/{REPO}/src/branch/main/configs/sampling.yaml#L15)" in report
    assert "**teval_equals_ttrain**" in report and "**undefined_env**" in report
    assert "What runs where nothing is set" in report and "Ollama" in report
    assert "Reproducibility" in report and "/ssd audit" in report and "ssd-provenance" in report
    assert "Traceback" not in report


def test_slash_audit_unknown_ref_is_a_clear_error(spine: dict) -> None:
    spine["gitea"].add_files(REPO, {"a.yaml": "temperature: 0.5\n"})
    report = _comment_and_work(spine, "/ssd audit ref=no-such-branch")
    assert "cannot read `acme/widgets` at `no-such-branch`" in report and "Traceback" not in report


def test_audit_command_schema() -> None:
    from bot.commands import registry
    from bot.commands.parse import parse_comment

    command = registry.get("audit")
    assert command is not None and command.queue == "cpu" and command.permission == "write"
    [parsed] = parse_comment("/ssd audit measure=yes model=smollm2 suite=basic t=current,0.3,0.7 n=3")
    args = command.validate(parsed)
    assert (args["measure"], args["model"], args["t"], args["n"], args["limit"]) == (
        True,
        "smollm2",
        ["current", "0.3", "0.7"],
        3,
        10,
    )


def test_fixture_dir_is_what_the_standin_serves() -> None:
    assert Path(FIXTURE, "configs/cache.json").read_bytes().count(b"\0") > 0  # the binary file is really binary


@pytest.mark.slow
@needs_model
@needs_matplotlib
def test_slash_audit_measure_posts_table_plot_and_recommendation(spine: dict) -> None:
    gitea = spine["gitea"]
    gitea.add_files(REPO, {"serve/Modelfile": "FROM smollm2\nPARAMETER temperature 0.2\n"})
    report = _comment_and_work(
        spine, "/ssd audit measure=yes model=smollm2 suite=basic t=current,0.7 n=2 limit=2 max_tokens=64"
    )
    assert "**Measured T_eval** · `smollm2` on `basic`, n=2" in report
    assert "| T=0.2 | all | 2 | 4 |" in report and "| T=0.7 | all | 2 | 4 |" in report
    assert "T=0.7 − T=0.2 (current)" in report and "**Recommendation**:" in report
    assert "![pass@1 vs temperature](" in report and len(gitea.calls("POST", "/assets")) == 1
    assert "t=0.2,0.7" in report  # the footer's command reproduces the grid
    assert "ssd audit --path CHECKOUT-OF-acme-widgets-AT-main --measure --model smollm2" in report
