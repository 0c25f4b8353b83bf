"""SSD step 3 (``pipeline.training.compare``) and the whole chain through ``ssd train``.

The adapters here are real PEFT LoRA adapters: made with peft in the test (zero-initialised B, so the tuned model
must behave exactly like the base: a check that both conditions see the same problems, seeds and n), or trained
by ``ssd train`` itself.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.suites import load_suite
from pipeline.training.compare import (
    CompareConfig,
    CompareError,
    default_grid,
    render_markdown,
    run_compare,
    split_problems,
    trained_overlap,
)
from pipeline.training.sample import prompt_fingerprint


def test_default_grid_is_around_t_eval_and_includes_t_train():
    assert default_grid(1.0, 1.6) == [0.8, 1.0, 1.2, 1.6]
    assert default_grid(1.1, 1.6) == [0.9, 1.1, 1.3, 1.6]
    assert default_grid(1.1, 1.3) == [0.9, 1.1, 1.3]  # T_train already on the grid: measured once
    assert default_grid(0.1, None) == [0.1, 0.3]


def test_split_is_fixed_disjoint_and_complete():
    tasks = [f"t{i}" for i in range(20)]
    select, report = split_problems(tasks, 0.5, seed=0)
    assert split_problems(tasks, 0.5, seed=0) == (select, report)
    assert len(select) == 10 and not select & report and select | report == set(tasks)
    assert split_problems(tasks, 0.5, seed=1) != (select, report)
    with pytest.raises(CompareError):
        CompareConfig(select_fraction=1.0)
    with pytest.raises(CompareError):
        CompareConfig(t_eval=[0.0])


def test_overlap_with_the_training_prompts_is_found_by_id_or_text():
    problems = load_suite("basic", limit=4).problems
    assert trained_overlap({"prompt_ids": ["ssd/x"], "prompt_fingerprints": []}, problems) == []
    by_id = trained_overlap({"prompt_ids": ["basic/add"]}, problems)
    # The same task text, re-spaced and re-cased, counts too (a prompt file copied from the suite).
    shouted = "  " + problems[2].prompt.upper().replace(" ", "   ")
    by_text = trained_overlap({"prompt_fingerprints": [prompt_fingerprint(shouted)]}, problems)
    assert by_id == ["basic/add"] and by_text == [problems[2].task_id]


def test_auto_backend_is_llamacpp_only_for_a_gguf_base_with_a_gguf_adapter(tiny_model_dir: Path):
    from pipeline.training.adapters import AdapterRecord
    from pipeline.training.compare import choose_backend

    def record(gguf: str | None) -> AdapterRecord:
        return AdapterRecord(id="a-20261203-000000-000000", path=Path("/x"), base_model="m", base_sha256="0", gguf=gguf)

    assert choose_backend("auto", "smollm2", record("/x/adapter.gguf")) == "llamacpp"
    assert choose_backend("auto", "smollm2", record(None)) == "transformers"
    assert choose_backend("auto", str(tiny_model_dir), record("/x/adapter.gguf")) == "transformers"
    assert choose_backend("transformers", "smollm2", record("/x/adapter.gguf")) == "transformers"


def _zero_adapter(model_dir: Path, dest: Path) -> Path:
    """A real LoRA adapter whose update is zero (peft initialises B to 0)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(str(model_dir))
    peft_model = get_peft_model(
        model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    )
    peft_model.save_pretrained(str(dest))
    return dest


def _registry_with(tmp_path: Path, model_dir: Path, dataset: dict) -> tuple:
    from pipeline.training.adapters import AdapterRegistry

    registry = AdapterRegistry(tmp_path / "adapters")
    record = registry.create(
        _zero_adapter(model_dir, tmp_path / "lora"), base_model=str(model_dir), base_sha256="0" * 64, dataset=dataset
    )
    return registry, record


@pytest.mark.slow
def test_zero_adapter_equals_base_on_every_problem(tmp_path: Path, tiny_model_dir: Path):
    dataset = {"sampling": {"temperature": 1.6}, "prompt_ids": ["basic/add"], "prompt_fingerprints": []}
    registry, record = _registry_with(tmp_path, tiny_model_dir, dataset)
    summary = run_compare(
        CompareConfig(adapter=record.id, suite="basic", limit=6, t_eval=[1.0], max_tokens=16, select_fraction=0.5),
        registry,
    )
    (row,) = summary["grid"]
    assert row["temperature"] == 1.0 and not row["equal_to_t_train"] and summary["equal_temperature"] is None
    assert row["paired"]["overall"]["delta"] == 0 and row["paired"]["overall"]["problems"] == 3
    assert all(p["delta"] == 0 for p in row["paired"]["by_difficulty"].values())
    assert row["base"] == row["tuned"]
    assert summary["selection"] == {"fraction": 0.5, "select_problems": 3, "report_problems": 3}
    # Same seeds and problems: the per-sample outputs of the two runs are identical.
    base_prov, tuned_prov = summary["provenance"]["base"], summary["provenance"]["tuned"]
    assert base_prov["seeds"] == tuned_prov["seeds"] and base_prov["sampling"] == tuned_prov["sampling"]
    assert tuned_prov["model"]["adapter"] == str(record.path)
    # Trained on basic/add, evaluated on it: flagged.
    assert summary["trained_overlap"] == ["basic/add"]
    assert any("training prompts" in w for w in summary["warnings"])
    stored = registry.get(record.id).metrics["compare/basic"]
    assert stored["grid"] == summary["grid"] and "provenance" not in stored
    text = render_markdown(summary)
    assert "| 1 (**best**) |" in text and "chosen on 3 problems" in text and "training prompts" in text


