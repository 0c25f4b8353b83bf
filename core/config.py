"""The one configuration object. Only this module reads the environment.

Every setting is an ``SSD_*`` variable, documented in the README. Values are parsed and
checked here so that a bad value fails at start-up with a message naming the variable.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

PERMISSION_LEVELS = ("none", "read", "write", "admin", "owner")


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, minimum: float = 0.0) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be 1/0, true/false, yes/no or on/off, got {raw!r}")
def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    value = env.get(name, "").strip() or default
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _list(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in env.get(name, "").split(",") if part.strip())


def _permissions(env: Mapping[str, str], name: str) -> dict[str, str]:
    """Parse ``eval=write,train=admin`` into {command: level}."""
    result: dict[str, str] = {}
    for item in _list(env, name):
        command, sep, level = item.partition("=")
        if not sep or not command.strip() or level.strip() not in PERMISSION_LEVELS:
            raise ConfigError(
                f"{name}: expected command=level with level in {', '.join(PERMISSION_LEVELS)}, got {item!r}"
            )
        result[command.strip()] = level.strip()
    return result


def _bind(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name, "").strip() or default
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{name} must be HOST:PORT, got {value!r}")
    return value


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    value = _int(env, name, default, minimum=1)
    if value > 65535:
        raise ConfigError(f"{name} must be a TCP port (1-65535), got {value}")
    return value


def _zone(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip() or "UTC"
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{name} must be an IANA time zone such as UTC or Europe/Berlin, got {value!r}") from None
    return value


def _url(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip().rstrip("/") or None
    if value and not value.startswith(("http://", "https://")):
        raise ConfigError(f"{name} must start with http:// or https://, got {value!r}")
    return value


SERVING_TARGETS = ("none", "local", "ollama", "vllm")
LOOP_MODES = ("accepted", "self", "mixed")  # pipeline.loop.run.MODES
TRACKING_ISSUE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.-]*)/([A-Za-z0-9][A-Za-z0-9_.-]*)#([1-9][0-9]*)$")


def _tracking_issue(env: Mapping[str, str], name: str) -> tuple[str, str, int] | None:
    """``owner/repo#N`` -> (owner, repo, N)."""
    raw = env.get(name, "").strip()
    if not raw:
        return None
    match = TRACKING_ISSUE.match(raw)
    if not match:
        raise ConfigError(f"{name} must be owner/repo#N (e.g. team/models#12), got {raw!r}")
    return match.group(1), match.group(2), int(match.group(3))


def _loop_mode(env: Mapping[str, str], name: str) -> str:
    mode = env.get(name, "").strip().lower() or "accepted"
    if mode not in LOOP_MODES:
        raise ConfigError(f"{name} must be one of {', '.join(LOOP_MODES)}, got {mode!r}")
    return mode


