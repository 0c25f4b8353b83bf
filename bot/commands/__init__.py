"""Slash commands. Importing this package registers every command module in the registry."""

from __future__ import annotations

import importlib

# Each module registers its commands on import. Later issues add theirs here (train, rollback, …).
COMMAND_MODULES = [
    "bot.commands.builtin",
    "bot.commands.eval",
    "bot.commands.audit",
    "bot.commands.train",
    "bot.commands.loop",
]

for _name in COMMAND_MODULES:
    try:
        importlib.import_module(_name)
    except ModuleNotFoundError as _exc:
        # A command module not written yet (or an extra not installed for it) must not take the bot down;
        # any other import error is a bug and propagates.
        if _exc.name != _name:
            raise
