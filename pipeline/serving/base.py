"""One small interface over the places a promoted adapter can be served.

A target makes a ``Deployment`` (an adapter version on a base model, at the audited T_eval) the model
its OpenAI-compatible endpoint answers with. ``deploy`` is verified: after the swap a smoke request
must name the new version and answer with some text, else the previous deployment is put back and
``DeployFailed`` is raised. The history of verified deployments is kept in a small JSON file under
``state_dir``, so ``current()`` and ``rollback()`` survive restarts.

Callers serialize deploys and rollbacks (the loop's run lock): a target does not lock its state file.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

log = logging.getLogger(__name__)

BASE_ID = "base"  # the served id when no adapter is promoted
HISTORY_KEPT = 50
SMOKE_PROMPT = "Write a Python function add(a, b) that returns the sum of a and b."
SMOKE_MAX_TOKENS = 16  # enough to show the model answers; keeps a swap quick on a CPU


class ServingError(RuntimeError):
    """A serving target could not do what was asked; the message says what and where."""


class DeployFailed(ServingError):
    """The new deployment did not pass its checks; ``restored`` is what is served now (or None)."""

    def __init__(self, message: str, restored: Served | None) -> None:
        super().__init__(message)
        self.restored = restored


@dataclass(frozen=True)
class Served:
    """What clients use: the target kind, its OpenAI base URL and the model id naming the version."""

    target: str
    url: str
    model: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class Deployment:
    """An adapter version (or the base, ``adapter_id=None``) and how to serve it."""

    adapter_id: str | None
    adapter_dir: str | None
    gguf_path: str | None
    base_model: str
    temperature: float

    @property
    def version(self) -> str:
        return self.adapter_id or BASE_ID

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Deployment:
        return cls(
            adapter_id=data.get("adapter_id"),
            adapter_dir=data.get("adapter_dir"),
            gguf_path=data.get("gguf_path"),
            base_model=str(data["base_model"]),
            temperature=float(data["temperature"]),
        )


def write_json_atomic(path: Path, data: Any) -> None:
    """Readers never see a half-written file: write a temporary file beside it, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def smoke_check(served: Served, timeout: float = 120.0, session: requests.Session | None = None) -> str:
    """One short greedy chat request to the served model. It must answer 200, name ``served.model``
    (in the body's ``model`` or the ``X-SSD-Model`` header) and return non-empty text; returns the text."""
    http = session or requests
    url = served.url.rstrip("/") + "/chat/completions"
    payload = {
        "model": served.model,
        "messages": [{"role": "user", "content": SMOKE_PROMPT}],
        "max_tokens": SMOKE_MAX_TOKENS,
        "temperature": 0,
        "seed": 0,
    }
    try:
        response = http.post(url, json=payload, timeout=(10, timeout))
    except requests.RequestException as exc:
        raise ServingError(f"smoke request to {url} failed: {type(exc).__name__}: {exc}") from exc
    if response.status_code != 200:
        raise ServingError(f"smoke request to {url} answered HTTP {response.status_code}: {response.text[:300]}")
    try:
        body = response.json()
        text = body["choices"][0]["message"].get("content") or ""
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        raise ServingError(f"smoke request to {url}: not a chat completion: {response.text[:300]}") from exc
    shown = {body.get("model"), response.headers.get("X-SSD-Model")}
    if served.model not in shown:
        raise ServingError(
            f"smoke request to {url}: expected model {served.model!r}, the answer names "
            f"{sorted(str(s) for s in shown if s)}"
        )
    if not text.strip():
        raise ServingError(f"smoke request to {url}: model {served.model!r} answered with empty text")
    return text


