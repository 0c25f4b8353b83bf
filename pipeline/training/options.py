"""Command-line flags generated from config dataclasses, and back.

A config field carries its own help, trl's ``SFTConfig`` pattern::

    @dataclass
    class SampleConfig:
        t_train: float | None = field(default=None, metadata={"help": "sampling temperature"})

``add_dataclass_arguments(parser, SampleConfig)`` adds ``--t-train`` (type float, help from the metadata,
the default shown); ``dataclass_from_args(SampleConfig, args)`` builds the dataclass from the parsed flags,
so the dataclass stays the single place where a setting, its default and its meaning are written.

Supported field types: ``str``, ``int``, ``float``, ``bool`` (``--x`` / ``--no-x``), ``list[str|int|float]``
(comma-separated), each optionally ``| None`` (then the flag accepts ``none``). Optional metadata:
``help``, ``choices``, ``flag`` (another flag name), ``metavar``.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

T = TypeVar("T")

_SCALARS: dict[type, Callable[[str], Any]] = {str: str, int: int, float: float}


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    """``X | None`` -> (X, True); anything else -> (tp, False)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0], True
        raise TypeError(f"unsupported union type {tp!r}")
    return tp, False


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
    convert = _scalar_parser(item, False)

    def parse(text: str) -> Any:
        if optional and text.strip().lower() in ("none", "null"):
            return None
        return [convert(part.strip()) for part in text.split(",") if part.strip()]

    parse.__name__ = f"comma-separated {item.__name__} list"
    return parse


def _default_of(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def _show(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value) or "(empty)"
    return "none" if value is None else str(value)


def flag_name(f: dataclasses.Field, prefix: str = "") -> str:
    return "--" + prefix + f.metadata.get("flag", f.name).replace("_", "-")


def add_dataclass_arguments(parser: argparse.ArgumentParser | Any, cls: type, skip: Iterable[str] = (),
                            prefix: str = "") -> None:
    """Add one flag per field of the dataclass ``cls`` (except those named in ``skip``).

    ``prefix`` (e.g. ``"ft-"``) namespaces the flags and their ``dest`` when two configs with shared field
    names go on one parser; pass the same prefix to ``dataclass_from_args``. A field without a default
    becomes a required flag.
    """
    hints = typing.get_type_hints(cls)
    skip = set(skip)
    for f in dataclasses.fields(cls):
        if f.name in skip or not f.init:
            continue
        tp, optional = _unwrap_optional(hints[f.name])
        default = _default_of(f)
        required = default is dataclasses.MISSING
        help_text = f.metadata.get("help", "")
        kwargs: dict[str, Any] = {"dest": _dest(f.name, prefix)}
        if tp is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(tp) is list:
            (item,) = typing.get_args(tp)
            kwargs["type"] = _list_parser(item, optional)
            kwargs["metavar"] = f.metadata.get("metavar", f"{item.__name__.upper()}[,...]")
        else:
            kwargs["type"] = _scalar_parser(tp, optional)
            if "choices" in f.metadata:
                kwargs["choices"] = list(f.metadata["choices"])
            if "metavar" in f.metadata:
                kwargs["metavar"] = f.metadata["metavar"]
        if required:
            kwargs["required"] = True
        else:
            kwargs["default"] = default
            help_text = f"{help_text} (default: {_show(default)})".strip()
        kwargs["help"] = help_text.replace("%", "%%")  # argparse formats help with %
        parser.add_argument(flag_name(f, prefix), **kwargs)


def _dest(name: str, prefix: str) -> str:
    return (prefix.replace("-", "_") + name) if prefix else name


def dataclass_from_args(cls: type[T], args: argparse.Namespace, prefix: str = "", **overrides: Any) -> T:
    """Build ``cls`` from the flags ``add_dataclass_arguments`` added (fields without a flag keep their
    defaults); ``overrides`` win over the flags."""
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        dest = _dest(f.name, prefix)
        if hasattr(args, dest):
            values[f.name] = getattr(args, dest)
    values.update(overrides)
    return cls(**values)


def field_help(cls: type) -> dict[str, str]:
    """Field name -> help text, for documentation and the bot's usage lines."""
    return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(cls)}