@pytest.mark.slow
def test_ssd_train_runs_the_whole_chain_and_measures_equal_temperatures(
    tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    from pipeline.training.adapters import AdapterRegistry
    from ssd.cli import main

    monkeypatch.setenv("SSD_DATA_DIR", str(tmp_path / "data"))
    code = main(
        [
            "train",
            "--prompts",
            "suite:basic",
            "--model",
            str(tiny_model_dir),
            "--limit",
            "8",
            "--max-tokens",
            "16",
            "--max-steps",
            "2",
            "--suite",
            "basic",
            "--eval-limit",
            "4",
            "--eval-max-tokens",
            "16",
            "--json",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = json.loads(captured.out)
    assert Path(result["dataset"]).parent == tmp_path / "data" / "datasets"
    compare = result["compare"]
    # Default grid: around the fallback T_eval 1.0, plus T_train 1.6, which is warned about and measured.
    assert [row["temperature"] for row in compare["grid"]] == [0.8, 1.0, 1.2, 1.6]
    assert compare["equal_temperature"]["temperature"] == 1.6 and "delta" in compare["equal_temperature"]
    assert any("T_eval equals T_train (1.6)" in w and "not from the paper" in w for w in compare["warnings"])
    assert compare["optimistic"] is True and compare["t_train"] == 1.6
    # Sampled from basic's prompts, evaluated on basic: the four evaluated problems were trained on.
    assert compare["trained_overlap"] == [p.task_id for p in load_suite("basic", limit=4).problems]
    record = AdapterRegistry(tmp_path / "data" / "adapters").get(result["adapter"])
    assert record.dataset["counts"]["prompts"] == 8 and record.dataset["prompts"]["source"] == "suite:basic"
    assert record.metrics["compare/basic"]["best"]["temperature"] == compare["best"]["temperature"]
    assert "step 3/3: compare" in captured.err


@pytest.mark.slow
def test_compare_on_the_real_smollm2(tmp_path: Path, request: pytest.FixtureRequest):
    """Step 3 on the real model: SmolLM2 (its dequantized copy, as the fine-tune makes it), a zero LoRA on top."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoConfig, AutoModelForCausalLM

    from pipeline.backends import MODELS
    from pipeline.training.adapters import AdapterRegistry

    gguf = MODELS["smollm2"]()
    # The adapter only needs SmolLM2's shapes: a randomly initialised model of its config is enough to make
    # it, and costs a second instead of a dequantising load.
    config = AutoConfig.from_pretrained(str(gguf.parent), gguf_file=gguf.name, local_files_only=True)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config)
    get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj"], task_type="CAUSAL_LM")).save_pretrained(
        str(tmp_path / "lora")
    )
    registry = AdapterRegistry(tmp_path / "adapters")
    # The dequantized copy is made once per machine (30-60 s) and kept in pytest's cache, like the tiny model.
    (registry.root / "runs").mkdir(parents=True)
    (registry.root / "runs" / "base-cache").symlink_to(request.config.cache.mkdir("smollm2-hf-copy"))
    record = registry.create(
        tmp_path / "lora", base_model="smollm2", base_sha256="0" * 64, dataset={"sampling": {"temperature": 1.6}}
    )
    summary = run_compare(
        CompareConfig(adapter=record.id, suite="basic", limit=2, t_eval=[1.0], max_tokens=32), registry
    )
    assert summary["base_model"] == "smollm2" and summary["suite"]["problems"] == 2
    assert summary["eval_model"].endswith("/model") and "base-cache" in summary["eval_model"]
    (row,) = summary["grid"]
    assert row["base"] == row["tuned"] and row["paired"]["overall"]["delta"] == 0


def test_ssd_train_flags_reach_the_right_config():
    """``ssd train`` carries the flags of all three steps; clashing names are prefixed, shared ones shared."""
    from pipeline.options import dataclass_from_args
    from pipeline.training.config import FinetuneConfig
    from ssd.cli import build_parser
    from ssd.cli.train import COMPARE_PREFIXED, FINETUNE_PREFIXED, sample_config

    args = build_parser().parse_args(
        [
            "train",
            "--model",
            "m",
            "--limit",
            "40",
            "--max-tokens",
            "256",
            "--batch-size",
            "2",
            "--seed",
            "7",
            "--t-train",
            "1.5",
            "--max-steps",
            "3",
            "--ft-batch-size",
            "8",
            "--ft-backend",
            "trl",
            "--suite",
            "basic",
            "--t-eval",
            "0.9,1.1",
            "--eval-limit",
            "10",
            "--eval-max-tokens",
            "128",
            "--eval-backend",
            "llamacpp",
        ]
    )
    sample = sample_config(args, "out")
    ft = dataclass_from_args(FinetuneConfig, args, **{n: getattr(args, "ft_" + n) for n in FINETUNE_PREFIXED})
    cmp = dataclass_from_args(CompareConfig, args, **{n: getattr(args, "eval_" + n) for n in COMPARE_PREFIXED})
    assert (sample.model, sample.limit, sample.max_tokens, sample.batch_size, sample.seed, sample.t_train) == (
        "m",
        40,
        256,
        2,
        7,
        1.5,
    )
    assert (ft.max_steps, ft.batch_size, ft.backend, ft.seed) == (3, 8, "trl", 7)
    assert (cmp.model, cmp.limit, cmp.max_tokens, cmp.backend, cmp.seed, cmp.t_eval, cmp.t_train) == (
        "m",
        10,
        128,
        "llamacpp",
        7,
        [0.9, 1.1],
        1.5,
    )
    assert cmp.batch_size == CompareConfig().batch_size  # --batch-size is the sampler's, not the comparison's
