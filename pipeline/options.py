"""Command-line flags generated from config dataclasses, and back.

A config field carries its own help, trl's ``SFTConfig`` pattern::

    @dataclass
    class SampleConfig:
        t_train: float | None = field(default=None, metadata={"help": "sampling temperature"})

``add_dataclass_arguments(parser, SampleConfig)`` adds ``--t-train`` (type float, help from the metadata,
the default shown); ``dataclass_from_args(SampleConfig, args)`` builds the dataclass from the parsed flags,
and ``to_args(cfg, names)`` writes the flags that rebuild ``cfg`` (a reproducible command line), so the
dataclass stays the single place where a setting, its default and its meaning are written.

Supported field types: ``str``, ``int``, ``float``, ``bool`` (``--x`` / ``--no-x``), ``list[str|int|float]``
(comma-separated), each optionally ``| None`` (then the flag accepts ``none``). Optional metadata:
``help``; ``choices``; ``flag`` (another flag name, which is also the ``argparse`` dest); ``aliases`` (more
option strings, e.g. ``("-t",)``); ``metavar``; ``default_help`` (shown instead of the default value, for a
default that is decided later, e.g. "cores"); ``check`` (a function that raises ``ValueError`` for a value
out of bounds: argparse reports it as a usage error); ``cli: False`` (no flag: set by the program).
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")

_SCALARS: dict[type, Callable[[str], Any]] = {str: str, int: int, float: float}
_LIST_NOUNS: dict[type, str] = {str: "values", int: "whole numbers", float: "numbers"}


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    """``X | None`` -> (X, True); anything else -> (tp, False)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0], True
        raise TypeError(f"unsupported union type {tp!r}")
    return tp, False


def _checked(parse: Callable[[str], Any], check: Callable[[Any], None] | None) -> Callable[[str], Any]:
    """``parse``, then the field's bounds check; a ValueError from the check is a usage error."""
    if check is None:
        return parse

    def parse_and_check(text: str) -> Any:
        value = parse(text)
        if value is not None:
            try:
                check(value)
            except ValueError as exc:
                raise argparse.ArgumentTypeError(str(exc)) from None
        return value

    parse_and_check.__name__ = parse.__name__
    return parse_and_check


def _scalar_parser(tp: Any, optional: bool) -> Callable[[str], Any]:
    if tp not in _SCALARS:
        raise TypeError(f"unsupported field type {tp!r}")
    convert = _SCALARS[tp]
    name = tp.__name__

    def parse(text: str) -> Any:
        if optional and text.strip().lower() in ("none", "null", ""):
            return None
        try:
            return convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {name}, got {text!r}") from None

    parse.__name__ = name  # argparse names the type in its error messages
    return parse


