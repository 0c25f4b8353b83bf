"""The adapter registry, ``ssd finetune`` / ``ssd adapters`` and merging an adapter into its base model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.training.adapters import ID_PATTERN, AdapterNotFound, AdapterRegistry, RegistryError
from ssd.cli import main
from tests.tiny_model import write_dataset

pytestmark = pytest.mark.slow  # a real PEFT adapter on the tiny model (imports torch, transformers, peft)


@pytest.fixture(scope="module")
def peft_adapter(tiny_model_dir, tmp_path_factory) -> Path:
    """A real PEFT LoRA adapter for the tiny model, with non-zero B so it changes the outputs."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    config = LoraConfig(
        r=4,
        lora_alpha=8,
        target_modules=["q_proj", "v_proj", "down_proj"],
        init_lora_weights=False,
        task_type="CAUSAL_LM",
    )
    out = tmp_path_factory.mktemp("adapter") / "adapter"
    get_peft_model(model, config).save_pretrained(str(out))
    return out


def make(registry: AdapterRegistry, adapter: Path, **extra):
    return registry.create(
        adapter,
        base_model="tiny",
        base_sha256="ab" * 32,
        dataset={"counts": {"kept": 3}},
        config={"lora_r": 4},
        loss_curve=[{"step": 1, "loss": 2.5}],
        **extra,
    )


# -- registry -------------------------------------------------------------------------------------------------


def test_create_get_list_round_trip(tmp_path, peft_adapter):
    registry = AdapterRegistry(tmp_path / "adapters")
    assert registry.list() == [] and registry.promoted() is None
    first = make(registry, peft_adapter)
    second = make(registry, peft_adapter, metrics={"train": {"steps": 1}})
    assert ID_PATTERN.match(first.id) and first.id != second.id
    assert (first.path / "adapter_model.safetensors").is_file() and first.path.parent.name == first.id
    assert (peft_adapter / "adapter_config.json").is_file()  # copied, not moved
    assert registry.get(second.id) == second and second.metrics == {"train": {"steps": 1}}
    assert [r.id for r in registry.list()] == sorted([first.id, second.id], key=lambda i: (registry.get(i).created, i))
    assert not [p for p in registry.root.iterdir() if p.name.startswith(".a-")]  # no staging left behind


@pytest.mark.parametrize("bad", ["../etc", "a-20260101-000000-zzzzzz", "", "a-20260101-000000-abcdef/../../x"])
def test_unknown_or_malformed_ids_are_not_found(tmp_path, bad):
    registry = AdapterRegistry(tmp_path / "adapters")
    with pytest.raises(AdapterNotFound):
        registry.get(bad)
    with pytest.raises(AdapterNotFound):
        registry.promote(bad)


def test_a_failed_create_leaves_nothing(tmp_path, peft_adapter):
    registry = AdapterRegistry(tmp_path / "adapters")
    with pytest.raises(RegistryError, match="not a PEFT adapter"):
        registry.create(tmp_path, base_model="tiny", base_sha256="0")
    with pytest.raises(FileNotFoundError):
        make(registry, peft_adapter, gguf=tmp_path / "missing.gguf")
    assert list(registry.root.iterdir()) == []


def test_promote_and_rollback_walk_the_history(tmp_path, peft_adapter):
    registry = AdapterRegistry(tmp_path / "adapters")
    a, b, c = (make(registry, peft_adapter) for _ in range(3))
    with pytest.raises(RegistryError, match="nothing to roll back"):
        registry.rollback()
    registry.promote(a.id)
    registry.promote(b.id)
    registry.promote(b.id)  # promoting the current one again changes nothing
    registry.promote(c.id)
    assert registry.promoted() == c and registry.history() == [a.id, b.id]
    assert (registry.root / "current").read_text().strip() == c.id  # what /ssd status reads
    assert registry.rollback() == b and registry.promoted() == b
    assert registry.rollback() == a
    assert registry.rollback() is None and registry.promoted() is None  # back to the base model
    assert (registry.root / "current").read_text().strip() == "none"
    with pytest.raises(RegistryError):
        registry.rollback()


def test_set_metrics_merges_and_persists(tmp_path, peft_adapter):
    registry = AdapterRegistry(tmp_path / "adapters")
    record = make(registry, peft_adapter, metrics={"train": {"steps": 2}})
    registry.set_metrics(record.id, {"compare": {"basic": 0.1}})
    registry.set_gguf(record.id, Path("/x/adapter.gguf"))
    again = AdapterRegistry(registry.root).get(record.id)
    assert again.metrics == {"train": {"steps": 2}, "compare": {"basic": 0.1}} and again.gguf == "/x/adapter.gguf"


