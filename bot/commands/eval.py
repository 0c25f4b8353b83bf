"""``/ssd eval``: run ``pipeline.evaluate.run_eval`` as a job on the ``cpu`` queue and report it.

What a commenter may point the bot at is narrower than the CLI: a model alias, a file or directory
under ``$SSD_DATA_DIR/models/``, or ``openai:NAME`` on the server configured in
``SSD_OPENAI_BASE_URL``; suites are the built-ins or files under ``$SSD_DATA_DIR/suites/``. Anyone
with write access can comment, and free-form paths or URLs would let them make the worker read any
file or call any host. Every argument is bounded (``SSD_MAX_N``, ``SSD_MAX_LIMIT``, ``SSD_MAX_TOKENS``,
finite temperatures in [0, 2], seeds >= 0), and the model, suite and adapter are resolved before the job is
enqueued (``check_eval_args``), so a bad line is answered at once with a usage error.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.commands.api import CommandContext
from bot.commands.registry import (
    Arg,
    CommandError,
    boolean,
    command,
    positive_int,
    probability,
    seed,
    temperatures,
    top_k,
)
from bot.reports import footer
from core.markdown import code_block, details, md_table
from pipeline.eval_config import EvalConfig
from pipeline.options import default_of

if TYPE_CHECKING:
    from core.config import Settings

MIN_TIMEOUT_S, MAX_TIMEOUT_S = 0.5, 30.0  # /ssd eval timeout=: a shared worker is not held longer per test


def eval_arg(name: str, type: Callable[[str], Any] = str, cap: str | None = None, **overrides: Any) -> Arg:
    """The comment argument for the ``EvalConfig`` field ``name``. Its comment name, default, help and
    choices come from the declaration; the validator and the server cap are the bot's, because what a
    comment may ask of a shared worker is narrower than what the CLI takes. ``overrides`` (help, default)
    are for a field whose meaning in a comment differs: a file under the data dir, a narrower bound."""
    f = EvalConfig.__dataclass_fields__[name]
    if "arg" not in f.metadata:
        raise ValueError(f"EvalConfig.{name} cannot be set from a comment")
    default = overrides.pop("default", default_of(EvalConfig, name))
    help_text = overrides.pop("help", None)
    if help_text is None:
        later = f.metadata.get("default_help") if default is None else None
        help_text = "; ".join(part for part in (f.metadata.get("help"), later and f"default: {later}") if part)
    return Arg(
        f.metadata["arg"],
        type=type,
        default=default,
        help=help_text,
        choices=f.metadata.get("choices"),
        cap=cap,
        **overrides,
    )


def config_values(args: dict[str, Any]) -> dict[str, Any]:
    """``EvalConfig`` field -> value, for each field a comment's arguments set (validated ``args``); lists
    are copied, so a config never shares an argument's default."""
    return {
        f.name: _copy(args[f.metadata["arg"]]) for f in dataclasses.fields(EvalConfig) if f.metadata.get("arg") in args
    }


def _copy(value: Any) -> Any:
    return list(value) if isinstance(value, list) else value


def _inside(base: Path, name: str, what: str, data_dir: Path) -> str:
    """``base/name`` when it exists inside ``base``. Refusals name the place as ``$SSD_DATA_DIR/…``, never as
    the server's absolute path."""
    shown_base = "$SSD_DATA_DIR/" + base.relative_to(data_dir).as_posix()
    try:
        path = (base / name).resolve()
    except (OSError, ValueError):
        raise CommandError(f"`{what}={name}` is not a usable file name") from None
    if not path.is_relative_to(base.resolve()):
        raise CommandError(f"`{what}={name}` must name something inside {shown_base}")
    if not path.exists():
        raise CommandError(f"`{what}={name}`: no such file or directory under {shown_base}")
    return str(path)


def resolve_model(settings: Settings, model: str | None) -> tuple[str, str | None]:
    """(model spec, base_url) a comment may use; raises CommandError otherwise."""
    from pipeline.backends import MODELS

    model = model or settings.default_model
    if model.startswith("openai:"):
        if not settings.openai_base_url:
            raise CommandError("`model=openai:…` needs a server: the admin sets SSD_OPENAI_BASE_URL")
        return model, settings.openai_base_url
    if model in MODELS:
        return model, None
    return _inside(settings.data_dir / "models", model, "model", settings.data_dir), None


def resolve_suite(settings: Settings, suite: str) -> str:
    from pipeline.suites import list_suites

    if suite in list_suites():
        return suite
    return _inside(settings.data_dir / "suites", suite, "suite", settings.data_dir)


