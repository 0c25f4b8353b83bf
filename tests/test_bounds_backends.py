"""The OpenAI-compatible backend cannot know whether a server applied ``top_k``/``min_p`` (not part of the
OpenAI API; Ollama ignores them): instead of silently trusting it, the report says so (issue #8)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from pipeline.backends.openai_http import OpenAIBackend
from pipeline.types import SamplingParams
from tests.openai_standin import CODE_PROMPT, ScriptedServer


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    started = ScriptedServer([])
    yield started
    started.close()


def test_the_backend_description_says_top_k_and_min_p_are_unverified(
    server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    backend = OpenAIBackend(server.url, model="m")
    assert "top_k, min_p" in backend.describe()["unverified_params"]
    with caplog.at_level(logging.WARNING, logger="pipeline.backends.openai_http"):
        backend.generate([CODE_PROMPT], SamplingParams(temperature=0.5, top_k=40, min_p=0.1))
    assert any("top_k=40 min_p=0.1" in r.getMessage() for r in caplog.records)
    assert server.requests[-1]["top_k"] == 40 and server.requests[-1]["min_p"] == 0.1  # still sent


def test_an_eval_report_on_an_openai_server_carries_the_caveat(server: ScriptedServer, tmp_path) -> None:
    from bot.commands.eval import render_report
    from pipeline.evaluate import EvalConfig, run_eval

    cfg = EvalConfig(
        suite="basic", model="openai:m", base_url=server.url, limit=1, top_k=40, cache_dir=str(tmp_path / "verdicts")
    )
    data = run_eval(cfg).to_dict()
    assert "top_k, min_p" in data["provenance"]["model"]["unverified_params"]
    report = render_report(data, None, "eval")
    assert "unverified_params" in report and "Ollama" in report