# -- CLI ------------------------------------------------------------------------------------------------------


@pytest.fixture
def data_env(tmp_path, monkeypatch, settings_env) -> Path:
    for name, value in settings_env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SSD_SERVING", "none")  # `adapters rollback` deploys through the serving target
    return Path(settings_env["SSD_DATA_DIR"])


def _json_out(capsys) -> object:
    out = capsys.readouterr().out
    return json.loads(out)


def test_adapters_cli_list_show_promote_rollback(data_env, peft_adapter, capsys):
    registry = AdapterRegistry(data_env / "adapters")
    assert main(["adapters", "list"]) == 0 and "no adapters yet" in capsys.readouterr().out
    a, b = make(registry, peft_adapter), make(registry, peft_adapter)
    assert main(["adapters", "promote", a.id, "--json"]) == 0
    assert _json_out(capsys) == {"promoted": a.id, "history": []}
    assert main(["adapters", "promote", b.id, "--json"]) == 0
    assert _json_out(capsys) == {"promoted": b.id, "history": [a.id]}
    assert main(["adapters", "list", "--json"]) == 0
    rows = _json_out(capsys)
    assert [(r["id"], r["promoted"], r["final_loss"]) for r in rows] == [(a.id, False, 2.5), (b.id, True, 2.5)]
    assert main(["adapters", "list"]) == 0 and f"* {b.id}" in capsys.readouterr().out
    assert main(["adapters", "show", a.id, "--json"]) == 0
    shown = _json_out(capsys)
    assert shown["id"] == a.id and shown["config"] == {"lora_r": 4} and shown["promoted"] is False
    assert main(["adapters", "rollback", "--json"]) == 0
    rolled = _json_out(capsys)
    assert (rolled["promoted"], rolled["history"], rolled["serving"]) == (
        a.id,
        [],
        {"target": "none", "url": "", "model": a.id},
    )
    assert main(["adapters", "rollback"]) == 0 and "base model" in capsys.readouterr().out
    assert main(["adapters", "show", "../../etc/passwd"]) == 1
    assert "no adapter" in capsys.readouterr().err


def test_ssd_finetune_prints_the_registered_adapter(data_env, tmp_path, tiny_model_dir, capsys):
    data = write_dataset(tmp_path / "data", n=6)
    argv = [
        "finetune",
        "--data",
        str(data),
        "--model",
        str(tiny_model_dir),
        "--max-steps",
        "2",
        "--batch-size",
        "3",
        "--lora-r",
        "4",
        "--json",
    ]
    assert main(argv) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    record = AdapterRegistry(data_env / "adapters").get(result["adapter"])
    assert result["path"] == str(record.path) and record.config["lora_r"] == 4
    assert record.metrics["train"]["steps"] == 2 and "step 2/2" in captured.err
    assert json.loads((record.path / "adapter_config.json").read_text())["r"] == 4

    assert main(["finetune", "--data", str(tmp_path / "missing"), "--model", str(tiny_model_dir)]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["finetune", "--data", str(data), "--model", str(tiny_model_dir), "--lora-dropout", "2"]) == 1
    assert "bad fine-tune settings" in capsys.readouterr().err


def test_preset_fills_only_the_flags_left_at_their_defaults():
    from ssd.cli import build_parser
    from ssd.cli.adapters import config_from_args

    args = build_parser().parse_args(["finetune", "--data", "d", "--preset", "4b-gpu", "--max-steps", "5"])
    config = config_from_args(args)
    assert config.max_steps == 5 and config.lora_r == 32 and config.max_length == 4096


# -- export ---------------------------------------------------------------------------------------------------


def test_merged_model_gives_the_adapter_model_outputs(tmp_path, tiny_model_dir, peft_adapter):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from pipeline.training.export import ExportError, merge_adapter

    merged_dir = merge_adapter(str(tiny_model_dir), peft_adapter, tmp_path / "merged")
    ids = torch.tensor([[1, 504, 3458, 28, 2, 198, 1, 520]])
    with torch.no_grad():
        base = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
        base_logits = base(ids).logits
        tuned = PeftModel.from_pretrained(base, str(peft_adapter))(ids).logits
        merged = AutoModelForCausalLM.from_pretrained(str(merged_dir))(ids).logits
    assert torch.allclose(merged, tuned, atol=1e-4)
    assert not torch.allclose(merged, base_logits, atol=1e-3)
    assert (merged_dir / "tokenizer.json").is_file()
    with pytest.raises(ExportError, match="already exists"):
        merge_adapter(str(tiny_model_dir), peft_adapter, merged_dir)


