"""``/ssd audit``: the temperature audit of the repository the comment is on, as one report comment.

Static part: the repo's tree at ``ref`` (default branch by default) read through the Gitea API and scanned
by ``pipeline.audit``. With ``measure=yes`` the T_eval grid is evaluated on the embedded (or an allowed)
model, which is why the command runs on the ``cpu`` queue. Models and suites are resolved exactly as for
``/ssd eval`` (aliases and files under the data dir only).
"""

from __future__ import annotations

import shlex
from typing import Any

from bot.commands.api import CommandContext
from bot.commands.eval import eval_arg
from bot.commands.registry import (
    Arg,
    CommandError,
    boolean,
    command,
    positive_int,
    seed,
    shown,
    str_list,
    temperatures,
)
from bot.reports import footer
from core.markdown import truncate_for_comment
from pipeline.audit.measure import MEASURE_DEFAULTS, check_grid
from pipeline.options import format_value


def _grid(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    try:
        grid = check_grid(values)
        numbers = [item for item in grid if item.lower() != "current"]
        if numbers:
            temperatures(",".join(numbers))  # finite, in [0, 2], not too many
    except ValueError as exc:
        raise CommandError(f"`t={shown(','.join(values))}`: {exc}") from None
    return grid


def check_audit_args(settings: Any, args: dict[str, Any]) -> None:
    """Checked before enqueueing: the grid, and for measure=yes the model and suite."""
    from bot.commands.eval import resolve_model, resolve_suite

    _grid(args.get("t"))
    if args["measure"]:
        resolve_model(settings, args.get("model"))
        resolve_suite(settings, args["suite"])


@command(
    "audit",
    "Find every sampling setting in this repo and flag risky ones; measure=yes also measures which T_eval wins",
    args=[
        Arg("ref", help="branch, tag or commit to audit (default: the default branch)"),
        Arg("measure", type=boolean, default=False, help="evaluate pass@1 at each candidate temperature"),
        eval_arg(
            "model", default=None, help="for measure=yes: alias (smollm2) or a file/dir under $SSD_DATA_DIR/models"
        ),
        eval_arg(
            "suite",
            default=MEASURE_DEFAULTS["suite"],
            help="for measure=yes: held-out suite (issues: this repository's solved issues)",
        ),
        Arg("t", type=str_list, help="temperatures, e.g. current,0.3,0.7 (default: current + found + 0.3,0.7,1.0)"),
        eval_arg(
            "n",
            type=positive_int,
            default=MEASURE_DEFAULTS["n"],
            help="samples per problem and temperature",
            cap="max_n",
        ),
        eval_arg("limit", type=positive_int, default=MEASURE_DEFAULTS["limit"], cap="max_limit"),
        eval_arg("seed", type=seed),
        eval_arg("max_tokens", type=positive_int, cap="max_tokens"),
    ],
    permission="write",
    queue="cpu",
    check=check_audit_args,
)
def audit_command(ctx: CommandContext, args: dict[str, Any]) -> str:
    """Scan the repo for temperature/top_p/top_k/min_p/repeat_penalty/seed/num_ctx/max_tokens settings, flag
    T_eval == T_train, greedy retries, extreme values, inconsistent models and undefined env vars."""
    from bot.audit_source import GiteaTree
    from bot.gitea import GiteaNotFound
    from pipeline.audit import audit_files
    from pipeline.audit.report import render_markdown
    from pipeline.audit.sources import Limits, ScanStats

    settings = ctx.settings
    grid = _grid(args.get("t"))
    try:
        tree = GiteaTree(ctx.gitea, ctx.owner, ctx.repo, args.get("ref"))
    except GiteaNotFound as exc:
        raise CommandError(
            f"cannot read `{ctx.owner}/{ctx.repo}` at `{args.get('ref') or 'the default branch'}`: {exc}"
        ) from exc
    limits = Limits(max_files=settings.audit_max_files, max_total_bytes=settings.audit_max_bytes)
    stats = ScanStats()
    share = 0.1 if args["measure"] else 1.0
    result = audit_files(tree.files(limits, stats, lambda f, m: ctx.progress(f * share, m)), stats, tree.source)
    measured_md = None
    invocation = ["/ssd", "audit"] + ([f"ref={args['ref']}"] if args.get("ref") else [])
    if args["measure"]:
        measured_md = _measure(ctx, args, result, grid)
        invocation += [
            "measure=yes",
            f"model={result.measured['config']['model']}",
            f"suite={args['suite']}",
            "t=" + format_value(result.measured["config"]["temperatures"]),
            f"n={args['n']}",
            f"limit={args['limit']}",
            f"seed={args['seed']}",
        ]
    provenance = {
        "repo": tree.source["repo"],
        "ref": tree.ref,
        "files_read": stats.read,
        "bytes_read": stats.bytes_read,
        "limits": {
            "max_files": limits.max_files,
            "max_total_bytes": limits.max_total_bytes,
            "max_file_bytes": limits.max_file_bytes,
        },
        "command": shlex.join(invocation),
    }
    if result.measured:  # the eval's own record (model sha256, suite, versions), and the same run from a shell
        from pipeline.audit.measure import measure_command
        from pipeline.evaluate import EvalConfig

        provenance.update({k: v for k, v in result.measured["eval"]["provenance"].items() if k != "command"})
        checkout = f"CHECKOUT-OF-{tree.source['repo'].replace('/', '-')}-AT-{tree.ref}"
        provenance["cli"] = measure_command(checkout, EvalConfig(**result.measured["config"]))
    body = render_markdown(
        result,
        link=tree.link,
        measured_md=measured_md,
        footer_md=footer(provenance),
        title=f"/ssd audit: {tree.source['repo']} at {tree.ref}",
    )
    return truncate_for_comment(body)


def _measure(ctx: CommandContext, args: dict[str, Any], result: Any, grid: list[str] | None) -> str:
    from bot.commands.eval import ISSUES_SUITE, issues_suite, resolve_model, resolve_suite
    from pipeline.audit.measure import measure, measured_markdown, plot_png
    from pipeline.backends import BackendError
    from pipeline.evaluate import EvalConfig
    from pipeline.executor import UnsafeExecutionError
    from pipeline.suites import SuiteError

    model, base_url = resolve_model(ctx.settings, args.get("model"))
    suite, limit = None, args["limit"]
    if args["suite"] == ISSUES_SUITE:  # this repository's solved issues; limit = the N most recent merged PRs
        suite, _ = issues_suite(ctx, None, args["limit"], False)
        limit = None
    try:
        base = EvalConfig(
            model=model,
            suite=suite or resolve_suite(ctx.settings, args["suite"]),
            n=args["n"],
            limit=limit,
            seed=args["seed"],
            max_tokens=args["max_tokens"],
            base_url=base_url,
            repo_cache_dir=str(ctx.settings.repo_cache_dir),
            unsafe_execution=ctx.settings.unsafe_execution,
        )
        result.measured = measure(result, base, grid, progress=lambda f, m: ctx.progress(0.1 + 0.9 * f, m))
    except (BackendError, SuiteError, UnsafeExecutionError, ValueError) as exc:
        raise CommandError(str(exc)) from exc
    url = ctx.attach("audit-pass-vs-temperature.png", plot_png(result.measured), "image/png")
    sandbox = result.measured["eval"]["provenance"].get("sandbox")  # the isolation the measured samples had
    return measured_markdown(result.measured, url) + (f"\n\n_{sandbox}_" if sandbox else "")
