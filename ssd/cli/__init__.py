"""The ``ssd`` command: one module per command group, each with ``register(subparsers)``.

The CLI package imports the rest of the project; nothing imports it (rq's ``rq/cli/`` pattern)."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from core.config import ConfigError

# Modules that add subcommands; each defines register(subparsers) and sets ``func`` on its parsers.
# A subcommand's func takes the parsed args and returns an exit code.
COMMAND_MODULES = [
    "ssd.cli.service",
    "ssd.cli.buffer",
    "ssd.cli.eval",
    "ssd.cli.audit",
    "ssd.cli.train",
    "ssd.cli.adapters",
    "ssd.cli.issues",
    "ssd.cli.gitea",
    "ssd.cli.loop",
]

# Commands timed as whole commands (bench/executor.py runs ``ssd score``): only their own module is imported,
# not every group's dependencies (SQLAlchemy, requests, werkzeug: ~0.4 s of start-up). A test checks that
# each module named here registers the command.
OWN_MODULE = {"score": "ssd.cli.eval", "eval": "ssd.cli.eval"}


def build_parser(modules: list[str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ssd", description="ssd-bot: measure code LLMs and improve them with SSD")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in modules or COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    command = (sys.argv[1:] if argv is None else argv)[:1]
    parser = build_parser([OWN_MODULE[command[0]]] if command and command[0] in OWN_MODULE else None)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"ssd: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
