"""``/ssd eval``: run ``pipeline.evaluate.run_eval`` as a job on the ``cpu`` queue and report it.

What a commenter may point the bot at is narrower than the CLI: a model alias, a file or directory
under ``$SSD_DATA_DIR/models/``, or ``openai:NAME`` on the server configured in
``SSD_OPENAI_BASE_URL``; suites are the built-ins or files under ``$SSD_DATA_DIR/suites/``. Anyone
with write access can comment, and free-form paths or URLs would let them make the worker read any
file or call any host.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.commands.registry import Arg, CommandError, boolean, command, float_list, positive_int
from bot.reports import details, footer, md_table

if TYPE_CHECKING:
    from ssd.config import Settings

BACKENDS = ("llamacpp", "transformers", "openai")
MIN_TIMEOUT_S, MAX_TIMEOUT_S = 0.5, 30.0  # /ssd eval timeout=: a shared worker is not held longer per test


def _inside(base: Path, name: str, what: str) -> str:
    path = (base / name).resolve()
    if not path.is_relative_to(base.resolve()):
        raise CommandError(f"`{what}={name}` must name something inside {base}")
    if not path.exists():
        raise CommandError(f"`{what}={name}`: no such file or directory under {base}")
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
    return _inside(settings.data_dir / "models", model, "model"), None


def resolve_suite(settings: Settings, suite: str) -> str:
    from pipeline.suites import list_suites

    if suite in list_suites():
        return suite
    return _inside(settings.data_dir / "suites", suite, "suite")


def render_report(data: dict[str, Any], plot_url: str | None, title: str) -> str:
    """The Markdown report of ``EvalResult.to_dict()``: table, paired deltas, plot, footer."""
    from pipeline.evaluate import report_rows

    headers, rows, paired = report_rows(data)
    parts = [f"### {title}",
             f"`{data['model']}` ({data['backend']}) on `{data['suite']}` · {data['wall_s']:.0f} s · "
             "pass@k with bootstrap 95% CI over problems",
             md_table(headers, rows, align=["l", "l", "r", "r", "r", *["r"] * (len(headers) - 6), "r"])]
    if paired:
        parts.append("\n".join(f"- {line.removeprefix('paired: ')}" for line in paired))
    if plot_url:
        parts.append(f"![pass@1 vs temperature]({plot_url})")
    verdict_rows = [(c["label"], ", ".join(f"{v}: {n}" for v, n in sorted(c["verdicts"].items())))
                    for c in data["conditions"]]
    parts.append(details("Verdicts", md_table(["condition", "verdicts"], verdict_rows)))
    parts.append(footer(data["provenance"]))
    return "\n\n".join(parts)


@command(
    "eval",
    "Measure pass@k of a model on a suite (table, plot, reproducibility footer)",
    args=[
        Arg("model", help="alias (smollm2), a file/dir under $SSD_DATA_DIR/models, or openai:NAME"),
        Arg("suite", default="humaneval", help="humaneval, basic, or a file under $SSD_DATA_DIR/suites"),
        Arg("t", type=float_list, default=[0.0], help="temperatures, one row each; 0 = greedy"),
        Arg("n", type=positive_int, default=1, help="samples per problem"),
        Arg("limit", type=positive_int, help="first N problems"),
        Arg("seed", type=int, default=0, help="sample i uses seed+i"),
        Arg("top_p", type=float, default=1.0),
        Arg("top_k", type=int, default=0, help="0 = off"),
        Arg("min_p", type=float, default=0.0),
        Arg("max_tokens", type=positive_int, default=512),
        Arg("backend", choices=BACKENDS, help="default: chosen from the model"),
        Arg("adapter", help="a PEFT or LoRA-GGUF adapter under $SSD_DATA_DIR/adapters"),
        Arg("gold", type=boolean, default=False, help="run the reference solutions instead of a model"),
        Arg("timeout", type=float, help=f"per-test wall limit in seconds ({MIN_TIMEOUT_S:g}-{MAX_TIMEOUT_S:g})"),
    ],
    permission="write",
    queue="cpu",
)
def eval_command(ctx: Any, args: dict[str, Any]) -> str:
    """Sample the model on the suite, execute every sample in the sandbox and report pass@k per temperature."""
    from pipeline.evaluate import EvalConfig, run_eval
    from pipeline.plots import pass_vs_temperature_png

    settings = ctx.settings
    model, base_url = resolve_model(settings, args.get("model"))
    adapter = _inside(settings.data_dir / "adapters", args["adapter"], "adapter") if args.get("adapter") else None
    if any(t < 0 for t in args["t"]):
        raise CommandError("temperatures must be >= 0")
    timeout = args.get("timeout")
    if timeout is not None and not MIN_TIMEOUT_S <= timeout <= MAX_TIMEOUT_S:
        raise CommandError(f"timeout must be between {MIN_TIMEOUT_S:g} and {MAX_TIMEOUT_S:g} seconds")
    cfg = EvalConfig(
        suite=resolve_suite(settings, args["suite"]), model=model, backend=args.get("backend"), base_url=base_url,
        adapter=adapter, temperatures=list(args["t"]), n=args["n"], limit=args.get("limit"), seed=args["seed"],
        top_p=args["top_p"], top_k=args["top_k"], min_p=args["min_p"], max_tokens=args["max_tokens"],
        gold=args["gold"], cache_dir=str(settings.data_dir / "cache" / "verdicts"),
        unsafe_execution=settings.unsafe_execution, timeout_s=timeout,
    )
    from pipeline.backends import BackendError
    from pipeline.executor import UnsafeExecutionError
    from pipeline.suites import SuiteError

    try:
        result = run_eval(cfg, progress=ctx.progress)
    except (BackendError, SuiteError, UnsafeExecutionError) as exc:  # a model or suite that cannot be loaded: say so, no traceback
        raise CommandError(str(exc)) from exc
    data = result.to_dict()
    plot_url = None
    if not cfg.gold:
        png = pass_vs_temperature_png(data)
        plot_url = ctx.attach(f"eval-{data['suite']}-pass-vs-temperature.png", png, "image/png")
    return render_report(data, plot_url, title=f"/ssd eval: {'gold solutions' if cfg.gold else data['model']}")
