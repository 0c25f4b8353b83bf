"""The local model server end to end: the real SmolLM2 GGUF on llama.cpp, a GGUF LoRA written here,
swaps through LocalTarget visible in the served answers, a failed load rolled back, and a restart."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import requests

from pipeline.serving import DeployFailed, Served, ServingError
from pipeline.serving.base import Deployment
from pipeline.serving.local import LocalTarget
from ssd.model_server import ModelServer, serve_forever
from tests.harness import free_port

pytestmark = pytest.mark.slow

PROMPT = [{"role": "user", "content": "Write a Python function add(a, b) that returns the sum of a and b."}]


def write_gguf_lora(path: Path, scale: float = 0.2, rank: int = 4, n_in: int = 1536, seed: int = 0) -> Path:
    """A llama.cpp LoRA on SmolLM2-135M's ffn_down (576 x 1536) in every layer: random, strong enough to
    change the greedy answer. ``n_in`` other than 1536 makes an adapter llama.cpp refuses to load."""
    import gguf

    rng = np.random.default_rng(seed)
    writer = gguf.GGUFWriter(str(path), arch="llama")
    writer.add_type("adapter")
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", float(rank))
    for layer in range(30):
        # ggml's [n_in, r] and [r, n_out] are numpy (r, n_in) and (n_out, r)
        writer.add_tensor(
            f"blk.{layer}.ffn_down.weight.lora_a", (rng.standard_normal((rank, n_in)) * scale).astype(np.float32)
        )
        writer.add_tensor(
            f"blk.{layer}.ffn_down.weight.lora_b", (rng.standard_normal((576, rank)) * scale).astype(np.float32)
        )
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


class Running:
    def __init__(self, state_dir: Path) -> None:
        self.server = ModelServer(state_dir, Deployment(None, None, None, "smollm2", 0.0), poll=0.1)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.stop = threading.Event()
        self.thread = threading.Thread(target=serve_forever, args=(self.server, self.port, self.stop), daemon=True)
        self.thread.start()
        for _ in range(100):
            try:
                requests.get(self.url + "/health", timeout=1)
                break
            except requests.ConnectionError:
                self.stop.wait(0.05)

    def chat(self, **extra: object) -> requests.Response:
        return requests.post(
            self.url + "/v1/chat/completions",
            timeout=120,
            json={"model": "anything", "messages": PROMPT, "max_tokens": 12, **extra},
        )

    def answer(self) -> tuple[str, str]:
        response = self.chat(temperature=0)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["model"] == response.headers["X-SSD-Model"]
        return body["model"], body["choices"][0]["message"]["content"]

    def models(self) -> list[str]:
        return [m["id"] for m in requests.get(self.url + "/v1/models", timeout=5).json()["data"]]

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)
        self.server.backend.close()


@pytest.fixture(scope="module")
def lora_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("loras")
    return {"good": write_gguf_lora(root / "good.gguf"), "bad": write_gguf_lora(root / "bad.gguf", n_in=100)}


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    server = Running(tmp_path / "serving")
    yield server
    server.close()


def test_deploy_swaps_the_served_model_rolls_back_and_survives_a_restart(tmp_path, running, lora_files):
    state = tmp_path / "serving"
    assert running.models() == ["base"]
    base_model, base_answer = running.answer()
    assert base_model == "base" and "def add" in base_answer

    target = LocalTarget(state, running.url, load_timeout=120)
    assert target.deploy(None, None, None, "smollm2", 0.0) == Served("local", running.url + "/v1", "base")
    served = target.deploy("v1", None, lora_files["good"], "smollm2", 0.0)
    assert served == Served("local", running.url + "/v1", "v1")
    assert running.models() == ["v1"]
    model, answer = running.answer()
    assert model == "v1" and answer.strip() and answer != base_answer  # the adapter is what answers now

    # an adapter llama.cpp cannot load: the deploy fails, v1 keeps serving, the reason is reported
    with pytest.raises(DeployFailed, match="could not load v2.*do not fit") as failure:
        target.deploy("v2", None, lora_files["bad"], "smollm2", 0.0)
    assert failure.value.restored == served
    assert target.current() == served
    assert running.answer() == (model, answer)

    assert target.rollback().model == "base"
    assert running.answer() == ("base", base_answer)

    # a restarted server serves what was last deployed (here: v1 again, then restart)
    target.deploy("v1", None, lora_files["good"], "smollm2", 0.0)
    running.close()
    restarted = Running(state)
    try:
        assert restarted.models() == ["v1"]
        assert restarted.answer() == ("v1", answer)
    finally:
        restarted.close()


def test_requests_are_checked_and_the_deployment_temperature_is_the_default(tmp_path, running):
    assert running.chat(stream=True).status_code == 400
    assert running.chat(max_tokens=10**6).json()["error"]["message"].startswith("max_tokens")
    assert running.chat(temperature="hot").status_code == 400
    assert requests.post(running.url + "/v1/chat/completions", data=b"{not json", timeout=5).status_code == 400
    bad_roles = requests.post(
        running.url + "/v1/chat/completions", timeout=5, json={"messages": [{"role": "root", "content": "x"}]}
    )
    assert bad_roles.status_code == 400
    assert requests.get(running.url + "/admin", timeout=5).status_code == 404
    # the base deployment here is at T=0: without a temperature the answer is the greedy one
    default = running.chat().json()["choices"][0]["message"]["content"]
    assert default == running.answer()[1]
    two = running.chat(n=2, temperature=0).json()["choices"]
    assert len(two) == 2


def test_local_target_without_a_server_fails_fast_and_writes_nothing(tmp_path, lora_files):
    target = LocalTarget(tmp_path, f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ServingError, match="not answering"):
        target.deploy("v1", None, lora_files["good"], "smollm2", 0.0)
    assert not (tmp_path / "local-model.json").exists()
    assert target.current() is None


def test_reconcile_after_a_dead_run_and_a_server_that_cannot_load_its_state_serves_the_base(tmp_path, lora_files):
    state = tmp_path / "serving"
    running = Running(state)
    try:
        target = LocalTarget(state, running.url, load_timeout=120)
        served = target.deploy("v1", None, lora_files["good"], "smollm2", 0.0)
        # a run killed right after writing the wanted file: the server swaps to an unverified model
        from pipeline.serving.base import write_json_atomic

        write_json_atomic(
            state / "local-model.json",
            {
                "generation": "dead-run",
                "deployment": {
                    "adapter_id": None,
                    "adapter_dir": None,
                    "gguf_path": None,
                    "base_model": "smollm2",
                    "temperature": 0.0,
                },
            },
        )
        for _ in range(200):
            if running.models() == ["base"]:
                break
            threading.Event().wait(0.05)
        assert running.models() == ["base"]
        assert target.reconcile() == served
        assert running.models() == ["v1"]
    finally:
        running.close()

    # the adapter file disappeared while the server was down: it starts on the base and says why
    moved = lora_files["good"].rename(lora_files["good"].with_suffix(".moved"))
    try:
        restarted = Running(state)
        try:
            health = requests.get(restarted.url + "/health", timeout=5).json()
            assert restarted.models() == ["base"] and "v1" not in str(health["model"])
            assert health["error"] and health["failed_generation"]
        finally:
            restarted.close()
    finally:
        moved.rename(lora_files["good"])


def test_the_cli_process_serves_the_base_and_stops_on_sigterm(tmp_path):
    import os
    import signal
    import subprocess
    import sys

    port = free_port()
    env = {
        **os.environ,
        "SSD_DATA_DIR": str(tmp_path),
        "SSD_LOCAL_MODEL_PORT": str(port),
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "ssd.cli", "model-server"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for _ in range(600):
            try:
                models = requests.get(f"http://127.0.0.1:{port}/v1/models", timeout=1).json()
                break
            except requests.ConnectionError:
                assert process.poll() is None, process.stderr.read()
                threading.Event().wait(0.1)
        assert [m["id"] for m in models["data"]] == ["base"] and models["data"][0]["base_model"] == "smollm2"
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
