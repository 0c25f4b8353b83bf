"""``ssd finetune`` and ``ssd adapters list|show|promote|rollback|export``: SSD step 2 and its registry.

Glue between ``Settings`` (the data dir: the registry is ``<data dir>/adapters``) and
``pipeline.training`` (explicit arguments), like ``ssd/cli/buffer.py``. Progress goes to stderr; with
``--json`` the result is printed to stdout, last.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import threading
from pathlib import Path
from typing import Any

from bot.serving import rollback_everywhere
from pipeline.options import add_dataclass_arguments, dataclass_from_args
from pipeline.training.config import PRESETS, FinetuneConfig


def register(subparsers: argparse._SubParsersAction) -> None:
    finetune = subparsers.add_parser("finetune", help="SSD step 2: LoRA SFT on a sampled dataset -> adapter")
    finetune.add_argument("--data", required=True, type=Path, metavar="DIR", help="dataset from `ssd sample`")
    finetune.add_argument(
        "--model",
        default="smollm2",
        metavar="SPEC",
        help="base model: an alias (smollm2), a .gguf file or a Hugging Face directory (default: smollm2)",
    )
    finetune.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default=None,
        help="start from a named config; flags left at their defaults take the preset's value",
    )
    add_dataclass_arguments(finetune, FinetuneConfig)
    finetune.add_argument("--json", action="store_true", help='print {"adapter": ID, "path": DIR} as JSON')
    finetune.set_defaults(func=cmd_finetune)

    adapters = subparsers.add_parser("adapters", help="list, show, promote, roll back and export adapters")
    actions = adapters.add_subparsers(dest="adapters_command", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="all adapters, oldest first; * marks the promoted one")
    listing.set_defaults(func=cmd_list)
    show = actions.add_parser("show", help="one adapter's record")
    show.add_argument("id", metavar="ID")
    show.set_defaults(func=cmd_show)
    promote = actions.add_parser("promote", help="make ID the current adapter (the previous one can be rolled back to)")
    promote.add_argument("id", metavar="ID")
    promote.set_defaults(func=cmd_promote)
    rollback = actions.add_parser(
        "rollback",
        help="serve the previously promoted adapter (or VERSION, or the base) "
        "again through SSD_SERVING, verified, then make it current",
    )
    rollback.add_argument(
        "version",
        nargs="?",
        default=None,
        metavar="VERSION",
        help="an adapter id promoted before the current one, or `base` (default: the previous one)",
    )
    rollback.set_defaults(func=cmd_rollback)
    export = actions.add_parser("export", help="write ID as a llama.cpp LoRA GGUF, or merged into its base model")
    export.add_argument("id", metavar="ID")
    export.add_argument(
        "--format",
        choices=("gguf", "merged"),
        default="gguf",
        help="gguf: a LoRA GGUF for llama.cpp (recorded in the registry); merged: base + adapter "
        "as one Hugging Face directory (default: gguf)",
    )
    export.add_argument(
        "--out", type=Path, default=None, metavar="PATH", help="output file or directory (default: beside the adapter)"
    )
    export.set_defaults(func=cmd_export)
    for parser in (listing, show, promote, rollback, export):
        parser.add_argument("--json", action="store_true", help="print JSON")


def registry() -> Any:
    from core.config import Settings
    from pipeline.training.adapters import AdapterRegistry

    return AdapterRegistry(Settings.from_env().data_dir / "adapters")


def config_from_args(args: argparse.Namespace) -> FinetuneConfig:
    """The flags, with ``--preset`` filling the ones left at the field defaults."""
    config = dataclass_from_args(FinetuneConfig, args)
    if not args.preset:
        return config
    defaults = FinetuneConfig()
    changed = {
        f.name: getattr(config, f.name)
        for f in dataclasses.fields(FinetuneConfig)
        if getattr(config, f.name) != getattr(defaults, f.name)
    }
    return FinetuneConfig.preset(args.preset, **changed)


def _fail(message: str) -> int:
    print(f"ssd: {message}", file=sys.stderr)
    return 1


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def cmd_finetune(args: argparse.Namespace) -> int:
    from pipeline.backends import ModelNotFound
    from pipeline.training.finetune import FinetuneError, finetune
    from ssd.cli.eval import ProgressBar

    try:
        config = config_from_args(args)
    except ValueError as exc:
        return _fail(f"bad fine-tune settings: {exc}")
    try:
        record = finetune(args.data, args.model, config, registry(), progress=ProgressBar(), cancel=threading.Event())
    except FinetuneError as exc:
        if exc.log_tail:
            print(exc.log_tail, file=sys.stderr)
        return _fail(str(exc))
    except ModelNotFound as exc:
        return _fail(str(exc))
    if args.json:
        _print_json({"adapter": record.id, "path": str(record.path)})
    else:
        print(f"adapter {record.id} at {record.path}")
    return 0


def _summary(record: Any, promoted: str | None) -> dict[str, Any]:
    train = record.metrics.get("train", {})
    last = record.loss_curve[-1]["loss"] if record.loss_curve else None
    return {
        "id": record.id,
        "promoted": record.id == promoted,
        "created": record.created,
        "base_model": record.base_model,
        "steps": train.get("steps"),
        "final_loss": last,
        "examples": train.get("examples"),
        "path": str(record.path),
        "gguf": record.gguf,
    }


def cmd_list(args: argparse.Namespace) -> int:
    reg = registry()
    current = reg.promoted()
    current_id = current.id if current else None
    rows = [_summary(r, current_id) for r in reg.list()]
    if args.json:
        _print_json(rows)
        return 0
    if not rows:
        print("no adapters yet (make one with `ssd finetune` or `ssd train`)")
        return 0
    print(f"  {'id':<24}  {'created (UTC)':<19}  {'base':<16}  {'steps':>5}  {'loss':>7}")
    for row in rows:
        loss = f"{row['final_loss']:.4f}" if row["final_loss"] is not None else "-"
        print(
            f"{'*' if row['promoted'] else ' '} {row['id']:<24}  {row['created'][:19]:<19}  "
            f"{row['base_model'][-16:]:<16}  {row['steps'] or '-':>5}  {loss:>7}"
        )
    return 0


def _with_registry(action) -> int:  # noqa: ANN001 - a small local helper
    from pipeline.training.adapters import RegistryError

    try:
        return action(registry())
    except RegistryError as exc:
        return _fail(str(exc))


def cmd_show(args: argparse.Namespace) -> int:
    def show(reg: Any) -> int:
        record = reg.get(args.id)
        data = record.to_dict()
        current = reg.promoted()
        data["promoted"] = current is not None and current.id == record.id
        if args.json:
            _print_json(data)
            return 0
        for key in ("id", "promoted", "created", "base_model", "base_sha256", "path", "gguf"):
            print(f"{key:>12}: {data[key]}")
        print(f"{'dataset':>12}: {data['dataset'].get('path', '-')}")
        print(f"{'config':>12}: " + ", ".join(f"{k}={v}" for k, v in data["config"].items()))
        curve = " ".join(f"{p['loss']:.3f}" for p in record.loss_curve)
        print(f"{'loss curve':>12}: {curve or '-'}")
        print(f"{'metrics':>12}: {json.dumps(data['metrics'], ensure_ascii=False)}")
        return 0

    return _with_registry(show)


def cmd_promote(args: argparse.Namespace) -> int:
    def promote(reg: Any) -> int:
        record = reg.promote(args.id)
        if args.json:
            _print_json({"promoted": record.id, "history": reg.history()})
        else:
            print(f"promoted {record.id}")
        return 0

    return _with_registry(promote)


def cmd_rollback(args: argparse.Namespace) -> int:
    from core.config import Settings
    from core.loop_lock import LockHeld
    from pipeline.serving import ServingError
    from pipeline.training.adapters import RegistryError

    try:
        result = rollback_everywhere(Settings.from_env(), args.version)
    except (RegistryError, ServingError, LockHeld) as exc:
        return _fail(f"rollback: {exc}")
    if args.json:
        _print_json(result)
    else:
        print(
            f"promoted {result['promoted'] or 'none (the base model)'}; serving {result['serving']['model']} "
            f"on {result['serving']['target']}"
        )
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from pipeline.backends import ModelNotFound, resolve_model
    from pipeline.training.export import ExportError, base_config_for, export_lora_gguf, merge_adapter

    def export(reg: Any) -> int:
        record = reg.get(args.id)
        try:
            if args.format == "merged":
                out = merge_adapter(record.base_model, record.path, args.out or record.path.parent / "merged")
            else:
                base_config = base_config_for(resolve_model(record.base_model))
                out = export_lora_gguf(record.path, base_config, args.out or record.path.parent / "adapter.gguf")
                reg.set_gguf(record.id, out)
        except (ExportError, ModelNotFound, OSError) as exc:
            return _fail(f"export failed: {exc}")
        if args.json:
            _print_json({"adapter": record.id, "format": args.format, "path": str(out)})
        else:
            print(f"{args.format} export of {record.id} at {out}")
        return 0

    return _with_registry(export)
