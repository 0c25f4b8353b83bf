"""The project's own model server (``ssd model-server``, ``ssd/model_server.py``) as a serving target.

The swap goes through a small file, not an endpoint: the target writes the wanted deployment with a
fresh ``generation`` to ``STATE_DIR/local-model.json`` (atomically); the server watches that file,
loads the new model beside the old one, swaps, and reports on ``GET /health`` which generation it
serves or which one failed to load (it then keeps serving the old one). The same file tells a
restarted server what to serve, so nothing is lost on restart, and there is no admin endpoint to
protect.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any

import requests

from pipeline.serving.base import Deployment, Served, ServingError, ServingTarget, write_json_atomic

WANTED_FILE = "local-model.json"


def read_wanted(state_dir: str | Path) -> dict[str, Any] | None:
    """The deployment the local server should serve, with its generation; None when none was set."""
    path = Path(state_dir) / WANTED_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise ServingError(f"{path} is not valid JSON: {exc}") from exc
    Deployment.from_dict(data["deployment"])  # validates
    return data


class LocalTarget(ServingTarget):
    name = "local"

    def __init__(
        self,
        state_dir: str | Path,
        url: str,
        load_timeout: float = 600.0,
        smoke_timeout: float = 120.0,
        poll: float = 0.2,
        unreachable_grace: float = 10.0,
    ) -> None:
        super().__init__(state_dir, smoke_timeout=smoke_timeout)
        self.state_dir = Path(state_dir)
        base = url.rstrip("/")
        self.root = base.removesuffix("/v1")
        self.load_timeout = load_timeout
        self.poll = poll
        self.unreachable_grace = unreachable_grace

    def health(self) -> dict[str, Any]:
        try:
            response = requests.get(self.root + "/health", timeout=5)
            response.raise_for_status()
            return response.json()
        except (requests.RequestException, ValueError) as exc:
            raise ServingError(
                f"local model server at {self.root} is not answering ({type(exc).__name__}); "
                "start it with `ssd model-server` (or `ssd serve`)"
            ) from exc

    def _check(self, new: Deployment) -> None:
        super()._check(new)
        for path in (new.adapter_dir, new.gguf_path):
            if path and not Path(path).exists():
                raise ServingError(f"adapter {new.adapter_id}: {Path(path).name} does not exist")
        self.health()  # fail fast when no server runs, before changing what it should serve

    def _activate(self, new: Deployment, previous: Deployment | None) -> Served:
        # Written even when the server is down (a restore after it crashed): a restarted server then
        # serves this one, not the deployment that failed.
        generation = uuid.uuid4().hex
        write_json_atomic(self.state_dir / WANTED_FILE, {"generation": generation, "deployment": asdict(new)})
        deadline = time.monotonic() + self.load_timeout
        unreachable_since: float | None = None
        while time.monotonic() < deadline:
            try:
                status = self.health()
            except ServingError:
                # a server restarting is given a few seconds; one that died is reported at once after
                unreachable_since = unreachable_since or time.monotonic()
                if time.monotonic() - unreachable_since > self.unreachable_grace:
                    raise
                time.sleep(self.poll)
                continue
            unreachable_since = None
            if status.get("generation") == generation:
                if status.get("model") != new.version:
                    raise ServingError(f"local model server serves {status.get('model')!r}, expected {new.version!r}")
                return Served(target=self.name, url=self.root + "/v1", model=new.version)
            if status.get("failed_generation") == generation:
                raise ServingError(f"local model server could not load {new.version}: {status.get('error')}")
            time.sleep(self.poll)
        raise ServingError(f"local model server did not load {new.version} within {self.load_timeout:.0f} s")
