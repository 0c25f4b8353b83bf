"""``ssd sample``, ``ssd compare`` and ``ssd train``: the command-line face of SSD (``pipeline.training``).

Flags come from the config dataclasses (``pipeline.options``). ``ssd train`` runs all three steps with
the flags of each: the sampling flags as ``ssd sample`` has them (``--model``, ``--seed``, ``--t-train``,
``--top-p``/``--top-k`` are shared with the comparison, which evaluates the same base model with the same
truncation), the fine-tune flags as ``ssd finetune`` has them except ``--ft-batch-size`` and ``--ft-backend``,
and the comparison's own flags (``--suite``, ``--t-eval``, ``--n``, ``--select-fraction``) plus
``--eval-limit``, ``--eval-max-tokens``, ``--eval-backend``, ``--eval-batch-size``.

Like ``ssd/cli/buffer.py`` this glue reads ``Settings`` (for the data dir, and the buffer for
``--prompts buffer``); ``pipeline.training`` itself takes explicit arguments. Progress goes to stderr and
``--json`` output to stdout, last, so the training child's log lines never mix into it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import threading
from pathlib import Path
from typing import Any

from pipeline.options import add_dataclass_arguments, dataclass_from_args
from pipeline.training.compare import CompareConfig
from pipeline.training.sample import SampleConfig, default_dataset_dir

# Fields that mean different things in two configs get a prefix in ``ssd train``.
FINETUNE_PREFIXED = ("batch_size", "backend")
COMPARE_PREFIXED = ("limit", "max_tokens", "backend", "batch_size", "workers")
COMPARE_SHARED = ("model", "preset", "t_train", "top_p", "top_k", "seed")  # taken from the sampling flags


def _names(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def _add_only(parser: argparse.ArgumentParser, cls: type, names: tuple[str, ...] | set[str], prefix: str = "") -> None:
    add_dataclass_arguments(parser, cls, skip=_names(cls) - set(names), prefix=prefix)


def register(subparsers: argparse._SubParsersAction) -> None:
    from pipeline.training.config import FinetuneConfig

    sample = subparsers.add_parser("sample", help="SSD step 1: sample one answer per prompt at T_train -> dataset")
    add_dataclass_arguments(sample, SampleConfig, skip=("out",))
    sample.add_argument("--out", required=True, metavar="DIR", help="output dataset directory (resumes a cut run)")
    sample.add_argument("--json", action="store_true", help="print the result (counts, provenance) as JSON")
    sample.set_defaults(func=cmd_sample)

    compare = subparsers.add_parser("compare", help="SSD step 3: base vs tuned adapter on a held-out suite")
    add_dataclass_arguments(compare, CompareConfig, skip=("adapter",))
    compare.add_argument("--adapter", required=True, metavar="ID", help="adapter id from `ssd adapters list`")
    compare.add_argument("--json", action="store_true", help="print the comparison as JSON")
    compare.set_defaults(func=cmd_compare)

    train = subparsers.add_parser("train", help="SSD end to end: sample + finetune + compare")
    add_dataclass_arguments(train, SampleConfig, skip=("out",))
    train.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help="dataset directory (default: <data dir>/datasets/ssd-<hash of the sampling settings>, "
        "so rerunning the same command resumes)",
    )
    add_dataclass_arguments(train, FinetuneConfig, skip=FINETUNE_PREFIXED + ("seed",))
    _add_only(train, FinetuneConfig, FINETUNE_PREFIXED, prefix="ft-")
    add_dataclass_arguments(train, CompareConfig, skip=("adapter", *COMPARE_PREFIXED, *COMPARE_SHARED))
    _add_only(train, CompareConfig, COMPARE_PREFIXED, prefix="eval-")
    train.add_argument(
        "--json", action="store_true", help='print {"dataset": DIR, "adapter": ID, "compare": {...}} as JSON'
    )
    train.set_defaults(func=cmd_train)


def _settings() -> Any:
    from core.config import Settings

    return Settings.from_env()


def _buffer_if_needed(prompts: str) -> Any:
    if prompts != "buffer":
        return None
    from bot.context import open_buffer

    return open_buffer(_settings())


def registry() -> Any:
    from pipeline.training.adapters import AdapterRegistry

    return AdapterRegistry(_settings().data_dir / "adapters")


def _bar() -> Any:
    from ssd.cli.eval import ProgressBar

    return ProgressBar()


def _fail(message: str) -> int:
    print(f"ssd: {message}", file=sys.stderr)
    return 1


def _print_json(data: Any) -> None:
    sys.stdout.flush()
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def sample_config(args: argparse.Namespace, out: str | None) -> SampleConfig:
    return dataclass_from_args(SampleConfig, args, out=out)


def _run_sample(cfg: SampleConfig) -> Any:
    from pipeline.training.sample import run_sample

    return run_sample(cfg, progress=_bar(), buffer=_buffer_if_needed(cfg.prompts))


def _print_sample(result: Any) -> None:
    counts = result.provenance["counts"]
    dropped = ", ".join(f"{n} {reason}" for reason, n in sorted(counts["dropped"].items())) or "none"
    print(
        f"dataset {result.out}: {counts['kept']} kept of {counts['prompts']} prompts (dropped: {dropped})"
        + (f"; resumed after {result.resumed_from}" if result.resumed_from else ""),
        file=sys.stderr,
    )


def cmd_sample(args: argparse.Namespace) -> int:
    from pipeline.backends import BackendError
    from pipeline.training.prompt_sources import PromptSourceError
    from pipeline.training.sample import SampleError

    try:
        result = _run_sample(sample_config(args, args.out))
    except (SampleError, PromptSourceError, BackendError) as exc:
        return _fail(str(exc))
    _print_sample(result)
    if args.json:
        _print_json(result.to_dict())
    return 0


def _run_compare(cfg: CompareConfig) -> dict[str, Any]:
    from pipeline.training.compare import run_compare

    return run_compare(cfg, registry(), progress=_bar())


def _print_compare(summary: dict[str, Any]) -> None:
    from pipeline.training.compare import render_markdown

    for warning in summary["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    print(render_markdown(summary), file=sys.stderr)


def cmd_compare(args: argparse.Namespace) -> int:
    from pipeline.backends import BackendError
    from pipeline.suites import SuiteError
    from pipeline.training.adapters import AdapterNotFound
    from pipeline.training.compare import CompareError

    try:
        summary = _run_compare(dataclass_from_args(CompareConfig, args))
    except (AdapterNotFound, CompareError, SuiteError, BackendError) as exc:
        return _fail(str(exc))
    if args.json:
        _print_json(summary)
    else:
        _print_compare(summary)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from pipeline.backends import BackendError
    from pipeline.suites import SuiteError
    from pipeline.training.adapters import AdapterNotFound
    from pipeline.training.compare import CompareError
    from pipeline.training.config import FinetuneConfig
    from pipeline.training.finetune import FinetuneError, finetune
    from pipeline.training.prompt_sources import PromptSourceError
    from pipeline.training.sample import SampleError

    try:
        probe = sample_config(args, None)
        out = args.out or str(default_dataset_dir(_settings().data_dir, probe))
        sample_cfg = dataclasses.replace(probe, out=out)
        ft_cfg = dataclass_from_args(FinetuneConfig, args, **{n: getattr(args, "ft_" + n) for n in FINETUNE_PREFIXED})
        compare_overrides = {n: getattr(args, "eval_" + n) for n in COMPARE_PREFIXED}
        compare_cfg = dataclass_from_args(CompareConfig, args, **compare_overrides)  # adapter set below
    except (ValueError, SampleError, CompareError) as exc:
        return _fail(str(exc))
    try:
        print("step 1/3: sample", file=sys.stderr)
        sampled = _run_sample(sample_cfg)
        _print_sample(sampled)
        print("step 2/3: finetune", file=sys.stderr)
        reg = registry()
        record = finetune(Path(out), sample_cfg.model, ft_cfg, reg, progress=_bar(), cancel=threading.Event())
        print(f"adapter {record.id}", file=sys.stderr)
        print("step 3/3: compare", file=sys.stderr)
        summary = _run_compare(
            dataclasses.replace(compare_cfg, adapter=record.id, t_train=sampled.provenance["sampling"]["temperature"])
        )
    except (
        SampleError,
        PromptSourceError,
        BackendError,
        FinetuneError,
        AdapterNotFound,
        CompareError,
        SuiteError,
    ) as exc:
        return _fail(str(exc))
    if args.json:
        _print_json({"dataset": out, "adapter": record.id, "compare": summary})
    else:
        _print_compare(summary)
    return 0