class ServingTarget(ABC):
    """Base class. Subclasses implement ``_activate`` (make a deployment the served one) and may
    override ``_verify`` (default: ``smoke_check``), ``_retire`` (free what the previous deployment
    held once the new one is verified) and ``_discard`` (clean up a deployment that failed)."""

    name = "base"

    def __init__(self, state_dir: str | Path, smoke_timeout: float = 120.0) -> None:
        self.state_path = Path(state_dir) / f"{self.name}.json"
        self.smoke_timeout = smoke_timeout

    # ----------------------------------------------------------------- public interface
    def deploy(
        self,
        adapter_id: str | None,
        adapter_dir: str | Path | None,
        gguf_path: str | Path | None,
        base_model: str,
        temperature: float,
    ) -> Served:
        """Serve this adapter (None = the base) and verify it; on failure restore the previous one."""
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        new = Deployment(
            adapter_id=adapter_id,
            adapter_dir=str(adapter_dir) if adapter_dir else None,
            gguf_path=str(gguf_path) if gguf_path else None,
            base_model=base_model,
            temperature=float(temperature),
        )
        self._check(new)
        history = self._load()
        served = self._switch(new, self._deployment(history[-1]) if history else None, fresh=True)
        history.append(
            {
                "deployment": asdict(new),
                "served": served.to_dict(),
                "at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
        )
        self._save(history[-HISTORY_KEPT:])
        return served

    def current(self) -> Served | None:
        history = self._load()
        return Served(**history[-1]["served"]) if history else None

    def current_deployment(self) -> Deployment | None:
        history = self._load()
        return self._deployment(history[-1]) if history else None

    def rollback(self, version: str | None = None) -> Served:
        """Serve an earlier verified deployment again: the one before the current one, or the latest
        with ``version`` (``base`` for the base). Verified like a deploy; the history is cut back to it."""
        history = self._load()
        earlier = range(len(history) - 2, -1, -1)
        if version is None:
            index = len(history) - 2
        else:
            index = next((i for i in earlier if self._deployment(history[i]).version == version), -1)
        if index < 0:
            versions = ", ".join(self._deployment(e).version for e in history) or "empty"
            missing = f"no version {version!r} before the current one" if version else "nothing to roll back to"
            raise ServingError(f"{self.name}: {missing} in the serving history ({versions})")
        served = self._switch(self._deployment(history[index]), self._deployment(history[-1]), fresh=False)
        history = history[: index + 1]
        history[-1] = {**history[-1], "served": served.to_dict()}
        self._save(history)
        return served

    def reconcile(self) -> Served | None:
        """Make the target serve the last verified deployment again, whatever a run that died mid-swap
        left behind (call at the start of a run). None when nothing was ever deployed."""
        current = self.current_deployment()
        if current is None:
            return None
        return self._switch(current, None, fresh=False)

    def history(self) -> list[dict[str, Any]]:
        return self._load()

    # ----------------------------------------------------------------- the swap
    def _switch(self, new: Deployment, previous: Deployment | None, fresh: bool) -> Served:
        """Activate and verify ``new``; on failure put ``previous`` back. Only a ``fresh`` deployment
        (never verified before) is discarded when it fails: a rollback target or the deployment being
        reconciled is in the history and must survive a failed attempt."""
        started = time.monotonic()
        try:
            served = self._activate(new, previous)
            self._verify(served, new)
        except Exception as exc:
            log.warning(
                "%s: deploying %s failed: %s; restoring %s",
                self.name,
                new.version,
                exc,
                previous.version if previous else "nothing",
            )
            restored = self._restore(previous, failed=new if fresh else None)
            raise DeployFailed(f"{self.name}: deploying {new.version} failed: {exc}", restored) from exc
        if previous is not None and previous.version != new.version:
            try:
                self._retire(previous, new)
            except Exception as exc:  # the new one is verified and served; a leftover is only untidy
                log.warning("%s: could not retire %s: %s", self.name, previous.version, exc)
        log.info("%s: serving %s (%.1f s)", self.name, served.model, time.monotonic() - started)
        return served

    def _restore(self, previous: Deployment | None, failed: Deployment | None) -> Served | None:
        if failed is not None:
            try:
                self._discard(failed, previous)
            except Exception as exc:
                log.warning("%s: could not clean up %s: %s", self.name, failed.version, exc)
        if previous is None:
            return None
        try:
            served = self._activate(previous, None)
            self._verify(served, previous)
        except Exception as exc:
            log.error("%s: restoring %s failed too: %s", self.name, previous.version, exc)
            return None
        return served

    # ----------------------------------------------------------------- for subclasses
    def _check(self, new: Deployment) -> None:
        """Refuse a deployment this target cannot serve, before touching anything."""
        if new.adapter_id and not (new.adapter_dir or new.gguf_path):
            raise ServingError(f"adapter {new.adapter_id} has neither a PEFT directory nor a GGUF file")

    @abstractmethod
    def _activate(self, new: Deployment, previous: Deployment | None) -> Served: ...

    def _verify(self, served: Served, deployment: Deployment) -> None:
        smoke_check(served, timeout=self.smoke_timeout)

    def _retire(self, previous: Deployment, new: Deployment) -> None:
        return None

    def _discard(self, failed: Deployment, previous: Deployment | None) -> None:
        return None

    # ----------------------------------------------------------------- state file
    @staticmethod
    def _deployment(entry: dict[str, Any]) -> Deployment:
        return Deployment.from_dict(entry["deployment"])

    def _load(self) -> list[dict[str, Any]]:
        try:
            data = json.loads(self.state_path.read_text())
        except FileNotFoundError:
            return []
        except ValueError as exc:
            raise ServingError(f"serving state {self.state_path} is not valid JSON: {exc}") from exc
        return list(data.get("history", []))

    def _save(self, history: list[dict[str, Any]]) -> None:
        write_json_atomic(self.state_path, {"target": self.name, "history": history})


class NoServing(ServingTarget):
    """``SSD_SERVING=none``: nothing is served; promotions are only recorded."""

    name = "none"

    def _activate(self, new: Deployment, previous: Deployment | None) -> Served:
        return Served(target=self.name, url="", model=new.version)

    def _verify(self, served: Served, deployment: Deployment) -> None:
        return None
