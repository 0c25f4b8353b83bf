"""``ssd serve`` as a real child process on a fresh data dir (embedded Redis, dry-run Gitea, no model server)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.harness import ROOT, free_port

EXAMPLES = ROOT / "deploy" / "examples"


def serve_env(tmp_path: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SSD_")}
    # SSD_SERVING=none: no local model server (it would load a model); serve_children covers that case.
    env.update(
        SSD_DATA_DIR=str(tmp_path / "data"), SSD_BIND=f"127.0.0.1:{port}", PYTHONUNBUFFERED="1", SSD_SERVING="none"
    )
    return env


def start_serve(tmp_path: Path) -> tuple[subprocess.Popen, int, Path]:
    port = free_port()
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(
            [sys.executable, "-m", "ssd.cli", "serve"],
            cwd=ROOT,
            env=serve_env(tmp_path, port),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, log_path.read_text()
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc, port, log_path
        except requests.RequestException:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError("ssd serve did not answer /healthz:\n" + log_path.read_text())
