"""``/ssd train`` through the spine: a comment on the Gitea stand-in, the real handle_comment, a real RQ worker on
the queue the settings choose (``cpu``, or ``gpu`` with ``SSD_GPU_WORKER=1``), the tiny model, the report edited
into the status comment with the loss plot attached."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture
def spine(
    gitea, settings_env: dict[str, str], redis_conn, tiny_model_dir: Path, request: pytest.FixtureRequest
) -> dict:
    from bot import context
    from core.config import Settings

    extra = getattr(request, "param", {})
    env = {
        **settings_env,
        "SSD_GITEA_URL": gitea.url,
        "SSD_GITEA_TOKEN": gitea.bot_token,
        "SSD_STATUS_EDIT_INTERVAL": "0",
        **extra,
    }
    settings = Settings.from_env(env)
    # Comments may only name models under $SSD_DATA_DIR/models (a copy: a symlink would resolve outside).
    shutil.copytree(tiny_model_dir, settings.data_dir / "models" / "tiny")
    context.configure(settings=settings, redis=redis_conn)
    gitea.add_issue("acme/widgets", "Tune the model")
    return {"gitea": gitea, "settings": settings, "conn": redis_conn}


def _comment_and_work(spine: dict, body: str, queue_name: str) -> list[dict]:
    from rq import SimpleWorker

    from bot.jobs import handle_comment
    from core.queues import queue
    from tests.deliveries import comment_payload

    gitea, conn = spine["gitea"], spine["conn"]
    posted = gitea.add_comment("acme/widgets", 1, body, user="alice")
    outcome = handle_comment(comment_payload(body=body, user="alice", number=1, comment_id=posted["id"]))
    assert outcome["enqueued"], outcome
    assert queue(queue_name, conn).count == 1, f"/ssd train should be on the {queue_name} queue"
    SimpleWorker([queue(name, conn) for name in ("default", "cpu", "gpu")], connection=conn).work(burst=True)
    return gitea.comments_on("acme/widgets", 1)


def test_train_is_registered_with_write_and_chooses_its_queue_from_the_settings():
    from bot.commands import registry
    from bot.commands.parse import parse_comment
    from core.config import Settings

    command = registry.get("train")
    assert command is not None and command.permission == "write"
    assert command.queue_name(Settings.from_env({"SSD_DATA_DIR": "/tmp/x"})) == "cpu"
    assert command.queue_name(Settings.from_env({"SSD_DATA_DIR": "/tmp/x", "SSD_GPU_WORKER": "1"})) == "gpu"
    [parsed] = parse_comment("/ssd train prompts=suite:basic limit=8 t_train=1.5 t_eval=0.9,1.1 confirm=yes")
    args = command.validate(parsed)
    assert (args["prompts"], args["limit"], args["t_train"], args["t_eval"], args["confirm"]) == (
        "suite:basic",
        8,
        1.5,
        [0.9, 1.1],
        True,
    )


def test_a_big_run_asks_for_confirmation_and_trains_nothing(spine: dict):
    # 216 shipped prompts x 512 tokens is over the default 50,000-token limit.
    comments = _comment_and_work(spine, "/ssd train model=tiny", "cpu")
    report = comments[-1]["body"]
    assert "confirmation needed" in report and "confirm=yes" in report and "110,592 tokens" in report
    assert not (spine["settings"].data_dir / "adapters").exists()


def test_paths_outside_the_data_dir_are_refused_before_queueing(spine: dict):
    from bot.jobs import handle_comment
    from core.queues import queue
    from tests.deliveries import comment_payload

    gitea, conn = spine["gitea"], spine["conn"]
    body = "/ssd train prompts=../../../etc/passwd limit=1"
    posted = gitea.add_comment("acme/widgets", 1, body, user="alice")
    outcome = handle_comment(comment_payload(body=body, user="alice", number=1, comment_id=posted["id"]))
    assert outcome["replied"] == ["usage"] and queue("cpu", conn).count == 0
    reply = gitea.comments_on("acme/widgets", 1)[-1]["body"]
    assert "must name something inside $SSD_DATA_DIR/prompts" in reply and "Traceback" not in reply
    assert str(spine["settings"].data_dir) not in reply


@pytest.mark.slow
@pytest.mark.parametrize("spine", [{"SSD_GPU_WORKER": "1"}], indirect=True)
def test_slash_train_runs_on_the_gpu_queue_and_reports_everything(spine: dict):
    settings = spine["settings"]
    comments = _comment_and_work(
        spine, "/ssd train model=tiny prompts=shipped limit=6 max_tokens=12 max_steps=2 eval_limit=2 t_eval=1.6", "gpu"
    )
    report = comments[-1]["body"]
    assert "### /ssd train: adapter `a-" in report and "(registered, not promoted)" in report
    assert "| prompts | 6 from `shipped` |" in report and "T_train 1.6" in report  # dataset stats
    assert "![training loss](" in report and len(comments[-1]["assets"]) == 1  # the loss plot, attached
    assert "| T_eval | base pass@1 [95% CI] | tuned pass@1 [95% CI] |" in report
    assert "| 1.6 (**best**, = T_train) |" in report and "T_eval equals T_train (1.6)" in report
    assert "Reproducibility" in report and "ssd train --prompts shipped --model tiny" in report
    assert str(settings.data_dir) not in report and "Traceback" not in report
    from pipeline.training.adapters import AdapterRegistry

    [record] = AdapterRegistry(settings.data_dir / "adapters").list()
    assert record.id in report and "compare/basic" in record.metrics and record.loss_curve
