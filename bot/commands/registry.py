"""The one table of slash commands.

Each command is registered once, with its handler, argument schema, help text, the permission needed
to run it and the RQ queue it runs on. ``/ssd help``, argument validation and authorization all read
this table, so a new command (eval, audit, train, …) only has to register itself.
"""

from __future__ import annotations

import difflib
import math
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.commands.api import Handler
from core.config import PERMISSION_LEVELS
from core.queues import ALL as QUEUES

if TYPE_CHECKING:
    from bot.commands.parse import ParsedCommand
    from core.config import Settings

# Checks run before a command is enqueued, with everything the handler will need (files, models): a
# problem is answered as a usage error on the issue instead of failing later inside the job.
ArgsCheck = Callable[["Settings", dict[str, Any]], None]

MAX_ARG_CHARS = 256  # any one argument; model and suite names are short, and replies echo arguments
MAX_TEMPERATURE = 2.0
MAX_TEMPERATURES = 10  # rows of one eval: each is a full pass over the suite
MAX_SEED = 2**31 - 1  # backends take 32-bit seeds, and sample i uses seed + i
MAX_TOP_K = 1000


class UsageError(ValueError):
    """A command line does not fit the command's schema; the message says why."""


class CommandError(Exception):
    """A handler's expected refusal (no such job, not yours to cancel): reported without a traceback."""


def shown(text: str, limit: int = 60) -> str:
    """User text as a reply may quote it: short, one line, control characters shown as ``<U+XXXX>``."""
    text = " ".join(str(text).split())
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return "".join(f"<U+{ord(c):04X}>" if unicodedata.category(c) in ("Cc", "Cf") else c for c in text)


def control_character(text: str) -> str | None:
    """The first control or invisible formatting character in ``text`` (NUL, ESC, bidi overrides…), as U+XXXX."""
    for char in text:
        if unicodedata.category(char) in ("Cc", "Cf"):
            return f"U+{ord(char):04X}"
    return None


# Argument types: a callable str -> value that raises ValueError on bad input. ``metavar`` names the
# value in the usage line.


def boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "y", "on"):
        return True
    if lowered in ("0", "false", "no", "n", "off"):
        return False
    raise ValueError(f"expected yes or no, got {text!r}")


boolean.metavar = "yes|no"  # type: ignore[attr-defined]


def str_list(text: str) -> list[str]:
    items = [part.strip() for part in text.split(",") if part.strip()]
    if not items:
        raise ValueError("expected a comma-separated list")
    return items


str_list.metavar = "A,B,…"  # type: ignore[attr-defined]


def float_list(text: str) -> list[float]:
    try:
        return [float(item) for item in str_list(text)]
    except ValueError:
        raise ValueError("expected comma-separated numbers") from None


float_list.metavar = "X,Y,…"  # type: ignore[attr-defined]


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError("expected a number") from None
    if not math.isfinite(value):
        raise ValueError("expected a finite number")
    return value


def temperatures(text: str) -> list[float]:
    """Finite temperatures in [0, MAX_TEMPERATURE], at most MAX_TEMPERATURES of them (0 = greedy)."""
    values = [_number(item) for item in str_list(text)]
    if len(values) > MAX_TEMPERATURES:
        raise ValueError(f"at most {MAX_TEMPERATURES} temperatures per run")
    if any(not 0 <= value <= MAX_TEMPERATURE for value in values):
        raise ValueError(f"temperatures must be between 0 and {MAX_TEMPERATURE:g}")
    return values


temperatures.metavar = "T1,T2,…"  # type: ignore[attr-defined]


def probability(text: str) -> float:
    """A number in [0, 1] (top_p, min_p)."""
    value = _number(text)
    if not 0 <= value <= 1:
        raise ValueError("expected a number between 0 and 1")
    return value


probability.metavar = "X"  # type: ignore[attr-defined]