def _serving(env: Mapping[str, str]) -> tuple[str, str | None, str | None]:
    """The serving target and the URLs it needs, checked together."""
    target = env.get("SSD_SERVING", "").strip().lower() or "local"
    if target not in SERVING_TARGETS:
        raise ConfigError(f"SSD_SERVING must be one of {', '.join(SERVING_TARGETS)}, got {target!r}")
    ollama_url, vllm_url = _url(env, "SSD_OLLAMA_URL"), _url(env, "SSD_VLLM_URL")
    if target == "ollama" and not ollama_url:
        raise ConfigError("SSD_OLLAMA_URL is required when SSD_SERVING=ollama (e.g. http://127.0.0.1:11434)")
    if target == "vllm" and not vllm_url:
        raise ConfigError("SSD_VLLM_URL is required when SSD_SERVING=vllm (e.g. http://127.0.0.1:8000)")
    return target, ollama_url, vllm_url


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    bind: str = "127.0.0.1:8080"
    gitea_url: str | None = None
    gitea_token: str | None = None
    webhook_secret_env: str | None = None
    redis_url: str | None = None
    database_url_env: str | None = None
    public_url: str | None = None
    bot_accounts: tuple[str, ...] = ()
    command_permissions: dict[str, str] = field(default_factory=dict)
    buffer_size: int = 500
    max_body_bytes: int = 4 * 1024 * 1024
    gitea_timeout: float = 15.0
    gitea_retries: int = 4
    audit_max_files: int = 2000  # files `/ssd audit` reads from a Gitea tree (one raw request each)
    audit_max_bytes: int = 32 * 1024 * 1024  # bytes it reads in all
    status_edit_interval: float = 3.0
    job_timeout: int = 6 * 3600
    web_workers: int = 2
    default_model: str = "smollm2"
    openai_base_url: str | None = None  # OpenAI-compatible server `/ssd eval model=openai:NAME` may use
    # Bounds on what one comment may ask for (a command line over a cap is answered with a usage error).
    max_commands_per_comment: int = 10
    max_n: int = 20  # samples per problem
    max_limit: int = 500  # problems per run
    max_tokens: int = 2048  # tokens per sample
    nightly_cron: str = "0 3 * * *"
    nightly_tz: str = "UTC"  # the zone SSD_NIGHTLY_CRON is read in (an IANA name)
    log_level: str = "INFO"
    # The continuous loop (issue #12): where promoted adapters are served, and the run's gate.
    serving: str = "local"  # none | local | ollama | vllm
    ollama_url: str | None = None
    vllm_url: str | None = None
    local_model_port: int = 8011  # `ssd model-server` listens on 127.0.0.1 at this port
    loop_min_examples: int = 20  # buffer examples a run needs; fewer = skipped
    tracking_issue: tuple[str, str, int] | None = None  # (owner, repo, N) from owner/repo#N
    loop_suites: tuple[str, ...] = ("basic",)
    loop_eval_limit: int = 40  # problems per suite in the gate
    gate_margin: float = 0.05  # pass@1 the candidate may lose, at the CI's lower end, and still ship
    loop_mode: str = "accepted"  # the run's training set: accepted (merged diffs) | self (SSD samples) | mixed
    gpu_worker: bool = False  # a worker serves the gpu queue: `/ssd train` goes there instead of cpu
    train_confirm_tokens: int = 50_000  # `/ssd train` above prompts x max_tokens asks for confirm=yes
    repo_cache_dir_env: Path | None = None  # repository suites: archives, checkouts, environments
    repo_fetch: str = "archive"  # how repository suites get code at a commit: archive | clone
    repo_test_timeout: float = 300.0  # seconds per test run of a repository suite
    unsafe_execution: bool = False  # run model programs even where the sandbox is incomplete (see README)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        gitea_url = env.get("SSD_GITEA_URL", "").strip().rstrip("/") or None
        gitea_token = env.get("SSD_GITEA_TOKEN", "").strip() or None
        if gitea_url and not gitea_url.startswith(("http://", "https://")):
            raise ConfigError(f"SSD_GITEA_URL must start with http:// or https://, got {gitea_url!r}")
        if gitea_url and not gitea_token:
            raise ConfigError("SSD_GITEA_TOKEN is required when SSD_GITEA_URL is set (an admin token: see README)")
        redis_url = env.get("SSD_REDIS_URL", "").strip() or None
        if redis_url and not redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError(f"SSD_REDIS_URL must be a redis://, rediss:// or unix:// URL, got {redis_url!r}")
        database_url = env.get("SSD_DATABASE_URL", "").strip() or None
        if database_url and not database_url.startswith(("sqlite", "postgresql", "postgres://")):
            raise ConfigError(f"SSD_DATABASE_URL must be a sqlite:// or postgresql:// URL, got {database_url!r}")
        level = env.get("SSD_LOG_LEVEL", "INFO").strip().upper() or "INFO"
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ConfigError(f"SSD_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {level!r}")
        serving, ollama_url, vllm_url = _serving(env)
        gate_margin = _float(env, "SSD_GATE_MARGIN", 0.05)
        if gate_margin >= 1:
            raise ConfigError(f"SSD_GATE_MARGIN is a pass@1 fraction in [0, 1), got {gate_margin}")
        return cls(
            data_dir=Path(env.get("SSD_DATA_DIR", "").strip() or "data").resolve(),
            bind=_bind(env, "SSD_BIND", "127.0.0.1:8080"),
            gitea_url=gitea_url,
            gitea_token=gitea_token,
            webhook_secret_env=env.get("SSD_WEBHOOK_SECRET") or None,
            redis_url=redis_url,
            database_url_env=database_url,
            public_url=env.get("SSD_PUBLIC_URL", "").strip().rstrip("/") or None,
            bot_accounts=_list(env, "SSD_BOT_ACCOUNTS"),
            command_permissions=_permissions(env, "SSD_COMMAND_PERMISSIONS"),
            buffer_size=_int(env, "SSD_BUFFER_SIZE", 500, minimum=1),
            max_body_bytes=_int(env, "SSD_MAX_BODY_BYTES", 4 * 1024 * 1024, minimum=1024),
            gitea_timeout=_float(env, "SSD_GITEA_TIMEOUT", 15.0, minimum=0.1),
            gitea_retries=_int(env, "SSD_GITEA_RETRIES", 4),
            audit_max_files=_int(env, "SSD_AUDIT_MAX_FILES", 2000, minimum=1),
            audit_max_bytes=_int(env, "SSD_AUDIT_MAX_BYTES", 32 * 1024 * 1024, minimum=1024),
            status_edit_interval=_float(env, "SSD_STATUS_EDIT_INTERVAL", 3.0),
            job_timeout=_int(env, "SSD_JOB_TIMEOUT", 6 * 3600, minimum=1),
            web_workers=_int(env, "SSD_WEB_WORKERS", 2, minimum=1),
            default_model=env.get("SSD_MODEL", "").strip() or "smollm2",
            openai_base_url=_url(env, "SSD_OPENAI_BASE_URL"),
            max_commands_per_comment=_int(env, "SSD_MAX_COMMANDS_PER_COMMENT", 10, minimum=1),
            max_n=_int(env, "SSD_MAX_N", 20, minimum=1),
            max_limit=_int(env, "SSD_MAX_LIMIT", 500, minimum=1),
            max_tokens=_int(env, "SSD_MAX_TOKENS", 2048, minimum=1),
            nightly_cron=env.get("SSD_NIGHTLY_CRON", "").strip() or "0 3 * * *",
            nightly_tz=_zone(env, "SSD_NIGHTLY_TZ"),
            log_level=level,
            serving=serving,
            ollama_url=ollama_url,
            vllm_url=vllm_url,
            local_model_port=_port(env, "SSD_LOCAL_MODEL_PORT", 8011),
            loop_min_examples=_int(env, "SSD_LOOP_MIN_EXAMPLES", 20, minimum=1),
            tracking_issue=_tracking_issue(env, "SSD_TRACKING_ISSUE"),
            loop_suites=_list(env, "SSD_LOOP_SUITES") or ("basic",),
            loop_eval_limit=_int(env, "SSD_LOOP_EVAL_LIMIT", 40, minimum=1),
            gate_margin=gate_margin,
            loop_mode=_loop_mode(env, "SSD_LOOP_MODE"),
            gpu_worker=_bool(env, "SSD_GPU_WORKER", False),
            train_confirm_tokens=_int(env, "SSD_TRAIN_CONFIRM_TOKENS", 50_000, minimum=1),
            repo_cache_dir_env=Path(env["SSD_REPO_CACHE_DIR"].strip()).resolve()
            if env.get("SSD_REPO_CACHE_DIR", "").strip() else None,
            repo_fetch=_choice(env, "SSD_REPO_FETCH", ("archive", "clone"), "archive"),
            repo_test_timeout=_float(env, "SSD_REPO_TEST_TIMEOUT", 300.0, minimum=1.0),
            unsafe_execution=unsafe_execution_from_env(env),
        )

    @property
    def dry_run(self) -> bool:
        """Without a Gitea URL the bot writes what it would post to the outbox."""
        return self.gitea_url is None

    @property
    def repo_cache_dir(self) -> Path:
        return self.repo_cache_dir_env or self.data_dir / "repos"

    @property
    def outbox_dir(self) -> Path:
        return self.data_dir / "outbox"

    @property
    def database_url(self) -> str:
        return self.database_url_env or f"sqlite:///{self.data_dir / 'ssd.db'}"

    @property
    def webhook_secret(self) -> str:
        """The configured secret, or one generated once and kept (0600) in the data dir."""
        if self.webhook_secret_env:
            return self.webhook_secret_env
        path = self.data_dir / "webhook_secret"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32))
        return path.read_text().strip()

    def permission_for(self, command: str, default: str) -> str:
        return self.command_permissions.get(command, default)

    def child_env(self, **overrides: str) -> dict[str, str]:
        """The environment for processes the service itself starts (gunicorn, workers)."""
        env = dict(os.environ)
        env.update(overrides)
        return env


def unsafe_execution_from_env(env: Mapping[str, str] | None = None) -> bool:
    """SSD_UNSAFE_EXECUTION=1: the operator accepts a sandbox without some of its isolation (say, no user
    namespaces for a non-root service). Anything but 1/true/yes (or empty) is an error, not a silent no."""
    env = os.environ if env is None else env
    value = env.get("SSD_UNSAFE_EXECUTION", "").strip().lower()
    if value in ("", "0", "false", "no"):
        return False
    if value in ("1", "true", "yes"):
        return True
    raise ConfigError(f"SSD_UNSAFE_EXECUTION must be 1 or 0, got {value!r}")


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    return Settings.from_env(env)


def next_nightly(settings: Settings, after: datetime | None = None) -> datetime:
    """When the next nightly run will be enqueued (UTC), e.g. for ``/ssd status``."""
    start = (after or datetime.now(UTC)).astimezone(ZoneInfo(settings.nightly_tz))
    return croniter(settings.nightly_cron, start).get_next(datetime).astimezone(UTC)
