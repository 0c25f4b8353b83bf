"""SSD sampling: the config-to-flags helper, presets, prompt sources, and ``pipeline.training.sample``."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

import pytest

from pipeline.training.options import add_dataclass_arguments, dataclass_from_args


@dataclass
class _Demo:
    model: str = field(metadata={"help": "model spec"})
    t_train: float | None = field(default=None, metadata={"help": "temperature, 100% honest"})
    limit: int | None = field(default=None, metadata={"help": "at most this many"})
    temperatures: list[float] = field(default_factory=lambda: [1.0, 1.1], metadata={"help": "grid"})
    chat_template: bool = field(default=False, metadata={"help": "wrap in the chat template"})
    mode: str = field(default="a", metadata={"help": "mode", "choices": ["a", "b"]})


def _parser(**kwargs) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="demo", exit_on_error=False)
    add_dataclass_arguments(parser, _Demo, **kwargs)
    return parser


def test_flags_round_trip_to_the_dataclass():
    args = _parser().parse_args(["--model", "m", "--t-train", "1.6", "--temperatures", "0.7,1.1",
                                 "--chat-template", "--limit", "none", "--mode", "b"])
    cfg = dataclass_from_args(_Demo, args)
    assert cfg == _Demo(model="m", t_train=1.6, limit=None, temperatures=[0.7, 1.1], chat_template=True, mode="b")


def test_defaults_help_and_overrides():
    parser = _parser()
    text = parser.format_help()
    assert "temperature, 100% honest (default: none)" in text
    assert "grid (default: 1.0,1.1)" in text
    assert "--no-chat-template" in text
    cfg = dataclass_from_args(_Demo, parser.parse_args(["--model", "m"]), limit=3)
    assert (cfg.t_train, cfg.limit, cfg.temperatures, cfg.chat_template) == (None, 3, [1.0, 1.1], False)


def test_bad_values_and_missing_required_are_refused():
    parser = _parser()
    with pytest.raises((argparse.ArgumentError, SystemExit)):
        parser.parse_args(["--model", "m", "--t-train", "hot"])
    with pytest.raises((argparse.ArgumentError, SystemExit)):
        parser.parse_args(["--model", "m", "--mode", "c"])
    with pytest.raises((argparse.ArgumentError, SystemExit)):
        parser.parse_args([])


def test_skip_and_prefix():
    parser = argparse.ArgumentParser()
    add_dataclass_arguments(parser, _Demo, skip=("mode",), prefix="s-")
    args = parser.parse_args(["--s-model", "m", "--s-limit", "4"])
    assert not hasattr(args, "mode") and not hasattr(args, "s_mode")
    cfg = dataclass_from_args(_Demo, args, prefix="s-")
    assert (cfg.model, cfg.limit, cfg.mode) == ("m", 4, "a")