def _integer(text: str) -> int:
    if not text.strip().isascii() or not text.strip().lstrip("+-").isdigit():
        raise ValueError("expected a whole number")
    return int(text)


def positive_int(text: str) -> int:
    value = _integer(text)
    if value < 1:
        raise ValueError("expected a positive integer")
    return value


positive_int.metavar = "N"  # type: ignore[attr-defined]


def seed(text: str) -> int:
    value = _integer(text)
    if not 0 <= value <= MAX_SEED:
        raise ValueError(f"expected a whole number from 0 to {MAX_SEED}")
    return value


seed.metavar = "N"  # type: ignore[attr-defined]


def top_k(text: str) -> int:
    value = _integer(text)
    if not 0 <= value <= MAX_TOP_K:
        raise ValueError(f"expected a whole number from 0 (off) to {MAX_TOP_K}")
    return value


top_k.metavar = "K"  # type: ignore[attr-defined]

_METAVARS: dict[Any, str] = {str: "TEXT", int: "N", float: "X"}

_MISSING = object()


@dataclass(frozen=True)
class Arg:
    """One argument. ``positional`` arguments may also be given as ``name=value``."""

    name: str
    type: Callable[[str], Any] = str
    default: Any = None
    required: bool = False
    help: str = ""
    choices: Sequence[str] | None = None
    positional: bool = False
    cap: str | None = None  # the Settings field holding this argument's maximum (``max_n``): set per server

    @property
    def metavar(self) -> str:
        if self.choices:
            return "|".join(self.choices)
        return getattr(self.type, "metavar", None) or _METAVARS.get(self.type, self.name.upper())

    def convert(self, raw: str, settings: Settings | None = None) -> Any:
        bad = control_character(raw)
        if bad:
            raise UsageError(f"`{self.name}` contains the control character {bad}; arguments are plain text")
        if len(raw) > MAX_ARG_CHARS:
            raise UsageError(f"`{self.name}` is {len(raw)} characters long; at most {MAX_ARG_CHARS}")
        if self.choices and raw not in self.choices:
            raise UsageError(f"`{self.name}` must be one of {', '.join(self.choices)}; got `{shown(raw)}`")
        try:
            value = self.type(raw)
        except (ValueError, TypeError) as exc:
            raise UsageError(f"`{self.name}={shown(raw)}` is not valid: {shown(str(exc), 120)}") from None
        if self.cap and value is not None:
            maximum = self.maximum(settings)
            if value > maximum:
                variable = "SSD_" + self.cap.upper()
                raise UsageError(f"`{self.name}={value}` is over this server's limit of {maximum} ({variable})")
        return value

    def maximum(self, settings: Settings | None) -> int:
        """The cap from ``settings``, or the Settings default when there are none (help, tests)."""
        from core.config import Settings

        if settings is not None:
            return getattr(settings, self.cap)
        return Settings.__dataclass_fields__[self.cap].default


