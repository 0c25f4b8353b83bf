"""``/ssd rollback [version]`` and the loop run ``/ssd train source=buffer`` starts (``bot.loop``).

Rollback serves the previously promoted adapter again (or the named earlier version, or ``base``) through
``SSD_SERVING``, verified by a smoke request, and only then moves the registry's pointer. It runs as a job
(a local model swap loads a model) and needs admin permission by default (``SSD_COMMAND_PERMISSIONS=rollback=…`` changes it).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from bot.commands.registry import Arg, CommandError, command
from core.markdown import md_table
from core.queues import CPU

if TYPE_CHECKING:
    from bot.commands.api import CommandContext

VERSION = re.compile(r"^(base|a-\d{8}-\d{6}-[0-9a-f]{6})$")


def version_arg(text: str) -> str:
    value = text.strip().strip("`")
    if not VERSION.match(value):
        raise ValueError("expected an adapter id such as a-20261203-091500-ab12cd, or base")
    return value


version_arg.metavar = "VERSION"  # type: ignore[attr-defined]


def _safe(text: str, ctx: CommandContext) -> str:
    return str(text).replace(str(ctx.settings.data_dir), "$SSD_DATA_DIR")


@command(
    "rollback",
    "Serve the previously promoted adapter again (or VERSION, or base), verified; then make it current.",
    args=[
        Arg(
            "version",
            type=version_arg,
            positional=True,
            help="an adapter promoted before the current one, or base; default: the previous one",
        )
    ],
    permission="admin",
    queue=CPU,
)
def rollback_command(ctx: CommandContext, args: dict[str, Any]) -> str:
    from bot.loop import rollback
    from core.loop_lock import LockHeld
    from pipeline.serving import ServingError
    from pipeline.training.adapters import RegistryError

    ctx.progress(0.1, "deploying the earlier version")
    try:
        result = rollback(ctx.settings, args.get("version"), conn=ctx.redis)
    except (RegistryError, ServingError, LockHeld) as exc:
        raise CommandError(_safe(f"rollback refused: {exc}", ctx)) from exc
    served = result["serving"]
    return "\n\n".join(
        [
            f"### /ssd rollback: `{result['promoted'] or 'base'}` is current again",
            md_table(
                ["", ""],
                [
                    ("was promoted", f"`{result['previous']}`"),
                    ("promoted now", f"`{result['promoted'] or 'none (base model)'}`"),
                    ("served", f"`{served['model']}` on `{served['target']}` (verified)"),
                    ("took", f"{result['seconds']:.1f} s"),
                ],
            ),
        ]
    )


def run_loop_from_command(ctx: CommandContext) -> str:
    """``/ssd train source=buffer``: one loop run now, as the nightly job does it; the report is the run's."""
    from bot.loop import loop_dir, run_once
    from pipeline.loop.run import RunStore, render_report

    result = run_once(ctx.settings, conn=ctx.redis, trigger=f"@{ctx.user}", progress=ctx.progress)
    record = next((r for r in RunStore(loop_dir(ctx.settings)).all() if r["run"] == result["run"]), None)
    if record is None:  # another run held the lock: nothing was recorded
        return f"### /ssd train source=buffer: not started\n\n{result['reason']}"
    return _safe(render_report(record), ctx)
