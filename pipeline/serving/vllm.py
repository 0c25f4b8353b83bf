"""vLLM: runtime LoRA loading on a running ``vllm serve --enable-lora`` (docs/features/lora.md).

- The server must run with ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True`` (else the endpoints are absent:
  404) and ``--max-lora-rank`` at least the adapter's rank.
- ``POST /v1/load_lora_adapter`` {"lora_name", "lora_path"}: ``lora_path`` is read by the vLLM
  process, so it must be the adapter directory as that host sees it (a shared volume or the same
  machine). The new version is served as ``ssd-VERSION``; after it passes the smoke request the
  previous one is unloaded (``POST /v1/unload_lora_adapter`` {"lora_name"}).
- The base (no adapter) is the server's own model name (``base_model``).
- vLLM has no per-adapter default temperature: the audited T_eval is recorded with the deployment and
  clients must send it (``/v1/models`` does not carry it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests

from pipeline.serving.base import Deployment, Served, ServingError, ServingTarget

PREFIX = "ssd-"


class VllmTarget(ServingTarget):
    name = "vllm"

    def __init__(self, state_dir: str | Path, url: str, timeout: float = 300.0, smoke_timeout: float = 120.0) -> None:
        super().__init__(state_dir, smoke_timeout=smoke_timeout)
        base = url.rstrip("/")
        self.url = base if base.endswith("/v1") else base + "/v1"
        self.timeout = timeout
        self.session = requests.Session()

    def lora_name(self, deployment: Deployment) -> str:
        return PREFIX + deployment.version

    def model_for(self, deployment: Deployment) -> str:
        return self.lora_name(deployment) if deployment.adapter_id else deployment.base_model

    def _call(self, method: str, path: str, payload: dict[str, Any] | None = None) -> requests.Response:
        url = self.url + path
        try:
            response = self.session.request(method, url, json=payload, timeout=(10, self.timeout))
        except requests.RequestException as exc:
            raise ServingError(f"vllm: {method} {url} failed: {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 400:
            hint = " (is VLLM_ALLOW_RUNTIME_LORA_UPDATING=True set?)" if response.status_code == 404 else ""
            raise ServingError(
                f"vllm: {method} {path} answered HTTP {response.status_code}{hint}: {response.text[:300]}"
            )
        return response

    def served_models(self) -> set[str]:
        return {str(entry.get("id")) for entry in self._call("GET", "/models").json().get("data", [])}

    def _check(self, new: Deployment) -> None:
        super()._check(new)
        if new.adapter_id and not new.adapter_dir:
            raise ServingError("vllm loads PEFT adapter directories; this adapter has none")

    def _activate(self, new: Deployment, previous: Deployment | None) -> Served:
        model = self.model_for(new)
        served = self.served_models()
        if new.adapter_id and model not in served:
            self._call("POST", "/load_lora_adapter", {"lora_name": model, "lora_path": new.adapter_dir})
            served = self.served_models()
        if model not in served:
            raise ServingError(f"vllm: {model} is not listed by /v1/models (serving {sorted(served)})")
        return Served(target=self.name, url=self.url, model=model)

    def reconcile(self) -> Served | None:
        served = super().reconcile()
        if served is not None:  # adapters this project loaded that are not the verified one: a dead run's
            for name in sorted(self.served_models()):
                if name.startswith(PREFIX) and name != served.model:
                    self._call("POST", "/unload_lora_adapter", {"lora_name": name})
        return served

    def _unload(self, deployment: Deployment) -> None:
        if deployment.adapter_id and self.lora_name(deployment) in self.served_models():
            self._call("POST", "/unload_lora_adapter", {"lora_name": self.lora_name(deployment)})

    def _retire(self, previous: Deployment, new: Deployment) -> None:
        self._unload(previous)

    def _discard(self, failed: Deployment, previous: Deployment | None) -> None:
        if previous is None or self.model_for(previous) != self.model_for(failed):
            self._unload(failed)
