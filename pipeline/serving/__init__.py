"""Serving targets: make a promoted adapter the model an OpenAI-compatible endpoint serves.

``open_target(kind, state_dir, ...)`` returns one of ``NoServing`` (``none``), ``LocalTarget``
(``local``: the project's ``ssd model-server``), ``OllamaTarget`` (``ollama``) or ``VllmTarget``
(``vllm``), all with ``deploy(adapter_id, adapter_dir, gguf_path, base_model, temperature) -> Served``,
``current() -> Served | None`` and ``rollback() -> Served``. See ``base.py`` for the verified swap.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.serving.base import (
    BASE_ID,
    DeployFailed,
    Deployment,
    NoServing,
    Served,
    ServingError,
    ServingTarget,
    smoke_check,
)

__all__ = [
    "BASE_ID",
    "TARGETS",
    "DeployFailed",
    "Deployment",
    "NoServing",
    "Served",
    "ServingError",
    "ServingTarget",
    "open_target",
    "smoke_check",
]

TARGETS = ("none", "local", "ollama", "vllm")


def open_target(kind: str, state_dir: str | Path, url: str | None = None, **options: object) -> ServingTarget:
    """The target ``kind`` names; ``url`` is its server (required for local, ollama and vllm)."""
    if kind not in TARGETS:
        raise ServingError(f"unknown serving target {kind!r}; choose one of {', '.join(TARGETS)}")
    if kind == "none":
        return NoServing(state_dir)
    if not url:
        raise ServingError(f"serving target {kind!r} needs its server URL")
    if kind == "local":
        from pipeline.serving.local import LocalTarget

        return LocalTarget(state_dir, url, **options)  # type: ignore[arg-type]
    if kind == "ollama":
        from pipeline.serving.ollama import OllamaTarget

        return OllamaTarget(state_dir, url, **options)  # type: ignore[arg-type]
    from pipeline.serving.vllm import VllmTarget

    return VllmTarget(state_dir, url, **options)  # type: ignore[arg-type]
