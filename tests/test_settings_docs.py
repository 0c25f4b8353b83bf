"""Each setting is declared once (core/config.py): the docs are generated from the declarations, and reading the
environment follows them. The checks run over every declaration, so a new setting is covered without a new test."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import (
    ConfigError,
    Settings,
    declarations,
    env_example,
    readme_with_table,
    unsafe_execution_from_env,
)

ROOT = Path(__file__).resolve().parent.parent
REGENERATE = "generated from core/config.py and out of date: run `python scripts/gen_settings_docs.py`"
DECLARED = declarations()
# The cross-field rules need these when a test sets SSD_SERVING to ollama or vllm.
BASE_ENV = {"SSD_OLLAMA_URL": "http://127.0.0.1:11434", "SSD_VLLM_URL": "http://127.0.0.1:8000"}


def test_readme_table_is_generated():
    readme = (ROOT / "README.md").read_text()
    assert readme_with_table(readme) == readme, f"README.md's settings table is {REGENERATE}"


def test_env_example_is_generated():
    assert (ROOT / "deploy" / "env.example").read_text() == env_example(), f"deploy/env.example is {REGENERATE}"


def test_each_setting_has_a_variable_and_help():
    variables = [s.env for s in DECLARED.values()]
    assert len(set(variables)) == len(variables)
    for name, s in DECLARED.items():
        assert s.env.startswith("SSD_") and s.env.isupper(), name
        assert s.help.strip(), f"{s.env} has no help"


@pytest.mark.parametrize("name", [n for n, s in DECLARED.items() if s.choices])
def test_the_help_names_every_choice(name):
    s = DECLARED[name]
    missing = [choice for choice in s.choices if choice not in s.help]
    assert not missing, f"{s.env}'s help does not mention {missing}"


@pytest.mark.parametrize(
    "name",
    [n for n, s in DECLARED.items() if isinstance(s.default, int | float) and not isinstance(s.default, bool)],
)
def test_numbers_declare_a_minimum(name):
    assert DECLARED[name].minimum is not None, f"{DECLARED[name].env} accepts any number"


def test_defaults_round_trip():
    """An empty environment gives each declared default, and so does building ``Settings`` directly."""
    settings = Settings.from_env({})
    for name, s in DECLARED.items():
        expected = Path(s.default).resolve() if name == "data_dir" else s.default
        assert getattr(settings, name) == expected, s.env
    assert Settings(data_dir=Path("data").resolve()) == settings


def test_an_empty_variable_means_the_default():
    assert Settings.from_env({s.env: "" for s in DECLARED.values()}) == Settings.from_env({})


def _below(s):
    return s.minimum - 1 if isinstance(s.minimum, int) else s.minimum - 0.05


@pytest.mark.parametrize("name", [n for n, s in DECLARED.items() if s.minimum is not None])
def test_each_minimum_is_enforced(name, tmp_path):
    s = DECLARED[name]
    at_minimum = Settings.from_env({**BASE_ENV, "SSD_DATA_DIR": str(tmp_path), s.env: str(s.minimum)})
    assert getattr(at_minimum, name) == s.minimum
    with pytest.raises(ConfigError, match=s.env):
        Settings.from_env({**BASE_ENV, "SSD_DATA_DIR": str(tmp_path), s.env: str(_below(s))})


@pytest.mark.parametrize("name", [n for n, s in DECLARED.items() if s.maximum is not None])
def test_each_maximum_is_enforced(name, tmp_path):
    s = DECLARED[name]
    at_maximum = Settings.from_env({**BASE_ENV, "SSD_DATA_DIR": str(tmp_path), s.env: str(s.maximum)})
    assert getattr(at_maximum, name) == s.maximum
    with pytest.raises(ConfigError, match=s.env):
        Settings.from_env({**BASE_ENV, "SSD_DATA_DIR": str(tmp_path), s.env: str(s.maximum + 1)})


@pytest.mark.parametrize("name", [n for n, s in DECLARED.items() if s.choices])
def test_each_choice_is_enforced(name, tmp_path):
    s = DECLARED[name]
    mapping = isinstance(s.default, dict)  # command=level pairs
    for choice in s.choices:
        value = getattr(Settings.from_env({**BASE_ENV, s.env: f"eval={choice}" if mapping else choice}), name)
        assert value == ({"eval": choice} if mapping else choice)
    with pytest.raises(ConfigError, match=s.env):
        Settings.from_env({**BASE_ENV, "SSD_DATA_DIR": str(tmp_path), s.env: "eval=bogus" if mapping else "bogus"})


@pytest.mark.parametrize(
    "env, variable",
    [
        ({"SSD_GITEA_URL": "http://gitea.example"}, "SSD_GITEA_TOKEN"),
        ({"SSD_SERVING": "ollama"}, "SSD_OLLAMA_URL"),
        ({"SSD_SERVING": "vllm"}, "SSD_VLLM_URL"),
        ({"SSD_GATE_MARGIN": "1"}, "SSD_GATE_MARGIN"),
    ],
)
def test_rules_across_settings(env, variable):
    with pytest.raises(ConfigError, match=variable):
        Settings.from_env(env)


def test_the_cli_flag_reads_the_same_declaration():
    for raw, expected in [("", False), ("1", True), ("no", False), ("YES", True)]:
        env = {"SSD_UNSAFE_EXECUTION": raw}
        assert unsafe_execution_from_env(env) is expected is Settings.from_env(env).unsafe_execution
    with pytest.raises(ConfigError, match="SSD_UNSAFE_EXECUTION"):
        unsafe_execution_from_env({"SSD_UNSAFE_EXECUTION": "on"})