def resolve_adapter(settings: Settings, adapter: str | None) -> str | None:
    return _inside(settings.data_dir / "adapters", adapter, "adapter", settings.data_dir) if adapter else None


def check_eval_args(settings: Settings, args: dict[str, Any]) -> None:
    """What the handler will need, checked before enqueueing: the model, suite and adapter resolve."""
    resolve_model(settings, args.get("model"))
    if args["suite"] != ISSUES_SUITE:  # built from the repository when the job runs
        resolve_suite(settings, args["suite"])
    resolve_adapter(settings, args.get("adapter"))


ISSUES_SUITE = "issues"


def issues_suite(ctx: CommandContext, since: str | None, limit: int | None, rebuild: bool) -> tuple[str, str]:
    """(instance file, Markdown note) for ``suite=issues``: the comment's repository's solved issues, built
    once per (since, limit) under ``$SSD_DATA_DIR/suites/issues/`` and reused until ``rebuild=yes``."""
    from bot.repo_source import build_repo_suite
    from pipeline.repo_suite.build import format_build_report
    from pipeline.repo_suite.instances import write_instances

    if since and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", since):
        raise CommandError(f"`since={since}` must be a date, YYYY-MM-DD")
    settings = ctx.settings
    repo = f"{ctx.owner}/{ctx.repo}"
    directory = settings.data_dir / "suites" / ISSUES_SUITE
    from pipeline.repo_suite.workspace import repo_key

    path = directory / f"{repo_key(repo)}-since-{since or 'all'}-limit-{limit or 'all'}.jsonl"
    report_path = path.with_suffix(".report.json")
    if path.is_file() and report_path.is_file() and not rebuild:
        report = json.loads(report_path.read_text())
        note = f"Reused the suite built before: {_counts_line(report['counts'])} (`rebuild=yes` builds it again)."
        return str(path), note

    def progress(fraction: float, message: str) -> None:
        ctx.progress(0.5 * fraction, f"building the issues suite: {message}")

    built = build_repo_suite(ctx.gitea, repo, settings, since=since, limit=limit, progress=progress)
    if not built.instances:
        raise CommandError(
            f"no solved issue of {repo} passed validation ({_counts_line(built.counts())}); "
            "an instance needs a merged PR whose tests fail before it and pass after it"
        )
    directory.mkdir(parents=True, exist_ok=True)
    write_instances(path, built.instances)
    report_path.write_text(json.dumps(built.to_dict(), indent=2) + "\n")
    note = f"Built the suite: {_counts_line(built.counts())}.\n\n" + details(
        "Build report", code_block(format_build_report(built))
    )
    return str(path), note


def _counts_line(counts: dict[str, int]) -> str:
    dropped = ", ".join(f"{reason} {n}" for reason, n in counts.items() if reason != "kept")
    return f"{counts.get('kept', 0)} kept" + (f", dropped: {dropped}" if dropped else "")


def render_report(data: dict[str, Any], plot_url: str | None, title: str) -> str:
    """The Markdown report of ``EvalResult.to_dict()``: table, paired deltas, plot, footer."""
    from pipeline.evaluate import report_rows

    headers, rows, paired = report_rows(data)
    parts = [
        f"### {title}",
        f"`{data['model']}` ({data['backend']}) on `{data['suite']}` · {data['wall_s']:.0f} s · "
        "pass@k with bootstrap 95% CI over problems",
        md_table(headers, rows, align=["l", "l", "r", "r", "r", *["r"] * (len(headers) - 6), "r"]),
    ]
    if paired:
        parts.append("\n".join(f"- {line.removeprefix('paired: ')}" for line in paired))
    if plot_url:
        parts.append(f"![pass@1 vs temperature]({plot_url})")
    verdict_rows = [
        (c["label"], ", ".join(f"{v}: {n}" for v, n in sorted(c["verdicts"].items()))) for c in data["conditions"]
    ]
    parts.append(details("Verdicts", md_table(["condition", "verdicts"], verdict_rows)))
    overlap = data["provenance"].get("training_overlap")
    if overlap:
        parts.insert(
            2,
            f"⚠️ The adapter was trained on the PRs of {len(overlap)} of these instances "
            f"({', '.join(f'`{i}`' for i in overlap[:10])}): their results are not held out.",
        )
    if data["provenance"].get("retrieval"):
        parts.insert(
            2, f"Repository suite: resolved rate (pass@k = resolved); retrieval: {data['provenance']['retrieval']}."
        )
    parts.append(footer(data["provenance"]))
    return "\n\n".join(parts)


