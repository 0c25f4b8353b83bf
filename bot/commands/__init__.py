"""Slash commands. Importing this package registers every command module in the registry.

``api`` is what a handler is written against; ``registry`` is the table; each other module registers its
commands on import. A module that fails to import takes the bot down loudly: it is a bug, not an option.
"""

from bot.commands import audit, builtin, eval, loop, train  # noqa: F401  (registration on import)
