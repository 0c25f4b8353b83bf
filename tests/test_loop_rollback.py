"""``/ssd rollback`` and ``ssd adapters rollback`` (issue #12): the earlier adapter is served again through a
real serving target (the vLLM stand-in over HTTP), verified, and only then made current in the registry; and
``/ssd status`` shows the loop. Real Redis, a real RQ worker, the Gitea stand-in."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.loop import serving_target
from pipeline.training.adapters import AdapterRegistry
from ssd.cli import main
from tests.conftest_gitea import REPO
from tests.harness import Bot, make_bot
from tests.vllm_standin import VllmStandin


@pytest.fixture
def vllm() -> Iterator[VllmStandin]:
    standin = VllmStandin()
    yield standin
    standin.close()


@pytest.fixture
def loop_bot(gitea, own_redis, tmp_path: Path, vllm: VllmStandin) -> Bot:
    return make_bot(
        gitea, own_redis[0], tmp_path, own_redis[1], extra={"SSD_SERVING": "vllm", "SSD_VLLM_URL": vllm.url}
    )


def _promote_two(bot: Bot, tmp_path: Path) -> tuple[str, str]:
    """Two adapters, each deployed (verified) and promoted in turn, as two loop runs would leave them."""
    registry = AdapterRegistry(bot.settings.data_dir / "adapters")
    target = serving_target(bot.settings)
    ids = []
    for name in ("first", "second"):
        lora = tmp_path / name
        lora.mkdir()
        (lora / "adapter_config.json").write_text('{"r": 4}')
        record = registry.create(lora, base_model="smollm2", base_sha256="0" * 64)
        target.deploy(record.id, record.path, None, "smollm2", 0.7)
        registry.promote(record.id)
        ids.append(record.id)
    return ids[0], ids[1]


def test_rollback_needs_admin_serves_the_previous_adapter_and_status_shows_it(
    loop_bot: Bot, tmp_path: Path, vllm: VllmStandin, monkeypatch
) -> None:
    first, second = _promote_two(loop_bot, tmp_path)
    assert set(vllm.loras) == {f"ssd-{second}"}

    index = loop_bot.new_issue()
    loop_bot.comment("/ssd rollback", user="alice", index=index)  # a writer, not an admin
    loop_bot.work(("default", "cpu"))
    assert "admin" in loop_bot.bot_comments(index)[-1]["body"]
    assert AdapterRegistry(loop_bot.settings.data_dir / "adapters").promoted().id == second

    loop_bot.gitea.add_user("carol")
    loop_bot.gitea.grant(REPO, "carol", "admin")
    loop_bot.comment("/ssd rollback", user="carol", index=index)
    loop_bot.work(("default", "cpu"))
    body = loop_bot.bot_comments(index)[-1]["body"]
    assert f"`{first}` is current again" in body and f"`ssd-{first}` on `vllm` (verified)" in body
    assert AdapterRegistry(loop_bot.settings.data_dir / "adapters").promoted().id == first
    assert set(vllm.loras) == {f"ssd-{first}"}  # swapped in the server, the later one unloaded
    assert any(
        path == "/v1/chat/completions" and body.get("model") == f"ssd-{first}" for _, path, body in vllm.requests
    )  # the smoke request named the restored version

    loop_bot.comment("/ssd status", user="bob", index=index)
    loop_bot.work(("default",))
    status = loop_bot.bot_comments(index)[-1]["body"]
    assert "| `default` | 0 | 1 | 1 |" in status  # queued, running, workers
    assert "**Last loop runs**: none yet." in status
    assert f"**Promoted adapter**: `{first}`" in status and f"**Served**: `ssd-{first}` on `vllm`." in status
    assert "**Next nightly run**: " in status and "(`0 3 * * *` in UTC)" in status

    # The command line does the same; `base` goes back to no adapter at all.
    for name, value in loop_bot.env.items():
        monkeypatch.setenv(name, value)
    assert main(["adapters", "rollback", "base", "--json"]) == 0
    assert AdapterRegistry(loop_bot.settings.data_dir / "adapters").promoted() is None
    assert vllm.loras == {}
    assert serving_target(loop_bot.settings).current().model == "smollm2"
    assert main(["adapters", "rollback"]) == 1  # nothing left to roll back: a clear error, nothing changed


def test_rollback_to_a_version_never_promoted_is_refused(loop_bot: Bot, tmp_path: Path, vllm: VllmStandin) -> None:
    first, second = _promote_two(loop_bot, tmp_path)
    index = loop_bot.new_issue()
    loop_bot.gitea.grant(REPO, "alice", "admin")
    loop_bot.comment("/ssd rollback a-20260101-000000-abcdef", user="alice", index=index)
    loop_bot.work(("default", "cpu"))
    body = loop_bot.bot_comments(index)[-1]["body"]
    assert "was not promoted before" in body and str(loop_bot.settings.data_dir) not in body
    assert AdapterRegistry(loop_bot.settings.data_dir / "adapters").promoted().id == second
    assert set(vllm.loras) == {f"ssd-{second}"}


def test_train_source_buffer_runs_the_loop_and_the_nightly_job_is_the_same_run(loop_bot: Bot, monkeypatch) -> None:
    from pipeline.loop.run import RunStore
    from ssd.scheduler import NIGHTLY_FUNCTION, run_by_path

    index = loop_bot.new_issue()
    loop_bot.comment("/ssd train source=buffer", user="alice", index=index)
    loop_bot.work(("default", "cpu"))
    body = loop_bot.bot_comments(index)[-1]["body"]
    assert "**skipped**" in body and "the buffer holds 0 examples; a run needs at least 20" in body
    assert "Trigger**: @alice" in body

    for name, value in loop_bot.env.items():  # what rq.cron's job runs, in a worker, from the environment
        monkeypatch.setenv(name, value)
    result = run_by_path(NIGHTLY_FUNCTION)
    assert result["decision"] == "skipped"
    runs = RunStore(loop_bot.settings.data_dir / "loop").all()
    assert [(r["trigger"], r["decision"]) for r in runs] == [("@alice", "skipped"), ("nightly", "skipped")]


def test_the_tracking_comment_has_the_snapshot_gate_table_decision_and_loss_plot(gitea, tmp_path: Path) -> None:
    from bot.loop import report
    from core.config import Settings
    from pipeline.loop.gate import ProblemResult, decide
    from pipeline.loop.run import LoopConfig, gate_summary

    settings = Settings.from_env(
        {
            "SSD_DATA_DIR": str(tmp_path),
            "SSD_GITEA_URL": gitea.url,
            "SSD_GITEA_TOKEN": gitea.bot_token,
            "SSD_TRACKING_ISSUE": f"{REPO}#1",
        }
    )
    gitea.add_issue(REPO, "Loop runs")
    current = [ProblemResult("basic", f"t{i}", "easy" if i < 3 else "hard", 2, 2) for i in range(6)]
    candidate = [ProblemResult("basic", f"t{i}", "easy" if i < 3 else "hard", 2, 0) for i in range(6)]
    cfg = LoopConfig(loop_dir=tmp_path, registry_root=tmp_path, base_model="smollm2", t_eval=0.7, eval_n=2)
    record = {
        "run": "r-20261203-030000-000001",
        "decision": "rejected",
        "reason": "rejected: worse",
        "trigger": "nightly",
        "mode": "accepted",
        "candidate": "a-20261203-030500-abcdef",
        "current": None,
        "snapshot": {"hash": "ab" * 32, "size": 25, "new": 3, "repos": ["acme/tools", REPO]},
        "training": {
            "examples": 25,
            "mode": "accepted",
            "steps": 2,
            "first_loss": 3.0,
            "final_loss": 2.5,
            "loss_curve": [{"step": 1, "loss": 3.0}, {"step": 2, "loss": 2.5}],
        },
        "gate": gate_summary(decide(candidate, current), cfg),
        "serving": {"target": "local", "url": "http://127.0.0.1:8011/v1", "model": "base"},
    }
    report(settings, record)
    [comment] = gitea.comments_on(REPO, 1)
    body = comment["body"]
    assert "### Loop run `r-20261203-030000-000001`: **rejected**" in body
    assert "25 examples (3 new since the last run) from 2 repositories (acme/tools, acme/widgets)" in body
    assert "candidate `a-20261203-030500-abcdef` on 25 examples, 2 steps, loss 3.000 → 2.500" in body
    assert "| overall | 6 | 100.0% | 0.0% | -100.0 |" in body and "| basic/hard | 3 |" in body
    assert "**Served now**: `base` on `local`" in body
    assert "![training loss](" in body and len(comment["assets"]) == 1
