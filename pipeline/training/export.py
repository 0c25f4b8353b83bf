"""Make a trained adapter servable without PEFT: merge it into its base model (a Hugging Face directory).

Paths that work (see README "Fine-tuning and adapters"):

- **PEFT directory** (what ``ssd finetune`` registers): ``ssd eval --model BASE --adapter DIR`` with the
  transformers backend.
- **Merged model** (``merge_adapter``, ``ssd adapters export ID``): base + LoRA folded into plain weights,
  saved as an fp32/bf16 Hugging Face directory with the base's tokenizer; any transformers consumer loads it.
  A GGUF base is dequantized first (fp32), so the merged directory is ~4x the GGUF's size.
- llama.cpp's ``convert_lora_to_gguf.py`` / ``convert_hf_to_gguf.py`` are NOT in the installed
  llama-cpp-python wheel (only in its source distribution, with their ``conversion`` package), so they are not
  called from here; a merged directory can be converted with them by hand.
"""

from __future__ import annotations

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
