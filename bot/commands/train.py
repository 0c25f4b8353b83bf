"""``/ssd train``: SSD end to end (sample -> LoRA fine-tune -> base vs tuned) as one job.

It runs on the ``gpu`` queue when ``SSD_GPU_WORKER`` says a worker serves it, else on ``cpu``. Sampling and the
comparison run in the worker like ``/ssd eval``; the training runs in the supervised child process of
``pipeline.training.finetune`` (cancellable: a watcher turns the job's cancel flag into the child's cancel).

A run costs about prompts x max_tokens generated tokens before training even starts; above
``SSD_TRAIN_CONFIRM_TOKENS`` the job only answers with the estimate and asks for ``confirm=yes``.

What a comment may name is as narrow as for ``/ssd eval``: the model is an alias or lives under
``$SSD_DATA_DIR/models/``, a prompt file under ``$SSD_DATA_DIR/prompts/``, a suite is built in or under
``$SSD_DATA_DIR/suites/``. Server paths are replaced by ``$SSD_DATA_DIR`` in the report.
"""

from __future__ import annotations

import dataclasses
import shlex
import threading
from typing import TYPE_CHECKING, Any

from bot.commands.api import CommandContext
from bot.commands.eval import _inside, resolve_model, resolve_suite
from bot.commands.registry import Arg, CommandError, boolean, command, positive_int, seed, temperatures
from bot.reports import footer
from core.markdown import md_table
from core.queues import CPU, GPU
from pipeline.types import DEFAULT_MAX_TOKENS

if TYPE_CHECKING:
    from core.config import Settings


def train_queue(settings: Settings) -> str:
    return GPU if settings.gpu_worker else CPU


def resolve_prompts(settings: Settings, prompts: str) -> str:
    if prompts in ("shipped", "buffer") or prompts.startswith("suite:"):
        if prompts.startswith("suite:"):
            return "suite:" + resolve_suite(settings, prompts.removeprefix("suite:"))
        return prompts
    return _inside(settings.data_dir / "prompts", prompts, "prompts", settings.data_dir)


def _one_temperature(text: str) -> float:
    values = temperatures(text)
    if len(values) != 1:
        raise ValueError("one temperature, not a list")
    return values[0]


def check_train_args(settings: Settings, args: dict[str, Any]) -> None:
    """What the job will need, checked before enqueueing: the prompts, model and suite resolve."""
    if args.get("source") == "buffer":
        return
    resolve_prompts(settings, args["prompts"])
    resolve_model(settings, args.get("model"))
    resolve_suite(settings, args["suite"])


def _watch_cancel(ctx: CommandContext, cancel: threading.Event, done: threading.Event) -> None:
    while not done.wait(0.5):
        if ctx.cancelled():
            cancel.set()
            return


def _dataset_table(prov: dict[str, Any]) -> str:
    counts, sampling = prov["counts"], prov["sampling"]
    dropped = ", ".join(f"{n} {reason}" for reason, n in sorted(counts["dropped"].items())) or "none"
    rows = [
        ("prompts", f"{counts['prompts']} from `{prov['prompts']['source']}`"),
        ("kept", str(counts["kept"])),
        ("dropped", dropped),
        (
            "sampling",
            f"T_train {sampling['temperature']:g}, top_p {sampling['top_p']:g}, "
            f"top_k {sampling['top_k']}, max_tokens {sampling['max_tokens']}, seed {sampling['seed']}",
        ),
        ("chat template", "yes" if prov["chat_template"] else "no (raw prompt)"),
        ("preset", f"{prov['preset']['family']} ({prov['preset']['source']})"),
    ]
    return md_table(["dataset", ""], rows)


