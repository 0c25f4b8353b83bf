"""The loop's settings: defaults, parsing, and errors that name the variable."""

from __future__ import annotations

import pytest

from core.config import ConfigError, Settings


def test_defaults(tmp_path):
    settings = Settings.from_env({"SSD_DATA_DIR": str(tmp_path)})
    assert settings.serving == "local" and settings.local_model_port == 8011
    assert settings.ollama_url is None and settings.vllm_url is None
    assert settings.loop_min_examples == 20 and settings.loop_suites == ("basic",)
    assert settings.loop_eval_limit == 40 and settings.gate_margin == 0.05
    assert settings.tracking_issue is None and settings.nightly_cron == "0 3 * * *"


def test_values_are_parsed(tmp_path):
    settings = Settings.from_env(
        {
            "SSD_DATA_DIR": str(tmp_path),
            "SSD_SERVING": "Ollama",
            "SSD_OLLAMA_URL": "http://gpu-box:11434/",
            "SSD_VLLM_URL": "http://gpu-box:8000",
            "SSD_LOCAL_MODEL_PORT": "9000",
            "SSD_LOOP_MIN_EXAMPLES": "5",
            "SSD_TRACKING_ISSUE": "team/models#12",
            "SSD_LOOP_SUITES": "basic, humaneval",
            "SSD_LOOP_EVAL_LIMIT": "80",
            "SSD_GATE_MARGIN": "0.02",
            "SSD_NIGHTLY_CRON": "30 2 * * 1-5",
        }
    )
    assert settings.serving == "ollama" and settings.ollama_url == "http://gpu-box:11434"
    assert settings.vllm_url == "http://gpu-box:8000" and settings.local_model_port == 9000
    assert settings.loop_min_examples == 5 and settings.tracking_issue == ("team", "models", 12)
    assert settings.loop_suites == ("basic", "humaneval") and settings.loop_eval_limit == 80
    assert settings.gate_margin == 0.02 and settings.nightly_cron == "30 2 * * 1-5"


@pytest.mark.parametrize(
    "env, variable",
    [
        ({"SSD_SERVING": "triton"}, "SSD_SERVING"),
        ({"SSD_SERVING": "ollama"}, "SSD_OLLAMA_URL"),
        ({"SSD_SERVING": "vllm"}, "SSD_VLLM_URL"),
        ({"SSD_OLLAMA_URL": "gpu-box:11434"}, "SSD_OLLAMA_URL"),
        ({"SSD_LOCAL_MODEL_PORT": "70000"}, "SSD_LOCAL_MODEL_PORT"),
        ({"SSD_LOCAL_MODEL_PORT": "0"}, "SSD_LOCAL_MODEL_PORT"),
        ({"SSD_LOOP_MIN_EXAMPLES": "0"}, "SSD_LOOP_MIN_EXAMPLES"),
        ({"SSD_TRACKING_ISSUE": "team/models"}, "SSD_TRACKING_ISSUE"),
        ({"SSD_TRACKING_ISSUE": "team/models#0"}, "SSD_TRACKING_ISSUE"),
        ({"SSD_TRACKING_ISSUE": "../x/y#1 "}, "SSD_TRACKING_ISSUE"),
        ({"SSD_TRACKING_ISSUE": "../models#1"}, "SSD_TRACKING_ISSUE"),
        ({"SSD_TRACKING_ISSUE": "team/models#1; rm -rf"}, "SSD_TRACKING_ISSUE"),
        ({"SSD_LOOP_EVAL_LIMIT": "many"}, "SSD_LOOP_EVAL_LIMIT"),
        ({"SSD_GATE_MARGIN": "-0.1"}, "SSD_GATE_MARGIN"),
        ({"SSD_GATE_MARGIN": "5"}, "SSD_GATE_MARGIN"),
        ({"SSD_NIGHTLY_TZ": "Mars/Olympus"}, "SSD_NIGHTLY_TZ"),
        ({"SSD_NIGHTLY_TZ": "../../etc/passwd"}, "SSD_NIGHTLY_TZ"),
    ],
)
def test_bad_values_name_the_variable(tmp_path, env, variable):
    with pytest.raises(ConfigError, match=variable):
        Settings.from_env({"SSD_DATA_DIR": str(tmp_path), **env})
