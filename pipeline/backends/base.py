"""The one interface every sampling backend implements.

``generate(messages_batch, params)`` takes a batch of chat conversations (OpenAI-style
``[{"role": ..., "content": ...}]``) and returns ``params.n`` completions per conversation, in
order. Seeds are per sample, not per call: sample ``i`` of every prompt is drawn with seed
``params.seed + i``, so a sample can be reproduced alone (where the backend allows it; see
``pipeline/backends/README.md``) and adding prompts to a batch does not change the others.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from typing import Any

from pipeline.types import SamplingParams

log = logging.getLogger(__name__)

Messages = list[dict[str, str]]


class BackendError(RuntimeError):
    """A backend could not load or could not answer."""


class ModelNotFound(BackendError):
    """The model spec names nothing we can load offline."""


class UnsupportedParam(BackendError):
    """A sampling parameter the backend cannot honour (raised instead of silently ignoring it)."""


def sample_seed(params: SamplingParams, sample_index: int) -> int:
    """The documented seed of sample ``sample_index`` (the same for every prompt)."""
    return params.seed + sample_index


def cut_at_stop(text: str, stop: tuple[str, ...]) -> str:
    """Truncate at the earliest stop string, excluding it (OpenAI semantics), for backends that
    only stop *after* generating one."""
    cut = len(text)
    for marker in stop:
        if marker:
            pos = text.find(marker)
            if pos != -1:
                cut = min(cut, pos)
    return text[:cut]


@dataclass
class Usage:
    """Running totals since the backend was opened: what tokens/s and reports are computed from."""

    prompts: int = 0
    samples: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0

    def add(self, other: Usage) -> None:
        self.prompts += other.prompts
        self.samples += other.samples
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.seconds += other.seconds

    @property
    def tokens_per_s(self) -> float:
        return self.completion_tokens / self.seconds if self.seconds > 0 else 0.0


@dataclass
class Backend(ABC):
    """Base class: subclasses set ``name`` and implement ``_generate``.

    ``model_id`` is what reports show (alias or path or server model name); ``model_path`` is the
    local file or directory when there is one (provenance hashes it).
    """

    model_id: str
    model_path: str | None = None
    adapter: str | None = None
    usage: Usage = field(default_factory=Usage)

    name = "base"

    def generate(self, messages_batch: list[Messages], params: SamplingParams) -> list[list[str]]:
        """``params.n`` completions for each conversation, ``result[j][i]`` = sample i of prompt j."""
        if params.n < 1:
            raise ValueError(f"n must be >= 1, got {params.n}")
        if params.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {params.temperature}")
        self.check_params(params)
        started = time.perf_counter()
        if params.temperature == 0 and params.n > 1:
            # Greedy decoding is deterministic: draw once and repeat instead of paying n times.
            once = self._generate(messages_batch, _with(params, n=1))
            result = [texts * params.n for texts in once]
        else:
            result = self._generate(messages_batch, params)
        self.usage.seconds += time.perf_counter() - started
        self.usage.prompts += len(messages_batch)
        self.usage.samples += len(messages_batch) * params.n
        if len(result) != len(messages_batch) or any(len(texts) != params.n for texts in result):
            raise BackendError(f"{self.name} returned a malformed batch")
        return result

    def check_params(self, params: SamplingParams) -> None:
        """Raise ``UnsupportedParam`` (or warn) for what this backend cannot do. Default: all fine."""
        return None

    @abstractmethod
    def _generate(self, messages_batch: list[Messages], params: SamplingParams) -> list[list[str]]: ...

    def describe(self) -> dict[str, Any]:
        """What provenance records about the model."""
        return {"backend": self.name, "model": self.model_id, "path": self.model_path, "adapter": self.adapter}

    def close(self) -> None:
        """Free the model. Idempotent."""
        return None

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _with(params: SamplingParams, **changes: Any) -> SamplingParams:
    return replace(params, **changes)
