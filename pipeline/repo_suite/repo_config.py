"""Per-repository settings: ``.ssd.yml`` at the base commit, then per-command overrides.

```yaml
test_command: "{python} -m pytest -p no:cacheprovider --junitxml={junit} {files}"  # or a list
test_patterns: ["tests/*", "*/test_*.py"]   # which changed files belong to the test patch
requirements: ["requirements-test.txt"]     # installed into the cached environment
env: {PYTEST_DISABLE_PLUGIN_AUTOLOAD: "1"}   # extra variables for the test command
```
Placeholders: ``{python}`` the environment's interpreter, ``{junit}`` where the JUnit XML must go,
``{files}`` the test files to run (expanded to several arguments).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field, replace
from pathlib import Path

from pipeline.repo_suite.patches import DEFAULT_TEST_PATTERNS

CONFIG_FILE = ".ssd.yml"
DEFAULT_TEST_COMMAND = (
    "{python}",
    "-m",
    "pytest",
    "-p",
    "no:cacheprovider",
    "-o",
    "junit_family=xunit1",
    "-q",
    "--junitxml={junit}",
    "{files}",
)
DEFAULT_REQUIREMENTS = (
    "requirements-test.txt",
    "requirements-dev.txt",
    "test-requirements.txt",
    "requirements/test.txt",
    "requirements.txt",
)


# Set by the runner: the interpreter, the sandbox's home and temporary directory.
PROTECTED_ENV = ("PATH", "HOME", "TMPDIR", "VIRTUAL_ENV", "PYTHONHOME", "LD_PRELOAD", "LD_LIBRARY_PATH")


class RepoConfigError(ValueError):
    pass


@dataclass(frozen=True, eq=False)
class RepoConfig:
    test_command: tuple[str, ...] = DEFAULT_TEST_COMMAND
    test_patterns: tuple[str, ...] = DEFAULT_TEST_PATTERNS
    requirements: tuple[str, ...] = DEFAULT_REQUIREMENTS
    timeout_s: float = 300.0
    env: dict[str, str] = field(default_factory=dict)  # on top of the sandbox's scrubbed environment

    def with_overrides(
        self,
        test_command: str | list[str] | None = None,
        test_patterns: list[str] | None = None,
        timeout_s: float | None = None,
    ) -> RepoConfig:
        config = self
        if test_command:
            config = replace(config, test_command=_command(test_command))
        if test_patterns:
            config = replace(config, test_patterns=tuple(test_patterns))
        if timeout_s:
            config = replace(config, timeout_s=float(timeout_s))
        return config


def _command(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        parts = shlex.split(value)
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        parts = list(value)
    else:
        raise RepoConfigError("test_command must be a string or a list of strings")
    if not parts:
        raise RepoConfigError("test_command is empty")
    return tuple(parts)


def _strings(value: object, name: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise RepoConfigError(f"{name} must be a list of strings")
    return tuple(value)


def load_repo_config(work_tree: Path, base: RepoConfig | None = None) -> RepoConfig:
    """``.ssd.yml`` of a checkout over ``base`` (the defaults); a malformed file is an error, not ignored."""
    config = base or RepoConfig()
    path = work_tree / CONFIG_FILE
    if not path.is_file() or path.is_symlink():
        return config
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise RepoConfigError(f"{CONFIG_FILE}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise RepoConfigError(f"{CONFIG_FILE}: expected a mapping")
    if "test_command" in data:
        config = replace(config, test_command=_command(data["test_command"]))
    if "test_patterns" in data:
        config = replace(config, test_patterns=_strings(data["test_patterns"], "test_patterns"))
    if "env" in data:
        env = data["env"]
        if not isinstance(env, dict) or not all(
            isinstance(k, str)
            and re.fullmatch(r"[A-Z_][A-Z0-9_]*", k)
            and k not in PROTECTED_ENV
            and isinstance(v, str | int | float)
            for k, v in env.items()
        ):
            raise RepoConfigError(f"env must map NAMES to strings (not {', '.join(PROTECTED_ENV)})")
        config = replace(config, env={k: str(v) for k, v in env.items()})
    if "requirements" in data:
        config = replace(config, requirements=_strings(data["requirements"], "requirements"))
    return config