@command(
    "eval",
    "Measure pass@k of a model on a suite (table, plot, reproducibility footer)",
    args=[
        eval_arg("model", default=None, help="alias (smollm2), a file/dir under $SSD_DATA_DIR/models, or openai:NAME"),
        eval_arg(
            "suite",
            help="humaneval, basic, issues (this repository's solved issues), or a file under $SSD_DATA_DIR/suites",
        ),
        Arg("since", help="suite=issues: PRs merged on or after YYYY-MM-DD"),
        Arg("rebuild", type=boolean, default=False, help="suite=issues: build the suite again"),
        eval_arg("retrieval", help="suite=issues: the gold patch's files (an upper bound) or BM25's top files"),
        eval_arg("temperatures", type=temperatures),
        eval_arg("n", type=positive_int, cap="max_n"),
        eval_arg(
            "limit",
            type=positive_int,
            cap="max_limit",
            help="first N problems (suite=issues: the N most recent merged PRs)",
        ),
        eval_arg("seed", type=seed),
        eval_arg("top_p", type=probability),
        eval_arg("top_k", type=top_k),
        eval_arg("min_p", type=probability),
        eval_arg("max_tokens", type=positive_int, cap="max_tokens"),
        eval_arg("backend"),
        eval_arg("adapter", help="a PEFT or LoRA-GGUF adapter under $SSD_DATA_DIR/adapters"),
        eval_arg("gold", type=boolean),
        eval_arg("timeout_s", type=float, help=f"per-test wall limit in seconds ({MIN_TIMEOUT_S:g}-{MAX_TIMEOUT_S:g})"),
    ],
    permission="write",
    queue="cpu",
    check=check_eval_args,
)
def eval_command(ctx: CommandContext, args: dict[str, Any]) -> str:
    """Sample the model on the suite, execute every sample in the sandbox and report pass@k per temperature."""
    from pipeline.evaluate import run_eval
    from pipeline.plots import pass_vs_temperature_png

    settings = ctx.settings
    model, base_url = resolve_model(settings, args.get("model"))
    adapter = resolve_adapter(settings, args.get("adapter"))
    if any(t < 0 for t in args["t"]):
        raise CommandError("temperatures must be >= 0")
    timeout = args.get("timeout")
    if timeout is not None and not MIN_TIMEOUT_S <= timeout <= MAX_TIMEOUT_S:
        raise CommandError(f"timeout must be between {MIN_TIMEOUT_S:g} and {MAX_TIMEOUT_S:g} seconds")
    note = ""
    progress = ctx.progress
    if args["suite"] == ISSUES_SUITE:
        from pipeline.executor import UnsafeExecutionError

        try:  # building runs the repository's tests in the sandbox, which may refuse
            suite, note = issues_suite(ctx, args.get("since"), args.get("limit"), args["rebuild"])
        except UnsafeExecutionError as exc:
            raise CommandError(str(exc)) from exc
        limit = None  # it chose which PRs to build

        def progress(fraction: float, message: str) -> None:
            ctx.progress(0.5 + 0.5 * fraction, message)
    else:
        suite, limit = resolve_suite(settings, args["suite"]), args.get("limit")
    cfg = EvalConfig(
        **{
            **config_values(args),
            # resolved here, never taken as written: the model, suite and adapter live under the data dir
            "suite": suite,
            "model": model,
            "base_url": base_url,
            "adapter": adapter,
            "limit": limit,
            "cache_dir": str(settings.data_dir / "cache" / "verdicts"),
            "repo_cache_dir": str(settings.repo_cache_dir),
            "unsafe_execution": settings.unsafe_execution,
        }
    )
    from pipeline.backends import BackendError
    from pipeline.executor import UnsafeExecutionError
    from pipeline.repo_suite.workspace import CheckoutError
    from pipeline.suites import SuiteError

    try:
        result = run_eval(cfg, progress=progress)
    except (
        BackendError,
        SuiteError,
        CheckoutError,
        UnsafeExecutionError,
    ) as exc:  # cannot be loaded or run safely: say so, no traceback
        raise CommandError(str(exc)) from exc
    data = result.to_dict()
    plot_url = None
    if not cfg.gold:
        png = pass_vs_temperature_png(data)
        plot_url = ctx.attach(f"eval-{data['suite']}-pass-vs-temperature.png", png, "image/png")
    report = render_report(data, plot_url, title=f"/ssd eval: {'gold solutions' if cfg.gold else data['model']}")
    return report + ("\n\n" + note if note else "")
