"""SSD sampling: the config-to-flags helper, presets, prompt sources, and ``pipeline.training.sample``."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pipeline.options import add_dataclass_arguments, dataclass_from_args
from pipeline.training.presets import FALLBACK, preset_for
from pipeline.training.prompt_sources import PromptSourceError, load_prompts
from pipeline.training.sample import (
    SampleConfig,
    SampleError,
    filter_samples,
    is_stub,
    read_provenance,
    run_sample,
)


@dataclass
class _Demo:
    model: str = field(metadata={"help": "model spec"})
    t_train: float | None = field(default=None, metadata={"help": "temperature, 100% honest"})
    limit: int | None = field(default=None, metadata={"help": "at most this many"})
    temperatures: list[float] = field(default_factory=lambda: [1.0, 1.1], metadata={"help": "grid"})
    chat_template: bool = field(default=False, metadata={"help": "wrap in the chat template"})
    mode: str = field(default="a", metadata={"help": "mode", "choices": ["a", "b"]})


def _parser(**kwargs) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="demo", exit_on_error=False)
    add_dataclass_arguments(parser, _Demo, **kwargs)
    return parser


def test_flags_round_trip_to_the_dataclass():
    args = _parser().parse_args(
        [
            "--model",
            "m",
            "--t-train",
            "1.6",
            "--temperatures",
            "0.7,1.1",
            "--chat-template",
            "--limit",
            "none",
            "--mode",
            "b",
        ]
    )
    cfg = dataclass_from_args(_Demo, args)
    assert cfg == _Demo(model="m", t_train=1.6, limit=None, temperatures=[0.7, 1.1], chat_template=True, mode="b")


def test_defaults_help_and_overrides():
    parser = _parser()
    text = parser.format_help()
    assert "temperature, 100% honest (default: none)" in text
    assert "grid (default: 1.0,1.1)" in text
    assert "--no-chat-template" in text
    cfg = dataclass_from_args(_Demo, parser.parse_args(["--model", "m"]), limit=3)
    assert (cfg.t_train, cfg.limit, cfg.temperatures, cfg.chat_template) == (None, 3, [1.0, 1.1], False)


def test_bad_values_and_missing_required_are_refused():
    parser = _parser()
    with pytest.raises((argparse.ArgumentError, SystemExit)):
        parser.parse_args(["--model", "m", "--t-train", "hot"])
    with pytest.raises((argparse.ArgumentError, SystemExit)):
        parser.parse_args(["--model", "m", "--mode", "c"])
    with pytest.raises((argparse.ArgumentError, SystemExit)):
        parser.parse_args([])


def test_skip_and_prefix():
    parser = argparse.ArgumentParser()
    add_dataclass_arguments(parser, _Demo, skip=("mode",), prefix="s-")
    args = parser.parse_args(["--s-model", "m", "--s-limit", "4"])
    assert not hasattr(args, "mode") and not hasattr(args, "s_mode")
    cfg = dataclass_from_args(_Demo, args, prefix="s-")
    assert (cfg.model, cfg.limit, cfg.mode) == ("m", 4, "a")


# ---------------------------------------------------------------- presets


def test_presets_follow_the_released_settings_and_fall_back():
    qwen = preset_for("/models/Qwen3-4B-Instruct-2507")
    assert (qwen.t_train, qwen.top_p, qwen.top_k, qwen.t_eval) == (1.6, 0.8, 20, 1.1)
    thinking = preset_for("qwen3-4b-thinking-2507")
    assert (thinking.t_train, thinking.top_p, thinking.t_eval) == (1.1, 0.95, 0.7)
    assert preset_for("openai:Qwen3-30B-A3B-Instruct-2507").t_eval == 0.9
    assert preset_for("smollm2") is FALLBACK and preset_for("/x/llama-3.1-8b.gguf") is FALLBACK
    assert preset_for("smollm2", family="qwen3-4b-instruct").t_eval == 1.1
    with pytest.raises(ValueError, match="unknown preset"):
        preset_for("smollm2", family="nope")


def test_sample_config_takes_explicit_values_over_the_preset():
    params = SampleConfig(model="qwen3-4b-instruct", t_train=1.5, top_k=0).params()
    assert (params.temperature, params.top_p, params.top_k, params.n) == (1.5, 0.8, 0, 1)
    assert SampleConfig(chat_template=False).params().stop == ("<|im_end|>", "<|endoftext|>")
    for bad in ({"t_train": 0}, {"filter_shortest_percent": 100}, {"limit": 0}, {"top_p": 1.5}):
        with pytest.raises(SampleError):
            SampleConfig(**bad)


# ---------------------------------------------------------------- filtering


def _rows(*responses: str) -> list[dict]:
    return [{"prompt_id": f"p{i}", "prompt": "q", "response": r} for i, r in enumerate(responses)]


def test_filter_drops_empty_and_the_shortest_percent_with_reasons():
    rows = _rows("", "  ", *[f"answer {'x' * i}" for i in range(10, 0, -1)])  # 2 empty, 10 non-empty
    kept, dropped = filter_samples(rows, 10)
    reasons = {row["prompt_id"]: row["reason"] for row in dropped}
    assert reasons == {"p0": "empty", "p1": "empty", "p11": "shortest_10pct"}  # int(10 * 10%) = 1, the shortest
    assert [row["prompt_id"] for row in kept] == [f"p{i}" for i in range(2, 11)]
    kept, dropped = filter_samples(rows, 25)
    assert sorted(r["prompt_id"] for r in dropped if r["reason"] == "shortest_25pct") == ["p10", "p11"]


def test_filter_zero_percent_is_the_papers_empty_and_stub_rule():
    code = "```python\ndef f(x):\n    return x\n```"
    rows = _rows("", "pass", "def f(x): return x", code, "x" * 90, "```python\nf()```")
    kept, dropped = filter_samples(rows, 0)
    assert {r["prompt_id"]: r["reason"] for r in dropped} == {"p0": "empty", "p1": "stub", "p2": "stub"}
    assert [r["prompt_id"] for r in kept] == ["p3", "p4", "p5"]
    assert is_stub("return 1") and not is_stub("a\nb") and not is_stub("```x```")


# ---------------------------------------------------------------- prompt sources


def test_prompt_files_jsonl_and_text(tmp_path: Path):
    jsonl = tmp_path / "p.jsonl"
    jsonl.write_text('{"id": "a", "prompt": "one"}\n\n{"prompt": "two"}\n', encoding="utf-8")
    got = load_prompts(str(jsonl))
    assert [(i.id, i.prompt) for i in got.items] == [("a", "one"), ("p:3", "two")]
    assert len(got.sha256) == 64 and got.describe()["prompts"] == 2
    text = tmp_path / "p.txt"
    text.write_text("first prompt\n\nsecond prompt\n", encoding="utf-8")
    assert [i.id for i in load_prompts(str(text), limit=1).items] == ["p:1"]


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"prompt": "ok"}\n{not json\n', "p.jsonl:2: not JSON"),
        ('{"prompt": ""}\n', 'needs a non-empty string field "prompt"'),
        ('{"id": "x", "prompt": "a"}\n{"id": "x", "prompt": "b"}\n', "appears twice"),
        ("", "holds no prompts"),
    ],
)
def test_bad_prompt_files_say_which_line(tmp_path: Path, content: str, message: str):
    path = tmp_path / "p.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(PromptSourceError, match=message):
        load_prompts(str(path))


def test_suite_shipped_and_unknown_sources():
    suite = load_prompts("suite:basic", limit=3)
    assert [i.id for i in suite.items] == ["basic/add", "basic/count_vowels", "basic/run_length_encode"]
    assert "add(a, b)" in suite.items[0].prompt
    assert len(load_prompts("shipped")) >= 200
    with pytest.raises(PromptSourceError, match="unknown prompt source"):
        load_prompts("nowhere.jsonl")
    with pytest.raises(PromptSourceError, match="unknown suite"):
        load_prompts("suite:nope")
    with pytest.raises(PromptSourceError, match="needs the training buffer"):
        load_prompts("buffer")


def test_buffer_source_reads_the_active_issue_texts(tmp_path: Path):
    from core.db import engine_for
    from pipeline.buffer import Example, TrainingBuffer

    buffer = TrainingBuffer(engine_for(f"sqlite:///{tmp_path / 'b.db'}"), window=2)
    for number in (1, 2, 3):
        buffer.add(
            Example(repo="o/r", pr_number=number, merge_sha=f"{number}" * 40, prompt=f"issue {number}", answer="diff")
        )
    got = load_prompts("buffer", buffer=buffer)
    assert [i.prompt for i in got.items] == ["issue 2", "issue 3"]  # the window: the newest two, oldest first
    assert got.items[0].id == "o/r#2@222222222222"


# ---------------------------------------------------------------- sampling on a real (tiny) model


REPO = Path(__file__).resolve().parents[1]


def _dataset(path: Path):
    import datasets

    return datasets.load_from_disk(str(path))


@pytest.mark.slow
def test_sample_writes_a_dataset_with_provenance_and_drop_log(tmp_path: Path, tiny_model_dir: Path):
    from pipeline.provenance import sha256_path

    out = tmp_path / "ds"
    progress: list[float] = []
    result = run_sample(
        SampleConfig(model=str(tiny_model_dir), out=str(out), limit=10, max_tokens=12, batch_size=4),
        progress=lambda f, m: progress.append(f),
    )
    ds = _dataset(out)
    assert ds.column_names == ["messages", "prompt_id", "source"]
    assert len(ds) == result.kept == 9  # int(10 * 10%) = 1 shortest dropped (random weights never answer empty)
    row = ds[0]
    assert [m["role"] for m in row["messages"]] == ["user", "assistant"]
    assert row["messages"][0]["content"] == load_prompts("shipped").items[0].prompt and row["source"] == "shipped"
    prov = read_provenance(out)
    assert prov["model"]["sha256"] == sha256_path(tiny_model_dir)
    assert prov["prompts"]["sha256"] == load_prompts("shipped").sha256 and prov["prompts"]["limit"] == 10
    assert prov["sampling"] | {"stop": None} == {
        "temperature": 1.6,
        "top_p": 0.8,
        "top_k": 20,
        "min_p": 0.0,
        "max_tokens": 12,
        "seed": 0,
        "stop": None,
    }
    assert prov["chat_template"] is True and prov["seed"] == 0
    assert prov["counts"] == {"prompts": 10, "sampled": 10, "kept": 9, "dropped": {"shortest_10pct": 1}}
    dropped = [json.loads(line) for line in (out / "dropped.jsonl").read_text().splitlines()]
    assert [d["reason"] for d in dropped] == ["shortest_10pct"] and dropped[0]["prompt_id"] not in ds["prompt_id"]
    assert "ssd sample --prompts shipped" in prov["command"] and "--t-train 1.6" in prov["command"]
    assert progress[-1] == 1.0 and progress == sorted(progress)

    # Same settings again: everything is already sampled; the dataset is rewritten identically.
    again = run_sample(SampleConfig(model=str(tiny_model_dir), out=str(out), limit=10, max_tokens=12, batch_size=4))
    assert again.resumed_from == 10 and _dataset(out)["messages"] == ds["messages"]
    # Other settings into the same directory are refused, not mixed.
    with pytest.raises(SampleError, match="sampling"):
        run_sample(
            SampleConfig(model=str(tiny_model_dir), out=str(out), limit=10, max_tokens=12, batch_size=4, t_train=1.2)
        )
    with pytest.raises(SampleError, match="--out DIR"):
        run_sample(SampleConfig(model=str(tiny_model_dir)))


@pytest.mark.slow
def test_raw_prompt_mode_samples_without_the_chat_template(tmp_path: Path, tiny_model_dir: Path):
    cfg = dict(model=str(tiny_model_dir), limit=4, max_tokens=12, batch_size=4, filter_shortest_percent=0)
    run_sample(SampleConfig(out=str(tmp_path / "chat"), **cfg))
    run_sample(SampleConfig(out=str(tmp_path / "raw"), chat_template=False, **cfg))
    assert read_provenance(tmp_path / "raw")["chat_template"] is False
    # Same seed, same prompts: only the rendering differs, and with it what the model continues.
    assert _dataset(tmp_path / "raw")["messages"] != _dataset(tmp_path / "chat")["messages"]


def _ssd(*args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "ssd.cli", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
        start_new_session=True,
    )


@pytest.mark.slow
def test_sample_resumes_after_a_kill_and_matches_an_uninterrupted_run(tmp_path: Path, tiny_model_dir: Path):
    args = [
        "sample",
        "--prompts",
        "shipped",
        "--model",
        str(tiny_model_dir),
        "--limit",
        "30",
        "--max-tokens",
        "16",
        "--batch-size",
        "2",
    ]
    cut = tmp_path / "cut"
    proc = _ssd(*args, "--out", str(cut))
    raw = cut / "raw.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if raw.exists() and len(raw.read_text().splitlines()) >= 4:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed: raise --limit"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = len(raw.read_text().splitlines())
    assert 4 <= before < 30 and not (cut / "provenance.json").exists()
    # A torn last line (the kill came mid-write) must not break the resume.
    with open(raw, "a") as handle:
        handle.write('{"prompt_id": "ssd/tor')

    resumed = _ssd(*args, "--out", str(cut), "--json")
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    result = json.loads(out)
    assert result["resumed_from"] == before - before % 2 and result["provenance"]["counts"]["sampled"] == 30
    ids = [json.loads(line)["prompt_id"] for line in raw.read_text().splitlines()]
    assert len(ids) == len(set(ids)) == 30

    run_sample(
        SampleConfig(model=str(tiny_model_dir), out=str(tmp_path / "whole"), limit=30, max_tokens=16, batch_size=2)
    )
    assert _dataset(cut)["messages"] == _dataset(tmp_path / "whole")["messages"]


@pytest.mark.slow
def test_sample_on_the_real_smollm2(tmp_path: Path):
    from pipeline.backends import MODELS
    from pipeline.provenance import sha256_path

    out = tmp_path / "ds"
    result = run_sample(SampleConfig(model="smollm2", out=str(out), limit=3, max_tokens=48))
    prov = read_provenance(out)
    assert prov["model"]["backend"] == "llamacpp"
    assert prov["model"]["sha256"] == sha256_path(MODELS["smollm2"]())
    assert prov["counts"]["sampled"] == 3 and result.kept == len(_dataset(out)) >= 2
    assert all(m[1]["content"].strip() for m in _dataset(out)["messages"])
