"""llama.cpp in process (llama-cpp-python): the default for GGUF files, ~6x transformers on CPU.

Reproducibility: llama-cpp-python reuses the KV cache for the longest common token prefix with the
previous request, which changes the batch shape of the prompt evaluation and therefore the last bits
of the logits, so the same seed can give different text depending on what ran before
(ML-STACK.md §2). We call ``llm.reset()`` before every sample: a sample then depends only on
(model, prompt, params, seed). Costs one prompt evaluation per sample (prompts are short).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from pipeline.backends.base import Backend, Messages, UnsupportedParam, sample_seed
from pipeline.types import SamplingParams


def available_cores() -> int:
    """Cores this process may run on (affinity-aware, unlike os.cpu_count())."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def default_threads() -> int:
    """All cores but one. llama.cpp's worker threads spin on barriers several times per token, so when
    they outnumber the free cores a token waits for descheduled threads: on the 2-core machine under
    load (the executor runs beside generation during an eval), 2 threads gave 100 tokens in 113 s and
    1 thread in 7 s. The spare core goes to the executor; pass n_threads to use all."""
    return max(1, available_cores() - 1)


def cpu_has_amx() -> bool:
    """Whether this CPU advertises Intel AMX (Linux ``/proc/cpuinfo`` flags)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return "amx_int8" in line.split()
    except OSError:
        pass
    return False


def disable_amx_repacking() -> None:
    """On a CPU with AMX, make every ``llama_cpp.Llama`` of this process load without ggml's extra buffer
    types (idempotent).

    llama-cpp-python 0.3.36 built natively on an AMX CPU (Xeon Sapphire Rapids and later) segfaults in
    ``ggml_backend_amx_mul_mat`` on the first decode of SmolLM2's GGUF (seen on this project's machines,
    with the kernel granting AMX state). ``use_extra_bufts=False`` keeps ggml on its plain CPU kernels; the
    ``Llama`` constructor does not take it, so the default model parameters it starts from are adjusted.
    """
    import llama_cpp.llama_cpp as native  # heavy native import: only when a GGUF is really opened

    defaults = native.llama_model_default_params
    if not cpu_has_amx() or getattr(defaults, "ssd_without_extra_buffers", False):
        return

    def without_extra_buffers() -> Any:
        params = defaults()
        params.use_extra_bufts = False
        return params

    without_extra_buffers.ssd_without_extra_buffers = True  # type: ignore[attr-defined]
    native.llama_model_default_params = without_extra_buffers


def open_llama(**kwargs: Any) -> Any:
    """``llama_cpp.Llama(**kwargs)``, safe on AMX CPUs (``disable_amx_repacking``)."""
    from llama_cpp import Llama

    disable_amx_repacking()
    return Llama(**kwargs)


class LlamaCppBackend(Backend):
    name = "llamacpp"

    def __init__(
        self,
        model_path: str | Path,
        model_id: str | None = None,
        lora_path: str | Path | None = None,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        verbose: bool = False,
    ) -> None:
        path = Path(model_path)
        super().__init__(
            model_id=model_id or str(path), model_path=str(path), adapter=str(lora_path) if lora_path else None
        )
        self.n_ctx = n_ctx
        self.n_threads = n_threads or default_threads()
        self.llm = open_llama(
            model_path=str(path),
            n_ctx=n_ctx,
            n_threads=self.n_threads,
            n_threads_batch=self.n_threads,
            lora_path=str(lora_path) if lora_path else None,
            verbose=verbose,
        )

    def check_params(self, params: SamplingParams) -> None:
        if params.max_tokens >= self.n_ctx:
            raise UnsupportedParam(f"max_tokens={params.max_tokens} does not fit the context window n_ctx={self.n_ctx}")

    def _generate(self, messages_batch: list[Messages], params: SamplingParams) -> list[list[str]]:
        # llama-cpp-python evaluates one sequence at a time; "batched" here means one call for many.
        return [
            [self._one(messages, params, sample_seed(params, i)) for i in range(params.n)]
            for messages in messages_batch
        ]

    def _one(self, messages: Messages, params: SamplingParams, seed: int) -> str:
        self.llm.reset()
        response = self.llm.create_chat_completion(
            messages=messages,
            # temperature 0 selects llama.cpp's greedy sampler; the others are then irrelevant.
            temperature=params.temperature,
            top_p=params.top_p,
            top_k=params.top_k,  # 0 disables top-k in llama.cpp, matching SamplingParams
            min_p=params.min_p,
            # llama-cpp-python's defaults are not neutral (typical/repeat penalties): set them so the
            # distribution is exactly the one SamplingParams describes.
            typical_p=1.0,
            repeat_penalty=1.0,
            presence_penalty=0.0,
            frequency_penalty=0.0,
            max_tokens=params.max_tokens,
            stop=list(params.stop),
            seed=seed,
        )
        usage = response.get("usage") or {}
        self.usage.prompt_tokens += int(usage.get("prompt_tokens", 0))
        self.usage.completion_tokens += int(usage.get("completion_tokens", 0))
        return response["choices"][0]["message"].get("content") or ""

    def close(self) -> None:
        llm = getattr(self, "llm", None)
        if llm is not None:
            # Closing explicitly avoids llama_cpp's noisy free_model TypeError at interpreter exit.
            with contextlib.suppress(Exception):
                llm.close()
            self.llm = None
