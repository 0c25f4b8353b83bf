"""The continuous loop's run (issue #12): real buffer (SQLite), real fine-tunes of the tiny model, the real
evaluator and executor, the real gate, a real serving target, real Redis for the lock, the Gitea stand-in
for the tracking issue, and ``ssd loop run-once`` killed mid-run in a real process.

The gate is driven both ways on purpose: one condition of the paired evaluation runs the suite's reference
solutions (``EvalConfig.gold``, all pass) while the other is the tiny random model (nothing passes), so the
candidate is made clearly better or clearly worse than what is served.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import requests

from core.config import Settings
from core.db import engine_for
from core.loop_lock import LOCK_KEY
from pipeline.buffer import Example, TrainingBuffer
from pipeline.evaluate import run_eval
from pipeline.loop.run import LoopConfig, RunContext, RunStore, render_report, rollback, run_loop
from pipeline.serving import open_target
from pipeline.training.adapters import AdapterRegistry
from tests.vllm_standin import VllmStandin

ROOT = Path(__file__).resolve().parents[1]
JSON_KEYS = {"run", "decision", "reason", "snapshot", "candidate", "gate", "serving"}


def _fill(buffer: TrainingBuffer, numbers: range) -> None:
    for number in numbers:
        buffer.add(
            Example(
                repo="acme/widgets" if number % 2 else "acme/tools",
                pr_number=number,
                merge_sha=f"{number:040x}",
                prompt=f"Fix issue {number}: add(a, b) must return a + b.",
                answer=f"--- a/m.py\n+++ b/m.py\n@@\n-    return a - b\n+    return a + b  # {number}\n",
            )
        )


def _config(tmp_path: Path, model: Path, **changes) -> LoopConfig:
    values = dict(
        loop_dir=tmp_path / "loop",
        registry_root=tmp_path / "adapters",
        base_model=str(model),
        min_examples=3,
        suites=("basic",),
        eval_limit=3,
        eval_max_tokens=8,
        t_eval=0.0,
        finetune={
            "max_steps": 1,
            "batch_size": 4,
            "lora_r": 4,
            "lora_alpha": 8,
            "max_length": 128,
            "target_modules": ["q_proj", "v_proj"],
        },
    )
    return LoopConfig(**{**values, **changes})


@pytest.fixture
def vllm():
    standin = VllmStandin(base_model="tiny")
    yield standin
    standin.close()


def _served_model(vllm: VllmStandin, model: str) -> str:
    """What a chat request for ``model`` is answered with (the stand-in refuses a model it has not loaded)."""
    answer = requests.post(
        vllm.url + "/v1/chat/completions",
        timeout=10,
        json={"model": model, "messages": [{"role": "user", "content": "add"}], "max_tokens": 4, "temperature": 0},
    )
    return (
        answer.json()["choices"][0]["message"]["content"] if answer.status_code == 200 else f"HTTP {answer.status_code}"
    )


@pytest.mark.slow
def test_the_gate_promotes_a_better_candidate_rejects_a_worse_one_and_skips_an_unchanged_buffer(
    tmp_path: Path, tiny_model_dir: Path, vllm: VllmStandin
):
    """Deployed through a serving target over HTTP (the vLLM stand-in): the promoted adapter is what it serves
    afterwards, the rejected one never."""
    buffer = TrainingBuffer(engine_for(f"sqlite:///{tmp_path / 'buffer.db'}"))
    _fill(buffer, range(1, 5))
    cfg = _config(tmp_path, tiny_model_dir)
    target = open_target("vllm", tmp_path / "serving", vllm.url)
    registry = AdapterRegistry(cfg.registry_root)

    # Run 1: the candidate (the only condition with an adapter) answers with the reference solutions.
    better = RunContext(
        examples=buffer.active(), target=target, evaluate=lambda c: run_eval(replace(c, gold=c.adapter is not None))
    )
    first = run_loop(cfg, better)
    assert first["decision"] == "promoted", first["reason"]
    assert first["current"] is None and first["candidate"] == registry.promoted().id
    served = f"ssd-{first['candidate']}"
    assert first["serving"] == {"target": "vllm", "url": vllm.url + "/v1", "model": served}
    assert served in _served_model(vllm, served) and set(vllm.loras) == {served}  # loaded in the server
    assert first["snapshot"]["size"] == 4 and first["snapshot"]["repos"] == ["acme/tools", "acme/widgets"]
    overall = first["gate"]["rows"][0]
    assert (overall["scope"], overall["problems"], overall["current"], overall["candidate"]) == ("overall", 3, 0, 1)
    assert first["training"]["examples"] == 4 and first["training"]["steps"] == 1
    assert registry.get(first["candidate"]).metrics["gate"]["against"] == "base"

    # Run 2: a new merge changes the buffer; now the promoted adapter (current) is the one that is right.
    _fill(buffer, range(5, 6))
    promoted_path = str(registry.promoted().path)
    worse = RunContext(
        examples=buffer.active(),
        target=target,
        evaluate=lambda c: run_eval(replace(c, gold=c.adapter == promoted_path)),
    )
    second = run_loop(replace(cfg, mode="mixed", t_train=1.0, sample_max_tokens=8), worse)
    assert second["decision"] == "rejected", second["reason"]
    assert second["snapshot"]["new"] == 1 and second["current"] == first["candidate"]
    # mixed: the 5 merged diffs plus one self-sample per prompt from the base at T_train (empty ones dropped)
    assert second["training"]["mode"] == "mixed" and 5 <= second["training"]["examples"] <= 10
    assert "may lose more than 0.050" in second["reason"]
    assert registry.promoted().id == first["candidate"]  # not promoted ...
    assert target.current().model == served and set(vllm.loras) == {served}  # ... and not served
    assert _served_model(vllm, f"ssd-{second['candidate']}") == "HTTP 404"
    assert second["candidate"] in [r.id for r in registry.list()]  # but kept in the registry

    # Run 3: nothing new in the buffer: skipped, and says why.
    third = run_loop(cfg, RunContext(examples=buffer.active(), target=target))
    assert third["decision"] == "skipped" and f"not changed since run {second['run']}" in third["reason"]
    assert [r["decision"] for r in RunStore(cfg.loop_dir).all()] == ["promoted", "rejected", "skipped"]

    report = render_report(second)
    assert "**rejected**" in report and "| overall | 3 | 100.0% | 0.0% | -100.0 |" in report
    assert f"Served now**: `{served}` on `vllm`" in report and str(tmp_path) not in report

    # Rollback: the base is served again (verified), and nothing is promoted.
    rolled = rollback(registry, target, "tiny", 0.0)
    assert rolled["promoted"] is None and rolled["previous"] == first["candidate"]
    assert registry.promoted() is None and vllm.loras == {} and target.current().model == "tiny"


def test_a_run_below_the_minimum_is_skipped_and_says_so(tmp_path: Path):
    buffer = TrainingBuffer(engine_for(f"sqlite:///{tmp_path / 'buffer.db'}"))
    _fill(buffer, range(1, 3))
    cfg = _config(tmp_path, tmp_path / "no-model-needed")
    record = run_loop(cfg, RunContext(examples=buffer.active(), target=open_target("none", tmp_path / "serving")))
    assert record["decision"] == "skipped"
    assert record["reason"].startswith("the buffer holds 2 examples; a run needs at least 3")
    assert record["candidate"] is None and not (tmp_path / "adapters").exists()
    assert RunStore(cfg.loop_dir).all() == [record]


def _env(tmp_path: Path, redis_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SSD_")}
    env.update(
        SSD_DATA_DIR=str(tmp_path / "data"),
        SSD_REDIS_URL=redis_url,
        SSD_WEBHOOK_SECRET="s",
        SSD_SERVING="none",
        PYTHONPATH=str(ROOT),
        HF_HUB_OFFLINE="1",
        **extra,
    )
    return env


def test_run_once_json_shape_and_the_tracking_issue_comment(tmp_path: Path, redis_url: str, redis_conn, gitea):
    env = _env(
        tmp_path,
        redis_url,
        SSD_LOOP_MIN_EXAMPLES="5",
        SSD_GITEA_URL=gitea.url,
        SSD_GITEA_TOKEN=gitea.bot_token,
        SSD_TRACKING_ISSUE="acme/widgets#1",
    )
    gitea.add_issue("acme/widgets", "Loop runs")
    settings = Settings.from_env(env)
    _fill(TrainingBuffer(engine_for(settings.database_url)), range(1, 3))
    done = subprocess.run(
        [sys.executable, "-m", "ssd.cli", "loop", "run-once", "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert set(result) == JSON_KEYS
    assert result["decision"] == "skipped" and "holds 2 examples" in result["reason"]
    assert (
        result["snapshot"] == {"hash": result["snapshot"]["hash"], "size": 2} and len(result["snapshot"]["hash"]) == 64
    )
    assert result["candidate"] is None and result["gate"] == {}
    assert result["serving"] == {"target": "none", "url": "", "model": "base"}
    comments = gitea.comments_on("acme/widgets", 1)
    assert len(comments) == 1 and f"Loop run `{result['run']}`: **skipped**" in comments[0]["body"]
    assert redis_conn.get(LOCK_KEY) is None  # released


@pytest.mark.slow
def test_a_run_killed_mid_way_changes_nothing_and_is_reported_failed(
    tmp_path: Path, redis_url: str, redis_conn, tiny_model_dir: Path
):
    from bot.loop import run_once

    env = _env(tmp_path, redis_url, SSD_MODEL=str(tiny_model_dir), SSD_LOOP_MIN_EXAMPLES="2", SSD_LOOP_EVAL_LIMIT="40")
    settings = Settings.from_env(env)
    _fill(TrainingBuffer(engine_for(settings.database_url)), range(1, 4))
    # Something is promoted and served before the run: an adapter registered and deployed earlier.
    lora = tmp_path / "earlier"
    lora.mkdir()
    (lora / "adapter_config.json").write_text('{"r": 4}')
    registry = AdapterRegistry(settings.data_dir / "adapters")
    earlier = registry.create(lora, base_model=str(tiny_model_dir), base_sha256="0" * 64)
    registry.promote(earlier.id)
    target = open_target("none", settings.data_dir / "serving")
    target.deploy(earlier.id, earlier.path, None, str(tiny_model_dir), 0.7)

    proc = subprocess.Popen(
        [sys.executable, "-m", "ssd.cli", "loop", "run-once", "--json"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    store = RunStore(settings.data_dir / "loop")
    try:
        deadline = time.monotonic() + 120
        # Kill it between training and promotion: the candidate exists, the gate is evaluating.
        while not any(r.get("candidate") for r in store.all()):
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the run never got to its candidate"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    [dead] = store.all()
    assert dead["decision"] == "running" and dead["candidate"] != earlier.id
    assert registry.promoted().id == earlier.id
    assert target.current().model == earlier.id

    redis_conn.pexpire(LOCK_KEY, 1)  # its lock expires (no heartbeat any more); the next run may start
    time.sleep(0.05)
    after = run_once(replace(settings, loop_min_examples=50), conn=redis_conn)
    assert after["decision"] == "skipped"
    dead_now = store.all()[0]
    assert dead_now["decision"] == "failed" and "died before it finished" in dead_now["reason"]
    assert registry.promoted().id == earlier.id and target.current().model == earlier.id


def test_the_accepted_training_set_is_the_merged_diffs_as_answers(tmp_path: Path):
    import datasets

    from pipeline.loop.run import build_training_set, snapshot

    buffer = TrainingBuffer(engine_for(f"sqlite:///{tmp_path / 'buffer.db'}"))
    _fill(buffer, range(1, 4))
    examples = sorted(buffer.active(), key=lambda e: e.id)
    snap = snapshot(buffer.active(), None)
    accepted = build_training_set(
        _config(tmp_path, tmp_path / "no-model-needed"), buffer.active(), tmp_path / "accepted", snap
    )
    rows = datasets.load_from_disk(str(tmp_path / "accepted"))
    assert accepted["counts"] == {"prompts": 3, "kept": 3} and accepted["sampling"] is None
    assert [m["role"] for m in rows[0]["messages"]] == ["user", "assistant"]
    assert rows[0]["messages"][1]["content"] == examples[0].answer  # the merged diff is the answer
    assert accepted["prompt_ids"][0] == f"acme/widgets#1@{1:040x}"
