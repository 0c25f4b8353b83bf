"""Make a trained adapter servable without PEFT.

- ``export_lora_gguf``: the LoRA as a llama.cpp adapter GGUF (written with the ``gguf`` package, in the layout of
  llama.cpp's ``convert_lora_to_gguf.py``, which is not in the installed llama-cpp-python wheel -- only in its
  sdist, with the ``conversion`` package it imports). ``Llama(model_path=BASE.gguf, lora_path=...)`` loads it.
- ``merge_adapter``: base + LoRA folded into plain weights, saved as a Hugging Face directory with the base's
  tokenizer. A GGUF base is dequantized first (fp32), so the merged directory is ~4x the GGUF's size.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path


class ExportError(Exception):
    pass


def merge_adapter(base_model: str, adapter_dir: Path, out_dir: Path) -> Path:
    """Load ``base_model`` (a spec: alias, .gguf or HF dir), apply the PEFT adapter, merge, save to ``out_dir``
    (written to a temp dir beside it, then renamed: whole or not at all)."""
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from pipeline.backends import ModelNotFound, resolve_model
    from pipeline.training.trainer_child import load_gguf_as_hf

    adapter_dir, out_dir = Path(adapter_dir), Path(out_dir)
    if not (adapter_dir / "adapter_config.json").is_file():
        raise ExportError(f"{adapter_dir} is not a PEFT adapter directory")
    if out_dir.exists():
        raise ExportError(f"{out_dir} already exists; remove it or choose another --out")
    try:
        base_path = resolve_model(base_model)
    except ModelNotFound as exc:
        raise ExportError(str(exc)) from None
    if base_path.suffix == ".gguf":
        model, tokenizer = load_gguf_as_hf(base_path)
    else:
        tokenizer = AutoTokenizer.from_pretrained(str(base_path), local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(str(base_path), local_files_only=True, dtype=torch.float32)
    merged = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        merged.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir


# -- LoRA adapter -> GGUF for llama.cpp ----------------------------------------------------------------------
# What llama.cpp's convert_lora_to_gguf.py writes, for the architectures below: general.type "adapter",
# adapter.type "lora", adapter.lora.alpha; per adapted matrix "<gguf name>.weight.lora_a" ([r, in]) and
# ".lora_b" ([out, r]). llama.cpp scales by alpha / r like PEFT. For Llama-family models convert_hf_to_gguf
# permutes the rows of q_proj/k_proj (rotary layout), so the same permutation is applied to B (rows of B A).

# HF model_type -> (gguf architecture name, permute q/k)
GGUF_ARCHITECTURES = {
    "llama": ("llama", True),
    "mistral": ("llama", True),
    "qwen2": ("qwen2", False),
    "qwen3": ("qwen3", False),
}


def _permute_rows(weights, n_head: int):  # noqa: ANN001, ANN202 - numpy in, numpy out
    return (
        weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


def export_lora_gguf(adapter_dir: Path, base_config: dict, out_path: Path) -> Path:
    """Write the PEFT LoRA in ``adapter_dir`` as a llama.cpp LoRA GGUF (f32) for a base whose HF
    ``config.json`` is ``base_config``. Load it with ``Llama(model_path=BASE.gguf, lora_path=out_path)``."""
    import gguf
    from safetensors.numpy import load_file

    adapter_dir, out_path = Path(adapter_dir), Path(out_path)
    peft_config = json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))
    model_type = base_config.get("model_type")
    if model_type not in GGUF_ARCHITECTURES:
        raise ExportError(
            f"GGUF export supports {', '.join(GGUF_ARCHITECTURES)} models, not {model_type!r}; "
            "use `ssd adapters export` (merge) instead"
        )
    if (
        peft_config.get("use_rslora")
        or peft_config.get("use_dora")
        or peft_config.get("rank_pattern")
        or peft_config.get("alpha_pattern")
    ):
        raise ExportError("GGUF export handles plain LoRA only (no rsLoRA, DoRA or per-module ranks)")
    arch_name, permute = GGUF_ARCHITECTURES[model_type]
    arch = next(a for a, name in gguf.MODEL_ARCH_NAMES.items() if name == arch_name)
    n_layers = int(base_config["num_hidden_layers"])
    n_head = int(base_config["num_attention_heads"])
    n_head_kv = int(base_config.get("num_key_value_heads") or n_head)
    names = gguf.get_tensor_name_map(arch, n_layers)
    tensors = load_file(str(adapter_dir / "adapter_model.safetensors"))

    pairs: dict[str, dict[str, object]] = {}
    for key, value in tensors.items():
        for part, suffix in (("a", ".lora_A.weight"), ("b", ".lora_B.weight")):
            if key.endswith(suffix):
                module = key.removeprefix("base_model.model.").removesuffix(suffix)
                pairs.setdefault(module, {})[part] = value
                break
        else:
            raise ExportError(f"unexpected tensor {key} in the adapter (only LoRA A/B matrices are exported)")

    out_path.parent.mkdir(parents=True, exist_ok=True)
    staging = out_path.with_name(f".{out_path.name}.tmp")
    writer = gguf.GGUFWriter(str(staging), arch_name)
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(peft_config["lora_alpha"]))
    for module, pair in sorted(pairs.items()):
        if set(pair) != {"a", "b"}:
            raise ExportError(f"{module} has only one of its LoRA matrices")
        name = names.get_name(module + ".weight", try_suffixes=(".weight",))
        if name is None:
            raise ExportError(f"no llama.cpp tensor for {module}")
        lora_a, lora_b = pair["a"].astype("float32"), pair["b"].astype("float32")
        if permute and module.endswith("q_proj"):
            lora_b = _permute_rows(lora_b, n_head)
        elif permute and module.endswith("k_proj"):
            lora_b = _permute_rows(lora_b, n_head_kv)
        writer.add_tensor(name + ".lora_a", lora_a)
        writer.add_tensor(name + ".lora_b", lora_b)
    try:
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        staging.replace(out_path)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise
    return out_path


def base_config_for(model_path: Path) -> dict:
    """The fields ``export_lora_gguf`` needs, from a HF directory's config.json or a GGUF's metadata."""
    model_path = Path(model_path)
    if model_path.suffix != ".gguf":
        return json.loads((model_path / "config.json").read_text(encoding="utf-8"))
    from gguf import GGUFReader

    reader = GGUFReader(str(model_path))

    def value(key: str):  # noqa: ANN202 - a scalar from the metadata
        field = reader.fields.get(key)
        if field is None:
            raise ExportError(f"{model_path.name} has no {key} in its metadata")
        part = field.parts[field.data[0]]
        return bytes(part).decode() if field.types[0].name == "STRING" else int(part[0])

    arch = value("general.architecture")
    return {
        "model_type": arch,
        "num_hidden_layers": value(f"{arch}.block_count"),
        "num_attention_heads": value(f"{arch}.attention.head_count"),
        "num_key_value_heads": value(f"{arch}.attention.head_count_kv"),
    }