@command(
    "train",
    "SSD: sample at T_train, LoRA fine-tune, compare base vs tuned at T_eval (asks to confirm big runs)",
    args=[
        Arg("prompts", default="shipped", help="shipped, buffer, suite:NAME, or a file under $SSD_DATA_DIR/prompts"),
        Arg("limit", type=positive_int, help="first N prompts", cap="max_limit"),
        Arg("model", help="alias (smollm2) or a file/dir under $SSD_DATA_DIR/models; default SSD_MODEL"),
        Arg(
            "t_train", type=_one_temperature, help="sampling temperature in [0, 2]; default: the model family's preset"
        ),
        Arg("t_eval", type=temperatures, help="evaluation temperatures; default: a grid around the preset + T_train"),
        Arg(
            "max_tokens", type=positive_int, default=DEFAULT_MAX_TOKENS, help="longest sampled answer", cap="max_tokens"
        ),
        Arg("max_steps", type=positive_int, help="optimizer steps; default: one epoch"),
        Arg("suite", default="basic", help="held-out suite for the comparison"),
        Arg("eval_limit", type=positive_int, help="first N problems of the suite", cap="max_limit"),
        Arg("n", type=positive_int, default=1, help="samples per problem in the comparison", cap="max_n"),
        Arg("seed", type=seed, default=0),
        Arg("confirm", type=boolean, default=False, help="yes: run even above the cost estimate"),
        Arg(
            "source",
            choices=("buffer",),
            help="buffer: run the continuous loop now instead (buffer snapshot, "
            "fine-tune, gate, promote, deploy: the nightly run)",
        ),
    ],
    permission="write",
    queue=CPU,
    queue_for=train_queue,
    check=check_train_args,
)
def train_command(ctx: CommandContext, args: dict[str, Any]) -> str:
    """Sample the prompts once each at T_train, fine-tune a LoRA adapter on the answers, and compare the base
    model with the tuned one on a held-out suite (paired, with 95% CIs). The adapter is registered, not
    promoted."""
    from pipeline.backends import BackendError
    from pipeline.plots import loss_curve_png
    from pipeline.suites import SuiteError
    from pipeline.training.adapters import AdapterRegistry
    from pipeline.training.compare import CompareConfig, CompareError, render_markdown, run_compare
    from pipeline.training.config import FinetuneConfig
    from pipeline.training.finetune import FinetuneCancelled, FinetuneError, finetune
    from pipeline.training.prompt_sources import PromptSourceError, load_prompts
    from pipeline.training.sample import (
        SampleCancelled,
        SampleConfig,
        SampleError,
        default_dataset_dir,
        run_sample,
    )

    if args.get("source") == "buffer":
        from bot.commands.loop import run_loop_from_command

        return run_loop_from_command(ctx)
    settings = ctx.settings
    data_dir = str(settings.data_dir)
    model, base_url = resolve_model(settings, args.get("model"))
    if base_url:
        raise CommandError("SSD trains a local model: `model=` must be an alias or a model under $SSD_DATA_DIR/models")
    prompts = resolve_prompts(settings, args["prompts"])
    suite = resolve_suite(settings, args["suite"])
    buffer = None
    if prompts == "buffer":
        from bot.context import open_buffer

        buffer = open_buffer(settings)
    try:
        sample_cfg = SampleConfig(
            prompts=prompts,
            model=model,
            t_train=args.get("t_train"),
            max_tokens=args["max_tokens"],
            limit=args.get("limit"),
            seed=args["seed"],
        )
        ft_cfg = FinetuneConfig(max_steps=args.get("max_steps") or -1, seed=args["seed"])
        compare_cfg = CompareConfig(
            suite=suite,
            model=model,
            t_eval=args.get("t_eval"),
            n=args["n"],
            limit=args.get("eval_limit"),
            seed=args["seed"],
        )
        count = len(load_prompts(prompts, sample_cfg.limit, buffer=buffer))
    except (SampleError, CompareError, PromptSourceError, ValueError) as exc:
        raise CommandError(str(exc).replace(data_dir, "$SSD_DATA_DIR")) from exc
    estimate = count * sample_cfg.max_tokens
    if estimate > settings.train_confirm_tokens and not args["confirm"]:
        return (
            f"### /ssd train: confirmation needed\n\nThis run would sample up to **{estimate:,} tokens** "
            f"({count} prompts x max_tokens {sample_cfg.max_tokens}) before training, above this "
            f"installation's limit of {settings.train_confirm_tokens:,} (`SSD_TRAIN_CONFIRM_TOKENS`). "
            f"Repeat the command with `confirm=yes` to run it, or lower `limit=` / `max_tokens=`."
        )

    registry = AdapterRegistry(settings.data_dir / "adapters")
    out = default_dataset_dir(settings.data_dir, sample_cfg)
    sample_cfg = dataclasses.replace(sample_cfg, out=str(out))
    cancel, done = threading.Event(), threading.Event()
    threading.Thread(target=_watch_cancel, args=(ctx, cancel, done), daemon=True).start()

    def stage(start: float, end: float, name: str) -> Any:
        return lambda fraction, message: ctx.progress(start + (end - start) * fraction, f"{name}: {message}")

    try:
        sampled = run_sample(sample_cfg, progress=stage(0.0, 0.3, "sample"), buffer=buffer, cancel=cancel)
        record = finetune(out, model, ft_cfg, registry, progress=stage(0.3, 0.7, "finetune"), cancel=cancel)
        summary = run_compare(
            dataclasses.replace(compare_cfg, adapter=record.id, t_train=sampled.provenance["sampling"]["temperature"]),
            registry,
            progress=stage(0.7, 1.0, "compare"),
        )
    except (SampleCancelled, FinetuneCancelled) as exc:
        raise CommandError(f"cancelled: {exc}".replace(data_dir, "$SSD_DATA_DIR")) from exc
    except (SampleError, PromptSourceError, BackendError, FinetuneError, CompareError, SuiteError) as exc:
        raise CommandError(str(exc).replace(data_dir, "$SSD_DATA_DIR")) from exc
    finally:
        done.set()

    record = registry.get(record.id)
    plot_url = None
    if record.loss_curve:
        plot_url = ctx.attach(
            f"train-{record.id}-loss.png", loss_curve_png(record.loss_curve, f"{record.id} loss"), "image/png"
        )
    prov = sampled.provenance
    command_line = [
        "ssd",
        "train",
        "--prompts",
        args["prompts"],
        "--model",
        args.get("model") or model,
        "--t-train",
        f"{prov['sampling']['temperature']:g}",
        "--max-tokens",
        str(sample_cfg.max_tokens),
        "--seed",
        str(args["seed"]),
        "--suite",
        args["suite"],
        "--n",
        str(args["n"]),
    ]
    for flag, key in (("--limit", "limit"), ("--max-steps", "max_steps"), ("--eval-limit", "eval_limit")):
        if args.get(key):
            command_line += [flag, str(args[key])]
    if args.get("t_eval"):
        command_line += ["--t-eval", ",".join(f"{t:g}" for t in args["t_eval"])]
    provenance = {
        "model": args.get("model") or settings.default_model,
        "model_sha256": prov["model"].get("sha256"),
        "prompts": f"{prov['prompts']['source']} (sha256 {prov['prompts']['sha256'][:16]})",
        "adapter": record.id,
        "suite": f"{summary['suite']['id']} (sha256 {summary['suite']['sha256'][:16]})",
        "seeds": args["seed"],
        "versions": prov.get("versions"),
        "commit": prov.get("commit"),
        "command": shlex.join(command_line),
    }
    loss = record.loss_curve
    parts = [
        f"### /ssd train: adapter `{record.id}` (registered, not promoted)",
        _dataset_table(prov),
        (
            f"Training: {len(loss)} logged steps, loss {loss[0]['loss']:.4f} → {loss[-1]['loss']:.4f}."
            if loss
            else "Training: no loss was logged."
        ),
        f"![training loss]({plot_url})" if plot_url else "",
        render_markdown(summary, footer=f"adapter {record.id} · promote with `ssd adapters promote {record.id}`"),
        footer(provenance),
    ]
    return "\n\n".join(p for p in parts if p).replace(data_dir, "$SSD_DATA_DIR")
