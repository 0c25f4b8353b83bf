"""What runs when nothing is set: each runtime's documented defaults, and where each figure comes from.

The audit reports these for calls and servers that set no temperature, because "unset" is not "neutral":
Ollama and llama.cpp sample at 0.8, the OpenAI API at 1.0, transformers' ``generate`` is greedy unless the
model's generation_config says otherwise. Figures were read in the sources named in ``source``; where a
runtime defers to the model (vLLM, transformers) the model's ``generation_config.json`` wins, which the audit
reports when that file is in the scanned tree.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RuntimeDefaults:
    runtime: str
    label: str
    values: dict[str, float | int | None]
    source: str
    note: str = ""
    detect: tuple[str, ...] = field(default_factory=tuple)  # substrings of imports/commands that name it


DEFAULTS: dict[str, RuntimeDefaults] = {
    "ollama": RuntimeDefaults(
        "ollama",
        "Ollama",
        {"temperature": 0.8, "top_k": 40, "top_p": 0.9, "repeat_penalty": 1.1, "seed": 0},
        "github.com/ollama/ollama docs/modelfile.md, table 'Valid Parameters and Values' (Default: 0.8 / 40 / "
        "0.9 / 1.1 / seed 0)",
        "a library model's own params layer (`ollama show --modelfile MODEL`) overrides these",
        ("ollama",),
    ),
    "llamacpp": RuntimeDefaults(
        "llamacpp",
        "llama.cpp server",
        {"temperature": 0.8, "top_k": 40, "top_p": 0.95, "min_p": 0.05, "repeat_penalty": 1.0},
        "github.com/ggml-org/llama.cpp tools/server/README.md (`--temp N` default 0.8) and common/common.h "
        "`common_params_sampling`",
        "per-request values override the server's",
        ("llama-server", "llama-cli", "llama_cpp", "llama.cpp", "llama-cpp"),
    ),
    "llamacpp-python": RuntimeDefaults(
        "llamacpp-python",
        "llama-cpp-python (in-process)",
        {"temperature": 0.2, "top_k": 40, "top_p": 0.95, "min_p": 0.05, "repeat_penalty": 1.0},
        "llama-cpp-python 0.3.36 llama_cpp/llama.py `Llama.create_chat_completion` signature, read in the "
        "installed package (its HTTP server, llama_cpp/server/types.py `temperature_field`, uses 0.8)",
        "create_chat_completion's 0.2 differs from create_completion's and the servers' 0.8",
    ),
    "vllm": RuntimeDefaults(
        "vllm",
        "vLLM",
        {"temperature": 1.0, "top_p": 1.0, "top_k": 0, "min_p": 0.0, "repeat_penalty": 1.0},
        "vllm/sampling_params.py `SamplingParams` field defaults; `--generation-config auto` (default since "
        "vLLM 0.8, added in vllm-project/vllm#11164) applies the model's generation_config.json first",
        "the model's generation_config.json, when it sets sampling values, replaces these",
        ("vllm",),
    ),
    "openai": RuntimeDefaults(
        "openai",
        "OpenAI API",
        {"temperature": 1.0, "top_p": 1.0},
        "platform.openai.com/docs/api-reference/chat/create (temperature: 'Defaults to 1'; top_p: 'Defaults to 1')",
        "an OpenAI-compatible local server (llama.cpp, vLLM, Ollama) applies its own default instead",
        ("openai",),
    ),
    "transformers": RuntimeDefaults(
        "transformers",
        "transformers generate()",
        {"temperature": 1.0, "top_p": 1.0, "top_k": 50, "repeat_penalty": 1.0},
        "transformers 5.17 generation/configuration_utils.py `GenerationConfig._get_default_generation_params` "
        "(do_sample=False, temperature=1.0, top_k=50, top_p=1.0, repetition_penalty=1.0), read in the installed "
        "package",
        "greedy unless do_sample=True or the model's generation_config.json sets do_sample",
        ("transformers",),
    ),
}


def default_temperature(runtime: str) -> float | None:
    spec = DEFAULTS.get(runtime)
    value = spec.values.get("temperature") if spec else None
    return float(value) if value is not None else None


# The paper's decoding settings per model family (SSD-PAPER.md §3, read on the apple/SimpleSD-* model cards).
# Keys are lower-case substrings matched against a model name.
PAPER_DECODING: dict[str, dict[str, float]] = {
    "qwen3-4b-instruct": {"t_train": 1.6, "t_eval": 1.1, "top_p": 0.8, "top_k": 20},
    "qwen3-4b-thinking": {"t_train": 1.1, "t_eval": 0.7, "top_p": 0.95, "top_k": 20},
    "qwen3-30b-a3b-instruct": {"t_train": 1.6, "t_eval": 0.9, "top_p": 0.8, "top_k": 20},
}
PAPER_SOURCE = (
    "Zhang et al., 'Embarrassingly Simple Self-Distillation Improves Code Generation', "
    "arXiv 2604.01193; model cards apple/SimpleSD-4B-instruct, -4B-thinking, -30B-instruct"
)


def paper_decoding(model: str | None) -> dict[str, float] | None:
    """The paper's (T_train, T_eval, top_p, top_k) for a known model family, else None."""
    if not model:
        return None
    name = model.lower().replace("_", "-")
    for family, values in PAPER_DECODING.items():
        if family in name:
            return values
    return None
