"""``ssd audit``: the temperature audit of a local directory, optionally with the measured T_eval grid."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pipeline.audit import AuditResult, Limits, audit_path
from pipeline.audit.measure import MEASURE_DEFAULTS, MEASURE_FIELDS, check_grid
from pipeline.audit.report import render_markdown, render_text
from pipeline.evaluate import EvalConfig
from pipeline.options import add_dataclass_arguments, dataclass_from_args

# The measure flags: the audit's eval settings, and where the model runs (not part of its reproducing command).
MEASURE_FLAGS = (*MEASURE_FIELDS, "backend", "base_url", "n_threads")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _grid(text: str) -> list[str]:
    try:
        return check_grid(text.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "audit",
        help="find every sampling setting in a repo; optionally measure which T_eval wins",
        description="Static audit of temperature/top_p/top_k/min_p/repeat_penalty/seed/num_ctx/max_tokens in "
        "YAML, JSON, TOML, INI, .env, Python, Modelfiles, command lines and Markdown run "
        "instructions (reported as documentation); --measure adds a "
        "paired pass@1 grid over temperatures on the embedded model.",
    )
    p.add_argument("--path", default=".", metavar="DIR", help="directory to audit (default: .)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print the result as JSON")
    out.add_argument("--markdown", action="store_true", help="print the Markdown report the bot posts")
    p.add_argument("--max-files", type=_positive, default=Limits.max_files, help="files read at most")
    p.add_argument("--max-file-bytes", type=_positive, default=Limits.max_file_bytes, help="larger files are skipped")
    p.add_argument("--max-bytes", type=_positive, default=Limits.max_total_bytes, help="bytes read in all")
    p.add_argument("--max-depth", type=_positive, default=Limits.max_depth, help="directory levels")
    m = p.add_argument_group("measured T_eval grid (--measure)")
    m.add_argument("--measure", action="store_true", help="evaluate pass@1 at each candidate temperature")
    add_dataclass_arguments(m, EvalConfig, only=MEASURE_FLAGS, defaults=MEASURE_DEFAULTS)  # as for `ssd eval`
    m.add_argument(
        "--t",
        type=_grid,
        metavar="current,T,...",
        help="temperatures; default: current + found + 0.3,0.7,1.0 + the paper's T_eval",
    )
    m.add_argument("--plot", metavar="FILE.png", help="write the pass@1-vs-temperature plot here")
    m.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_audit)


def cmd_audit(args: argparse.Namespace) -> int:
    root = Path(args.path)
    if not root.is_dir():
        print(f"ssd audit: error: not a directory: {args.path}", file=sys.stderr)
        return 1
    limits = Limits(
        max_files=args.max_files,
        max_file_bytes=args.max_file_bytes,
        max_total_bytes=args.max_bytes,
        max_depth=args.max_depth,
    )
    result = audit_path(str(root), limits)
    plot_note = ""
    if args.measure:
        code = _measure(result, args)
        if code:
            return code
        if args.plot and result.measured:
            from pipeline.audit.measure import plot_png

            Path(args.plot).write_bytes(plot_png(result.measured))
            plot_note = args.plot
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, default=str))
    elif args.markdown:
        from pipeline.audit.measure import measured_markdown

        measured = measured_markdown(result.measured, plot_note or None) if result.measured else None
        print(render_markdown(result, measured_md=measured))
    else:
        print(render_text(result))
        if result.measured:
            from pipeline.audit.measure import measured_text

            print(measured_text(result.measured))
            if plot_note:
                print(f"Plot: {plot_note}")
    return 0


def _measure(result: AuditResult, args: argparse.Namespace) -> int:
    from core.config import unsafe_execution_from_env
    from pipeline.audit.measure import measure, measure_command
    from pipeline.backends import BackendError
    from pipeline.executor import UnsafeExecutionError
    from pipeline.suites import SuiteError
    from ssd.cli.eval import ProgressBar

    try:
        base = dataclass_from_args(EvalConfig, args, only=MEASURE_FLAGS, unsafe_execution=unsafe_execution_from_env())
        result.measured = measure(result, base, args.t, progress=None if args.quiet else ProgressBar())
    except (BackendError, SuiteError, UnsafeExecutionError, ValueError) as exc:
        print(f"ssd audit: error: {exc}", file=sys.stderr)
        return 1
    result.measured["command"] = measure_command(args.path, EvalConfig(**result.measured["config"]))
    return 0
