"""Ollama: the adapter becomes an Ollama model created through its HTTP API (docs/api.md, 2026-08).

- Each file is pushed first as a blob, ``POST /api/blobs/sha256:<hex>`` (201 created; 400 when the
  digest does not match the bytes); ``HEAD`` says whether the server already has it.
- ``POST /api/create`` with ``from`` (the base, an Ollama model name), ``adapters`` ({file name:
  digest}) and ``parameters`` ({"temperature": T_eval}) creates ``NAME:VERSION``.
- Which adapters Ollama takes: a GGUF LoRA (one file) on any base it runs; a PEFT safetensors adapter
  (``adapter_model.safetensors`` + ``adapter_config.json``) only where Ollama converts it itself: the
  docs list Llama, Mistral and Gemma (its converter, ``convert.ConvertAdapter``, accepts base
  architectures ``llama`` and ``gemma2``; SmolLM2 is ``llama``). Qwen and others need the GGUF export.
  So the GGUF file is preferred when there is one.
- After ``NAME:VERSION`` passes its checks it is copied (``POST /api/copy``) to ``NAME:latest``, the
  name agents can keep using; the copy is checked by digest (``GET /api/tags``) and by a smoke request.
  Older versions stay, so a rollback is a copy back. A version that failed is deleted.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import requests

from pipeline.serving.base import Deployment, Served, ServingError, ServingTarget, smoke_check

PEFT_FILES = ("adapter_model.safetensors", "adapter_config.json")
ALIAS_TAG = "latest"


def sha256_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"


def version_tag(version: str) -> str:
    """An Ollama tag (letters, digits, ``_ . -``, at most 128) that names the version."""
    tag = re.sub(r"[^A-Za-z0-9_.-]", "-", version).strip(".-")[:100]
    if not tag:
        raise ServingError(f"cannot make an Ollama tag from version {version!r}")
    return tag


class OllamaTarget(ServingTarget):
    name = "ollama"

    def __init__(
        self,
        state_dir: str | Path,
        url: str,
        model_name: str = "ssd-bot",
        timeout: float = 600.0,
        smoke_timeout: float = 120.0,
    ) -> None:
        super().__init__(state_dir, smoke_timeout=smoke_timeout)
        self.url = url.rstrip("/")
        self.model_name = model_name
        self.timeout = timeout
        self.session = requests.Session()

    @property
    def alias(self) -> str:
        return f"{self.model_name}:{ALIAS_TAG}"

    def model_for(self, deployment: Deployment) -> str:
        return f"{self.model_name}:{version_tag(deployment.version)}"

    # ----------------------------------------------------------------- HTTP
    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        url = self.url + path
        try:
            response = self.session.request(method, url, timeout=(10, self.timeout), **kwargs)
        except requests.RequestException as exc:
            raise ServingError(f"ollama: {method} {url} failed: {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 400 and not (method == "HEAD" and response.status_code == 404):
            raise ServingError(f"ollama: {method} {path} answered HTTP {response.status_code}: {response.text[:300]}")
        return response

    def adapter_files(self, deployment: Deployment) -> dict[str, Path]:
        """{name Ollama sees: local file}: the GGUF LoRA when there is one, else the PEFT safetensors files."""
        if deployment.gguf_path:
            path = Path(deployment.gguf_path)
            return {path.name: path}
        directory = Path(deployment.adapter_dir or "")
        return {name: directory / name for name in PEFT_FILES}

    def push_blob(self, path: Path) -> str:
        if not path.is_file():
            raise ServingError(f"ollama: adapter file {path.name} is missing")
        digest = sha256_digest(path)
        if self._call("HEAD", f"/api/blobs/{digest}").status_code != 200:
            with path.open("rb") as handle:
                self._call("POST", f"/api/blobs/{digest}", data=handle)
        return digest

    def digest_of(self, model: str) -> str | None:
        for entry in self._call("GET", "/api/tags").json().get("models", []):
            if model in (entry.get("name"), entry.get("model")):
                return entry.get("digest")
        return None

    # ----------------------------------------------------------------- the swap
    def _activate(self, new: Deployment, previous: Deployment | None) -> Served:
        model = self.model_for(new)
        request: dict[str, Any] = {
            "model": model,
            "from": new.base_model,
            "stream": False,
            "parameters": {"temperature": new.temperature},
        }
        if new.adapter_id:
            request["adapters"] = {name: self.push_blob(path) for name, path in self.adapter_files(new).items()}
        status = self._call("POST", "/api/create", json=request).json()
        if status.get("error") or status.get("status") != "success":
            raise ServingError(f"ollama: creating {model} did not succeed: {status}")
        self._check_created(model, new)
        smoke_check(Served(self.name, self.url + "/v1", model), timeout=self.smoke_timeout)
        self._call("POST", "/api/copy", json={"source": model, "destination": self.alias})
        return Served(target=self.name, url=self.url + "/v1", model=model)

    def _check_created(self, model: str, deployment: Deployment) -> None:
        """The created model carries the audited temperature (``/api/show`` lists its parameters)."""
        shown = self._call("POST", "/api/show", json={"model": model}).json()
        values = {}
        for line in str(shown.get("parameters") or "").splitlines():
            key, _, value = line.strip().partition(" ")
            values[key] = value.strip().strip('"')
        try:
            temperature = float(values.get("temperature", "nan"))
        except ValueError:
            temperature = float("nan")
        if abs(temperature - deployment.temperature) > 1e-6:
            raise ServingError(
                f"ollama: {model} has temperature {values.get('temperature')!r}, expected {deployment.temperature}"
            )

    def _verify(self, served: Served, deployment: Deployment) -> None:
        # The alias must now be the very model just checked, and answer.
        version_digest, alias_digest = self.digest_of(served.model), self.digest_of(self.alias)
        if not version_digest or version_digest != alias_digest:
            raise ServingError(
                f"ollama: {self.alias} (digest {alias_digest}) is not {served.model} "
                f"(digest {version_digest}) after the copy"
            )
        smoke_check(Served(self.name, served.url, self.alias), timeout=self.smoke_timeout)

    def _discard(self, failed: Deployment, previous: Deployment | None) -> None:
        if previous is not None and self.model_for(previous) == self.model_for(failed):
            return
        model = self.model_for(failed)
        if self.digest_of(model):
            self._call("DELETE", "/api/delete", json={"model": model})
