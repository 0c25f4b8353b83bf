"""An OpenAI-compatible chat-completions server over HTTP: llama.cpp's server, vLLM, Ollama's ``/v1``.

- ``n > 1`` is sent as ``n`` separate requests (seeds ``seed + i``): llama.cpp's server accepts
  ``n=2`` but silently returns one choice.
- ``top_k`` and ``min_p`` are not in OpenAI's API; they are sent as extra JSON fields, which
  llama.cpp's server and vLLM honour and Ollama ignores. ``top_k=0`` is sent too, because the
  servers' own default (llama.cpp: 40) would otherwise apply. Nothing in the answer says whether the
  server applied them, so instead of silently trusting it the backend says so: ``describe()`` (the
  model entry of every report's provenance) carries ``unverified_params``, and a non-default value is
  logged as a warning.
- Servers may not make a seed reproducible (llama.cpp's reuses its KV cache across requests:
  ML-STACK.md §2); this backend cannot fix that from outside.
- Connection errors, timeouts, 5xx and 429 are retried with exponential backoff and jitter
  (honouring ``Retry-After``); other 4xx are errors at once.
"""

from __future__ import annotations

import logging
import random
import time
from typing import Any
from urllib.parse import urlparse

import requests

from pipeline.backends.base import Backend, BackendError, Messages, sample_seed
from pipeline.types import SamplingParams

log = logging.getLogger(__name__)

RETRY_STATUSES = {429, 500, 502, 503, 504}
UNVERIFIED_PARAMS = (
    "top_k, min_p: not part of the OpenAI API, sent as extra fields; llama.cpp's server and vLLM "
    "apply them, other servers (Ollama) ignore them and use their own defaults"
)


def normalize_base_url(base_url: str) -> str:
    """``http://host:port`` means its ``/v1``; a URL with a path is used as given."""
    base = base_url.rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise BackendError(f"base URL must start with http:// or https://, got {base_url!r}")
    if urlparse(base).path in ("", "/"):
        base += "/v1"
    return base


class OpenAIBackend(Backend):
    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        api_key: str | None = None,
        timeout: float = 300.0,
        connect_timeout: float = 10.0,
        retries: int = 4,
        backoff: float = 0.5,
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = normalize_base_url(base_url)
        self.timeout = (connect_timeout, timeout)
        self.retries = retries
        self.backoff = backoff
        self.session = session or requests.Session()
        if api_key:
            self.session.headers["Authorization"] = f"Bearer {api_key}"
        # Without a model name, use the server's first (llama.cpp and Ollama serve one by default).
        model = model or self._first_model()
        super().__init__(model_id=model, model_path=None)

    def _first_model(self) -> str:
        models = self._request("GET", "/models").get("data") or []
        if not models:
            raise BackendError(f"{self.base_url}/models lists no model; pass the model name (openai:NAME)")
        return str(models[0]["id"])

    def _request(self, method: str, path: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        url = self.base_url + path
        for attempt in range(self.retries + 1):
            retry_after: float | None = None
            try:
                response = self.session.request(method, url, json=payload, timeout=self.timeout)
            except (requests.ConnectionError, requests.Timeout) as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code < 400:
                    return response.json()
                problem = f"HTTP {response.status_code}: {response.text[:500]}"
                if response.status_code not in RETRY_STATUSES:
                    raise BackendError(f"{method} {url} failed: {problem}")
                header = response.headers.get("Retry-After", "")
                retry_after = float(header) if header.replace(".", "", 1).isdigit() else None
            if attempt == self.retries:
                raise BackendError(f"{method} {url} failed after {self.retries + 1} attempts: {problem}")
            delay = retry_after if retry_after is not None else self.backoff * 2**attempt
            time.sleep(delay + random.uniform(0, self.backoff))
        raise AssertionError("unreachable")

    def check_params(self, params: SamplingParams) -> None:
        if params.top_k or params.min_p:
            log.warning(
                "%s: top_k=%s min_p=%s are sent as extra fields the server may ignore (see the report's "
                "unverified_params)",
                self.base_url,
                params.top_k,
                params.min_p,
            )

    def _generate(self, messages_batch: list[Messages], params: SamplingParams) -> list[list[str]]:
        return [
            [self._one(messages, params, sample_seed(params, i)) for i in range(params.n)]
            for messages in messages_batch
        ]

    def _one(self, messages: Messages, params: SamplingParams, seed: int) -> str:
        payload: dict[str, Any] = {
            "model": self.model_id,
            "messages": messages,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_tokens,
            "seed": seed,
            "n": 1,
            # extra fields (see module docstring)
            "top_k": params.top_k,
            "min_p": params.min_p,
        }
        if params.stop:
            payload["stop"] = list(params.stop)
        body = self._request("POST", "/chat/completions", payload)
        try:
            text = body["choices"][0]["message"].get("content") or ""
        except (KeyError, IndexError, TypeError) as exc:
            raise BackendError(f"unexpected chat completion body: {str(body)[:300]}") from exc
        usage = body.get("usage") or {}
        self.usage.prompt_tokens += int(usage.get("prompt_tokens") or 0)
        self.usage.completion_tokens += int(usage.get("completion_tokens") or 0)
        return text

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "base_url": self.base_url, "unverified_params": UNVERIFIED_PARAMS}

    def close(self) -> None:
        self.session.close()
