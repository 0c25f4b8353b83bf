"""transformers in process: Hugging Face model directories (or a GGUF, dequantized to fp32), with an
optional PEFT LoRA adapter on top -- how the output of SSD training is evaluated before export.

Batching: conversations are rendered with the model's chat template and generated ``batch_size``
rows at a time, left-padded. Seeding: torch has one global generator, so sample ``i`` of every
prompt in a chunk is drawn after ``torch.manual_seed(seed + i)``; a sample is reproducible for the
same chunk of prompts (same order and ``batch_size``), not alone as with llama.cpp.
"""

from __future__ import annotations

import os
from pathlib import Path

from pipeline.backends.base import Backend, BackendError, Messages, cut_at_stop, sample_seed
from pipeline.backends.llamacpp import default_threads
from pipeline.types import SamplingParams


class TransformersBackend(Backend):
    name = "transformers"

    def __init__(
        self,
        model_dir: str | Path,
        model_id: str | None = None,
        gguf_file: str | None = None,
        adapter: str | Path | None = None,
        device: str | None = None,
        dtype: str | None = None,
        batch_size: int = 8,
        n_threads: int | None = None,
    ) -> None:
        model_dir = Path(model_dir)
        shown = model_dir / gguf_file if gguf_file else model_dir
        super().__init__(
            model_id=model_id or str(shown), model_path=str(shown), adapter=str(adapter) if adapter else None
        )
        # No hub at run time: make huggingface_hub fail fast instead of trying the network. It reads
        # this when first imported, so it is set before the import below.
        os.environ["HF_HUB_OFFLINE"] = "1"
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.torch = torch
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if n_threads or self.device == "cpu":
            # cores - 1 by default, for the reason given in llamacpp.default_threads (OpenMP spins too)
            torch.set_num_threads(n_threads or default_threads())
        # fp32 on CPU (no native bf16 on the project's CPUs); bf16 on a GPU that has it.
        if dtype is None:
            dtype = "bfloat16" if self.device.startswith("cuda") and torch.cuda.is_bf16_supported() else "float32"
        self.dtype = dtype
        self.batch_size = max(1, batch_size)
        kwargs = {"local_files_only": True}
        if gguf_file:
            kwargs["gguf_file"] = gguf_file
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir), **kwargs)
            model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=getattr(torch, dtype), **kwargs)
        except OSError as exc:
            raise BackendError(f"cannot load a transformers model from {shown}: {exc}") from exc
        if adapter:
            from peft import PeftModel

            if not (Path(adapter) / "adapter_config.json").is_file():
                raise BackendError(f"{adapter} is not a PEFT adapter directory (no adapter_config.json)")
            model = PeftModel.from_pretrained(model, str(adapter))
        if not getattr(self.tokenizer, "chat_template", None):
            raise BackendError(f"{shown} has no chat template; evaluation prompts are chat conversations")
        self.tokenizer.padding_side = "left"  # decoder-only: new tokens must follow the prompt directly
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = model.to(self.device).eval()

    def _generate(self, messages_batch: list[Messages], params: SamplingParams) -> list[list[str]]:
        prompts = [
            self.tokenizer.apply_chat_template(m, tokenize=False, add_generation_prompt=True) for m in messages_batch
        ]
        result: list[list[str]] = [[""] * params.n for _ in prompts]
        for i in range(params.n):
            for start in range(0, len(prompts), self.batch_size):
                self.torch.manual_seed(sample_seed(params, i))
                texts = self._chunk(prompts[start : start + self.batch_size], params)
                for offset, text in enumerate(texts):
                    result[start + offset][i] = text
        return result

    def _chunk(self, prompts: list[str], params: SamplingParams) -> list[str]:
        # The rendered template already holds the special tokens; adding them again would double BOS.
        enc = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        kwargs = {
            "max_new_tokens": params.max_tokens,
            "pad_token_id": self.tokenizer.pad_token_id,
            "repetition_penalty": 1.0,
        }
        if params.temperature == 0:
            # Greedy; the sampling knobs are unset so the model's generation_config cannot add any.
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None, min_p=None)
        else:
            kwargs.update(
                do_sample=True,
                temperature=params.temperature,
                top_p=params.top_p,
                top_k=params.top_k,  # must be explicit: generation_config defaults to 50; 0 = off
                min_p=params.min_p or None,
            )
        if params.stop:
            kwargs.update(stop_strings=list(params.stop), tokenizer=self.tokenizer)
        with self.torch.no_grad():
            out = self.model.generate(**enc, **kwargs)
        new_tokens = out[:, enc["input_ids"].shape[1] :]
        pad = self.tokenizer.pad_token_id
        self.usage.prompt_tokens += int(enc["attention_mask"].sum())
        self.usage.completion_tokens += int((new_tokens != pad).sum())
        texts = self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        # generate() stops *after* a stop string and keeps it; cut to match the other backends.
        return [cut_at_stop(text, params.stop) for text in texts]

    def close(self) -> None:
        self.model = None