@dataclass(frozen=True)
class Command:
    name: str
    handler: Handler
    summary: str
    args: tuple[Arg, ...] = ()
    permission: str = "write"  # commands that run jobs need write; help/status lower it to read
    queue: str = "default"
    help: str = ""
    timeout: int | None = None  # seconds; None means settings.job_timeout
    check: ArgsCheck | None = None  # run after validate, before enqueueing; raises UsageError or CommandError
    # Chooses the queue from the settings when that depends on the deployment (``train``: gpu when a GPU
    # worker is configured, else cpu); must return one of QUEUES. None: always ``queue``.
    queue_for: Callable[[Settings], str] | None = None

    def queue_name(self, settings: Settings | None) -> str:
        return self.queue_for(settings) if self.queue_for is not None and settings is not None else self.queue

    def __post_init__(self) -> None:
        if self.permission not in PERMISSION_LEVELS:
            raise ValueError(f"{self.name}: permission must be one of {PERMISSION_LEVELS}")
        if self.queue not in QUEUES:
            raise ValueError(f"{self.name}: queue must be one of {QUEUES}")
        names = [arg.name for arg in self.args]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.name}: duplicate argument names {names}")

    @property
    def usage(self) -> str:
        parts = [f"/ssd {self.name}"]
        for arg in self.args:
            text = f"<{arg.name}>" if arg.positional else f"{arg.name}={arg.metavar}"
            parts.append(text if arg.required else f"[{text}]")
        return " ".join(parts)

    def required_permission(self, settings: Settings | None) -> str:
        """The level needed to run this command; ``SSD_COMMAND_PERMISSIONS`` overrides the default."""
        return settings.permission_for(self.name, self.permission) if settings else self.permission

    def validate(self, parsed: ParsedCommand, settings: Settings | None = None) -> dict[str, Any]:
        """Map a parsed line onto the schema: converted values (within ``settings``' caps), defaults filled
        in. Raises UsageError."""
        if parsed.error:
            raise UsageError(shown(parsed.error, 120))
        by_name = {arg.name: arg for arg in self.args}
        values: dict[str, Any] = {}
        positional_args = [arg for arg in self.args if arg.positional]
        if len(parsed.positional) > len(positional_args):
            extra = parsed.positional[len(positional_args) :]
            raise UsageError(f"unexpected argument{'s' if len(extra) > 1 else ''}: {shown(' '.join(extra))}")
        for arg, raw in zip(positional_args, parsed.positional, strict=False):
            values[arg.name] = arg.convert(raw, settings)
        for key, raw in parsed.options.items():
            arg = by_name.get(key)
            if arg is None:
                hint = difflib.get_close_matches(key, list(by_name), n=1)
                known = ", ".join(by_name) or "none"
                suggestion = f" (did you mean `{hint[0]}`?)" if hint else ""
                raise UsageError(f"unknown argument `{shown(key, 40)}`{suggestion}; arguments: {known}")
            if arg.name in values:
                raise UsageError(f"`{arg.name}` given twice")
            values[arg.name] = arg.convert(raw, settings)
        for arg in self.args:
            if arg.name in values:
                continue
            if arg.required:
                raise UsageError(f"missing required argument `{arg.name}`")
            values[arg.name] = arg.default
        return values


REGISTRY: dict[str, Command] = {}


def register(command: Command) -> Command:
    """Add ``command`` to the table. A name is registered once; a second registration is a bug."""
    existing = REGISTRY.get(command.name)
    if existing is not None and existing.handler is not command.handler:
        raise ValueError(f"command {command.name!r} is already registered")
    REGISTRY[command.name] = command
    return command


def command(
    name: str,
    summary: str,
    args: Sequence[Arg] = (),
    permission: str = "write",
    queue: str = "default",
    help: str = "",
    timeout: int | None = None,
    check: ArgsCheck | None = None,
    queue_for: Callable[[Settings], str] | None = None,
) -> Callable[[Handler], Handler]:
    """Decorator form of ``register``: ``@command("eval", "Measure pass@k", args=[...], queue="cpu")``."""

    def decorate(handler: Handler) -> Handler:
        register(
            Command(
                name=name,
                handler=handler,
                summary=summary,
                args=tuple(args),
                permission=permission,
                queue=queue,
                help=help or (handler.__doc__ or "").strip(),
                timeout=timeout,
                check=check,
                queue_for=queue_for,
            )
        )
        return handler

    return decorate


def get(name: str) -> Command | None:
    _load_all()
    return REGISTRY.get(name)


def nearest(name: str) -> str | None:
    """The registered command closest to ``name`` (a typo), or None when nothing is close."""
    _load_all()
    matches = difflib.get_close_matches(name, list(REGISTRY), n=1, cutoff=0.5)
    return matches[0] if matches else None


def commands() -> list[Command]:
    _load_all()
    return sorted(REGISTRY.values(), key=lambda c: c.name)


def _load_all() -> None:
    """Importing the package registers every command module."""
    import bot.commands  # noqa: F401