def _list_parser(item: Any, optional: bool) -> Callable[[str], Any]:
    convert = _SCALARS.get(item)
    if convert is None:
        raise TypeError(f"unsupported list item type {item!r}")

    def parse(text: str) -> Any:
        if optional and text.strip().lower() in ("none", "null"):
            return None
        try:
            return [convert(part.strip()) for part in text.split(",") if part.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated {_LIST_NOUNS[item]}, got {text!r}") from None

    parse.__name__ = f"comma-separated {item.__name__} list"
    return parse


def _default_of(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def default_of(cls: type, name: str) -> Any:
    """The default of field ``name`` of the dataclass ``cls`` (a fresh copy for a ``default_factory``)."""
    return _default_of(cls.__dataclass_fields__[name])


def _show(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value) or "(empty)"
    return "none" if value is None else str(value)


def flag_name(f: dataclasses.Field, prefix: str = "") -> str:
    return "--" + prefix + f.metadata.get("flag", f.name).replace("_", "-")


def _dest(f: dataclasses.Field, prefix: str) -> str:
    """The argparse dest: the flag's name (``--threads`` -> ``threads``), so code that reads the parsed
    arguments sees the names people type."""
    return (prefix + f.metadata.get("flag", f.name)).replace("-", "_")


def _selected(cls: type, skip: Iterable[str], only: Iterable[str] | None) -> list[dataclasses.Field]:
    skip, wanted = set(skip), None if only is None else set(only)
    fields = dataclasses.fields(cls)
    unknown = (wanted or set()) - {f.name for f in fields}
    if unknown:
        raise ValueError(f"{cls.__name__} has no fields {sorted(unknown)}")
    return [
        f
        for f in fields
        if f.init and f.name not in skip and (wanted is None or f.name in wanted) and f.metadata.get("cli", True)
    ]


def add_dataclass_arguments(
    parser: argparse.ArgumentParser | Any,
    cls: type,
    skip: Iterable[str] = (),
    prefix: str = "",
    only: Iterable[str] | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> None:
    """Add one flag per field of the dataclass ``cls`` (except those named in ``skip``, those outside
    ``only`` when it is given, and those marked ``cli: False``), in declaration order.

    ``prefix`` (e.g. ``"ft-"``) namespaces the flags and their ``dest`` when two configs with shared field
    names go on one parser; pass the same prefix to ``dataclass_from_args``. ``defaults`` replaces the
    dataclass's defaults for this parser (a command that uses the config for a narrower job). A field
    without a default becomes a required flag.
    """
    hints = typing.get_type_hints(cls)
    defaults = defaults or {}
    for f in _selected(cls, skip, only):
        tp, optional = _unwrap_optional(hints[f.name])
        default = defaults.get(f.name, _default_of(f))
        required = default is dataclasses.MISSING
        help_text = f.metadata.get("help", "")
        kwargs: dict[str, Any] = {"dest": _dest(f, prefix)}
        if tp is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(tp) is list:
            (item,) = typing.get_args(tp)
            kwargs["type"] = _checked(_list_parser(item, optional), f.metadata.get("check"))
            kwargs["metavar"] = f.metadata.get("metavar", f"{item.__name__.upper()}[,...]")
        else:
            kwargs["type"] = _checked(_scalar_parser(tp, optional), f.metadata.get("check"))
            if "choices" in f.metadata:
                kwargs["choices"] = list(f.metadata["choices"])
            if "metavar" in f.metadata:
                kwargs["metavar"] = f.metadata["metavar"]
        if required:
            kwargs["required"] = True
        else:
            kwargs["default"] = default
            shown = f.metadata.get("default_help") if default is None else None
            help_text = f"{help_text} (default: {shown or _show(default)})".strip()
        kwargs["help"] = help_text.replace("%", "%%")  # argparse formats help with %
        parser.add_argument(flag_name(f, prefix), *f.metadata.get("aliases", ()), **kwargs)


def dataclass_from_args(
    cls: type[T], args: argparse.Namespace, prefix: str = "", only: Iterable[str] | None = None, **overrides: Any
) -> T:
    """Build ``cls`` from the flags ``add_dataclass_arguments`` added (fields without a flag keep their
    defaults; with ``only``, so do the fields outside it); ``overrides`` win over the flags."""
    values: dict[str, Any] = {}
    for f in _selected(cls, (), only):
        dest = _dest(f, prefix)
        if hasattr(args, dest):
            values[f.name] = getattr(args, dest)
    values.update(overrides)
    return cls(**values)


def format_value(value: Any) -> str:
    """A value as its flag takes it: lists comma-joined, floats as short as they stay exact (0.7, 1e-05)."""
    if isinstance(value, list | tuple):
        return ",".join(format_value(item) for item in value)
    if isinstance(value, float):
        short = f"{value:g}"
        return short if float(short) == value else repr(value)
    return "none" if value is None else str(value)


def to_args(
    cfg: Any,
    names: Iterable[str],
    always: Collection[str] = (),
    defaults: Mapping[str, Any] | None = None,
    prefix: str = "",
) -> list[str]:
    """The flags that make ``add_dataclass_arguments``' parser rebuild the named fields of ``cfg``: one per
    field in ``always`` or whose value differs from its default (``defaults`` as for that parser), in the
    order of ``names``. Booleans are ``--x`` / ``--no-x``."""
    by_name = {f.name: f for f in dataclasses.fields(cfg)}
    defaults = defaults or {}
    argv: list[str] = []
    for name in names:
        f = by_name[name]
        value = getattr(cfg, name)
        if name not in always and value == defaults.get(name, _default_of(f)):
            continue
        flag = flag_name(f, prefix)
        if isinstance(value, bool):
            argv.append(flag if value else "--no-" + flag[2:])
            continue
        text = format_value(value)
        # "--x=-1": a value that starts with "-" would otherwise read as a flag
        argv += [f"{flag}={text}"] if text.startswith("-") else [flag, text]
    return argv


def field_help(cls: type) -> dict[str, str]:
    """Field name -> help text, for documentation and the bot's usage lines."""
    return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(cls)}
