"""Serving targets against Ollama and vLLM stand-ins over real HTTP, and the state they keep."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.serving import DeployFailed, Served, ServingError, open_target
from pipeline.serving.ollama import OllamaTarget
from pipeline.serving.vllm import VllmTarget
from tests.ollama_standin import OllamaStandin
from tests.vllm_standin import VllmStandin


def make_adapter(root: Path, version: str, rank: int = 8) -> Path:
    """A PEFT-shaped adapter directory (the stand-ins read the config and hash the bytes)."""
    directory = root / version
    directory.mkdir(parents=True)
    (directory / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": rank, "lora_alpha": 16}))
    (directory / "adapter_model.safetensors").write_bytes(f"weights of {version}".encode() * 100)
    return directory


def digest(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def ollama() -> Iterator[OllamaStandin]:
    standin = OllamaStandin()
    yield standin
    standin.close()


@pytest.fixture
def vllm() -> Iterator[VllmStandin]:
    standin = VllmStandin()
    yield standin
    standin.close()


# --------------------------------------------------------------------------- Ollama


def test_ollama_deploy_uploads_blobs_creates_with_temperature_and_swaps_the_alias(tmp_path, ollama):
    adapter = make_adapter(tmp_path, "v1")
    target = open_target("ollama", tmp_path / "state", ollama.url)
    served = target.deploy("v1", adapter, None, "smollm2:135m", 1.1)

    assert served == Served("ollama", ollama.url + "/v1", "ssd-bot:v1")
    assert target.current() == served
    # blobs first (checked, then pushed with their digest), then create from the base with both files
    pushed = [path for method, path, _ in ollama.requests if method == "POST" and path.startswith("/api/blobs/")]
    assert sorted(pushed) == sorted(
        f"/api/blobs/{digest(adapter / n)}" for n in ("adapter_config.json", "adapter_model.safetensors")
    )
    create = next(body for method, path, body in ollama.requests if path == "/api/create")
    assert create["from"] == "smollm2:135m"
    assert create["parameters"] == {"temperature": 1.1}
    assert create["adapters"] == {n: digest(adapter / n) for n in ("adapter_config.json", "adapter_model.safetensors")}
    # the alias agents use is now the new version, checked by digest and answered by it
    tags = {m["name"]: m["digest"] for m in json.loads(_get(ollama.url + "/api/tags"))["models"]}
    assert tags["ssd-bot:latest"] == tags["ssd-bot:v1"]
    chats = [body["model"] for _, path, body in ollama.requests if path == "/v1/chat/completions"]
    assert chats == ["ssd-bot:v1", "ssd-bot:latest"]


def test_ollama_prefers_the_gguf_adapter_and_rolls_back_by_copying_the_alias(tmp_path, ollama):
    target = OllamaTarget(tmp_path / "state", ollama.url)
    target.deploy("v1", make_adapter(tmp_path, "v1"), None, "smollm2:135m", 1.1)
    gguf = tmp_path / "v2-lora.gguf"
    gguf.write_bytes(b"GGUF lora v2" * 50)
    served = target.deploy("v2", make_adapter(tmp_path, "v2"), gguf, "smollm2:135m", 0.9)
    assert served.model == "ssd-bot:v2"
    create = [body for _, path, body in ollama.requests if path == "/api/create"][-1]
    assert create["adapters"] == {"v2-lora.gguf": digest(gguf)}

    restored = target.rollback()
    assert restored.model == "ssd-bot:v1"
    assert target.current() == restored
    assert [entry["served"]["model"] for entry in target.history()] == ["ssd-bot:v1"]
    assert ollama.models["ssd-bot:latest"].digest == ollama.models["ssd-bot:v1"].digest
    with pytest.raises(ServingError, match="nothing to roll back"):
        target.rollback()


def test_ollama_failed_smoke_restores_the_previous_version_and_deletes_the_new_one(tmp_path, ollama):
    target = OllamaTarget(tmp_path / "state", ollama.url)
    first = target.deploy("v1", make_adapter(tmp_path, "v1"), None, "smollm2:135m", 1.1)
    bad = make_adapter(tmp_path, "v2")
    ollama.broken_adapters.add(digest(bad / "adapter_model.safetensors"))

    with pytest.raises(DeployFailed, match="empty text") as failure:
        target.deploy("v2", bad, None, "smollm2:135m", 1.1)
    assert failure.value.restored == first
    assert target.current() == first
    assert "ssd-bot:v2" not in ollama.models
    assert ollama.models["ssd-bot:latest"].digest == ollama.models["ssd-bot:v1"].digest


def test_ollama_refuses_what_ollama_refuses(tmp_path):
    standin = OllamaStandin(base_models={"qwen3:4b": "qwen3"})
    try:
        target = OllamaTarget(tmp_path / "state", standin.url)
        # Ollama converts safetensors adapters only for llama/gemma2 bases: a Qwen base needs the GGUF export.
        with pytest.raises(DeployFailed, match="unsupported architecture") as failure:
            target.deploy("v1", make_adapter(tmp_path, "v1"), None, "qwen3:4b", 1.1)
        assert failure.value.restored is None
        assert target.current() is None
        with pytest.raises(DeployFailed, match="not found"):
            target.deploy("v1", make_adapter(tmp_path, "again"), None, "no-such-base", 1.1)
    finally:
        standin.close()


def test_ollama_version_tags_are_sanitized(tmp_path, ollama):
    target = OllamaTarget(tmp_path / "state", ollama.url, model_name="team-coder")
    served = target.deploy("2026-12-03T03:00/abc", make_adapter(tmp_path, "odd"), None, "smollm2:135m", 1.0)
    assert served.model == "team-coder:2026-12-03T03-00-abc"
    assert target.deploy(None, None, None, "smollm2:135m", 0.7).model == "team-coder:base"


# --------------------------------------------------------------------------- vLLM


def test_vllm_loads_the_new_adapter_then_unloads_the_previous(tmp_path, vllm):
    target = open_target("vllm", tmp_path / "state", vllm.url)
    v1, v2 = make_adapter(tmp_path, "v1"), make_adapter(tmp_path, "v2")
    assert target.deploy("v1", v1, None, "smollm2", 1.1) == Served("vllm", vllm.url + "/v1", "ssd-v1")
    assert target.deploy("v2", v2, None, "smollm2", 1.1).model == "ssd-v2"
    assert vllm.loras == {"ssd-v2": str(v2)}
    calls = [(path, body) for method, path, body in vllm.requests if path.endswith("lora_adapter")]
    assert calls == [
        ("/v1/load_lora_adapter", {"lora_name": "ssd-v1", "lora_path": str(v1)}),
        ("/v1/load_lora_adapter", {"lora_name": "ssd-v2", "lora_path": str(v2)}),
        ("/v1/unload_lora_adapter", {"lora_name": "ssd-v1"}),
    ]

    assert target.rollback().model == "ssd-v1"
    assert vllm.loras == {"ssd-v1": str(v1)}
    assert target.current().model == "ssd-v1"


def test_vllm_failed_deploy_unloads_the_new_one_and_keeps_the_old(tmp_path, vllm):
    target = VllmTarget(tmp_path / "state", vllm.url)
    first = target.deploy("v1", make_adapter(tmp_path, "v1"), None, "smollm2", 1.1)
    bad = make_adapter(tmp_path, "v2")
    vllm.broken_paths.add(str(bad))
    with pytest.raises(DeployFailed, match="empty text") as failure:
        target.deploy("v2", bad, None, "smollm2", 1.1)
    assert failure.value.restored == first
    assert list(vllm.loras) == ["ssd-v1"]
    # too large a rank: vLLM refuses the load; nothing changes
    with pytest.raises(DeployFailed, match="max_lora_rank"):
        target.deploy("v3", make_adapter(tmp_path, "v3", rank=64), None, "smollm2", 1.1)
    assert list(vllm.loras) == ["ssd-v1"]
    assert target.current() == first
    # the base is the server's own model
    assert target.deploy(None, None, None, "smollm2", 1.1).model == "smollm2"
    assert vllm.loras == {}


def test_vllm_without_runtime_updating_says_what_to_enable(tmp_path):
    standin = VllmStandin(runtime_lora_updating=False)
    try:
        with pytest.raises(DeployFailed, match="VLLM_ALLOW_RUNTIME_LORA_UPDATING"):
            VllmTarget(tmp_path, standin.url).deploy("v1", make_adapter(tmp_path, "v1"), None, "smollm2", 1.1)
    finally:
        standin.close()


# --------------------------------------------------------------------------- none and the state file


def test_none_records_promotions_and_rolls_back(tmp_path):
    target = open_target("none", tmp_path)
    assert target.current() is None
    target.deploy("v1", tmp_path, None, "smollm2", 1.1)
    target.deploy("v2", tmp_path, None, "smollm2", 1.1)
    assert target.current() == Served("none", "", "v2")
    assert target.rollback() == Served("none", "", "v1")
    # the history survives a new object (a restart)
    assert open_target("none", tmp_path).current() == Served("none", "", "v1")


def test_bad_requests_fail_before_anything_changes(tmp_path, ollama):
    target = OllamaTarget(tmp_path, ollama.url)
    with pytest.raises(ServingError, match="neither"):
        target.deploy("v1", None, None, "smollm2:135m", 1.0)
    with pytest.raises(ValueError, match="temperature"):
        target.deploy("v1", tmp_path, None, "smollm2:135m", -1)
    with pytest.raises(ServingError, match="unknown serving target"):
        open_target("triton", tmp_path)
    with pytest.raises(ServingError, match="needs its server URL"):
        open_target("vllm", tmp_path)
    assert ollama.requests == []


def _get(url: str) -> str:
    import requests

    return requests.get(url, timeout=5).text


# --------------------------------------------------------------------------- a run that died mid-swap


def test_ollama_reconcile_puts_back_the_verified_version_after_a_dead_run(tmp_path, ollama):
    import requests

    target = OllamaTarget(tmp_path / "state", ollama.url)
    first = target.deploy("v1", make_adapter(tmp_path, "v1"), None, "smollm2:135m", 1.1)
    # what a run killed between its copy and its checks leaves: the alias on an unverified model
    requests.post(
        ollama.url + "/api/create",
        json={"model": "ssd-bot:v2", "from": "smollm2:135m", "parameters": {"temperature": 2.0}, "stream": False},
        timeout=5,
    )
    requests.post(ollama.url + "/api/copy", json={"source": "ssd-bot:v2", "destination": "ssd-bot:latest"}, timeout=5)
    assert ollama.models["ssd-bot:latest"].digest != ollama.models["ssd-bot:v1"].digest

    assert target.reconcile() == first
    assert ollama.models["ssd-bot:latest"].digest == ollama.models["ssd-bot:v1"].digest


def test_vllm_reconcile_unloads_what_a_dead_run_loaded(tmp_path, vllm):
    import requests

    target = VllmTarget(tmp_path / "state", vllm.url)
    assert target.reconcile() is None  # nothing deployed yet: nothing to do
    first = target.deploy("v1", make_adapter(tmp_path, "v1"), None, "smollm2", 1.1)
    requests.post(
        vllm.url + "/v1/load_lora_adapter",
        timeout=5,
        json={"lora_name": "ssd-v2", "lora_path": str(make_adapter(tmp_path, "v2"))},
    )
    assert target.reconcile() == first
    assert list(vllm.loras) == ["ssd-v1"]


def test_rollback_to_a_named_version_cuts_the_history_back(tmp_path):
    target = open_target("none", tmp_path)
    for version in (None, "v1", "v2", "v3"):
        target.deploy(version, tmp_path, None, "smollm2", 1.0)
    assert target.rollback("v1") == Served("none", "", "v1")
    assert [entry["served"]["model"] for entry in target.history()] == ["base", "v1"]
    with pytest.raises(ServingError, match="no version 'v9'.*base, v1"):
        target.rollback("v9")
    assert target.rollback("base").model == "base"


def test_a_failed_reconcile_or_rollback_never_deletes_a_verified_version(tmp_path, ollama, vllm):
    target = OllamaTarget(tmp_path / "ollama", ollama.url)
    adapter = make_adapter(tmp_path, "v1")
    target.deploy("v1", adapter, None, "smollm2:135m", 1.1)
    ollama.broken_adapters.add(digest(adapter / "adapter_model.safetensors"))  # it stops answering
    with pytest.raises(DeployFailed):
        target.reconcile()
    assert "ssd-bot:v1" in ollama.models and target.current().model == "ssd-bot:v1"

    versions = VllmTarget(tmp_path / "vllm", vllm.url)
    old = make_adapter(tmp_path, "old")
    versions.deploy("old", old, None, "smollm2", 1.1)
    second = versions.deploy("new", make_adapter(tmp_path, "new"), None, "smollm2", 1.1)
    vllm.broken_paths.add(str(old))
    with pytest.raises(DeployFailed, match="deploying old failed") as failure:
        versions.rollback()
    assert failure.value.restored == second and versions.current() == second
    assert [e["served"]["model"] for e in versions.history()] == ["ssd-old", "ssd-new"]
    assert "ssd-new" in vllm.loras


def test_the_ollama_standin_checks_blob_digests_like_ollama(ollama):
    import requests

    body = b"adapter bytes"
    good = "sha256:" + hashlib.sha256(body).hexdigest()
    wrong = "sha256:" + hashlib.sha256(b"other bytes").hexdigest()
    assert requests.post(f"{ollama.url}/api/blobs/{wrong}", data=body, timeout=5).status_code == 400
    assert requests.head(f"{ollama.url}/api/blobs/{wrong}", timeout=5).status_code == 404
    assert requests.post(f"{ollama.url}/api/blobs/{good}", data=body, timeout=5).status_code == 201
    assert requests.head(f"{ollama.url}/api/blobs/{good}", timeout=5).status_code == 200
    refused = requests.post(
        f"{ollama.url}/api/create",
        timeout=5,
        json={"model": "x:1", "from": "smollm2:135m", "adapters": {"a.gguf": wrong}, "stream": False},
    )
    assert refused.status_code == 400 and "not found" in refused.json()["error"]