def test_cli_exports_gguf_and_merged(data_env, peft_adapter, tiny_model_dir, capsys):
    from gguf import GGUFReader
    from safetensors.numpy import load_file

    registry = AdapterRegistry(data_env / "adapters")
    record = registry.create(peft_adapter, base_model=str(tiny_model_dir), base_sha256="0")
    assert main(["adapters", "export", record.id, "--json"]) == 0
    gguf_path = Path(_json_out(capsys)["path"])
    assert registry.get(record.id).gguf == str(gguf_path) == str(record.path.parent / "adapter.gguf")
    reader = GGUFReader(str(gguf_path))
    text = {
        k: bytes(f.parts[f.data[0]]).decode()
        for k, f in reader.fields.items()
        if k in ("general.type", "adapter.type", "general.architecture")
    }
    assert text == {"general.type": "adapter", "adapter.type": "lora", "general.architecture": "llama"}
    tensors = {t.name: t for t in reader.tensors}
    hf = load_file(str(peft_adapter / "adapter_model.safetensors"))
    a = hf["base_model.model.model.layers.1.self_attn.v_proj.lora_A.weight"]
    assert (tensors["blk.1.attn_v.weight.lora_a"].data == a).all()  # [r, in] as PEFT stores it
    assert len(tensors) == 2 * 3 * 2  # A and B for 3 modules in 2 layers
    assert main(["adapters", "export", record.id, "--format", "merged", "--json"]) == 0
    assert (Path(_json_out(capsys)["path"]) / "model.safetensors").is_file()


@pytest.fixture(scope="module")
def smollm2_hf_dir(request) -> Path:
    """SmolLM2's GGUF dequantized into an HF directory once, cached like the tiny model (~20-40 s to build)."""
    from pipeline.backends import resolve_model
    from pipeline.training.trainer_child import hf_copy_of_gguf

    return hf_copy_of_gguf(resolve_model("smollm2"), request.config.cache.mkdir("smollm2-hf-v1"))


def test_gguf_lora_changes_llama_cpp_like_peft_changes_transformers(tmp_path, smollm2_hf_dir):
    """The exported LoRA on the real SmolLM2 GGUF in llama.cpp moves the logits the way the PEFT adapter
    moves them in transformers (q/k rows permuted as llama.cpp lays them out: without that, corr ~0.78)."""
    import numpy as np
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from pipeline.backends import resolve_model
    from pipeline.backends.llamacpp import open_llama
    from pipeline.training.export import base_config_for, export_lora_gguf

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(str(smollm2_hf_dir)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(smollm2_hf_dir))
    lora = LoraConfig(
        r=8,
        lora_alpha=16,
        init_lora_weights=False,
        task_type="CAUSAL_LM",
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    )
    tuned = get_peft_model(model, lora)
    for name, param in tuned.named_parameters():
        if "lora_B" in name:
            param.data *= 0.3
    tuned.save_pretrained(str(tmp_path / "adapter"))
    gguf_base = resolve_model("smollm2")
    adapter_gguf = export_lora_gguf(tmp_path / "adapter", base_config_for(gguf_base), tmp_path / "a.gguf")

    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Reverse a string in Python."}], tokenize=False, add_generation_prompt=True
    )
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        hf_tuned = tuned(torch.tensor([ids])).logits[0].numpy()
        with tuned.disable_adapter():
            hf_base = tuned(torch.tensor([ids])).logits[0].numpy()

    def llama_cpp_logits(lora_path: Path | None) -> np.ndarray:
        llm = open_llama(
            model_path=str(gguf_base),
            lora_path=str(lora_path) if lora_path else None,
            logits_all=True,
            n_ctx=256,
            n_threads=2,
            verbose=False,
        )
        try:
            llm.eval(ids)
            return np.array(llm.scores[: len(ids)])
        finally:
            llm.close()

    cpp_base, cpp_tuned = llama_cpp_logits(None), llama_cpp_logits(adapter_gguf)
    hf_delta, cpp_delta = (hf_tuned - hf_base)[-8:], (cpp_tuned - cpp_base)[-8:]
    assert np.abs(cpp_delta).mean() > 0.5  # the adapter really changes llama.cpp's output
    assert np.corrcoef(hf_delta.ravel(), cpp_delta.ravel())[0, 1] > 0.95
    assert (hf_tuned[-8:].argmax(-1) == cpp_tuned[-8:].argmax(-1)).mean() >= 0.75
