"""``ssd loop run-once [--json]`` and ``ssd loop runs``: the continuous loop from the command line."""

from __future__ import annotations

import argparse
import json
import sys


def cmd_run_once(args: argparse.Namespace) -> int:
    from bot.loop import run_once
    from core.config import Settings

    def progress(fraction: float, message: str) -> None:
        print(f"[{fraction:4.0%}] {message}", file=sys.stderr, flush=True)

    result = run_once(Settings.from_env(), trigger="manual", progress=progress)
    if args.json:
        sys.stdout.write(json.dumps(result, ensure_ascii=False) + "\n")
    else:
        print(f"run {result['run']}: {result['decision']}: {result['reason']}")
        print(
            f"serving {result['serving']['model']} on {result['serving']['target']}"
            + (f" at {result['serving']['url']}" if result["serving"]["url"] else "")
        )
    return 1 if result["decision"] == "failed" else 0


def cmd_runs(args: argparse.Namespace) -> int:
    from bot.loop import loop_dir
    from core.config import Settings
    from pipeline.loop.run import RunStore, result_json

    records = RunStore(loop_dir(Settings.from_env())).last(args.last)
    if args.json:
        sys.stdout.write(json.dumps([result_json(r) for r in records], ensure_ascii=False) + "\n")
        return 0
    for record in records:
        print(
            f"{record['run']}  {record.get('trigger', '?'):<8} {record['decision']:<9} "
            f"{record.get('candidate') or '-':<24} {record['reason'][:100]}"
        )
    if not records:
        print("no loop runs yet")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    loop = subparsers.add_parser("loop", help="the continuous loop: train on the buffer, gate, promote, deploy")
    actions = loop.add_subparsers(dest="loop_command", metavar="ACTION", required=True)
    once = actions.add_parser("run-once", help="one run now (the nightly job does the same), under the run lock")
    once.add_argument(
        "--json",
        action="store_true",
        help='print {"run", "decision", "reason", "snapshot", "candidate", "gate", "serving"}',
    )
    once.set_defaults(func=cmd_run_once)
    runs = actions.add_parser("runs", help="the last runs and their decisions")
    runs.add_argument("--last", type=int, default=10, help="how many (default 10)")
    runs.add_argument("--json", action="store_true", help="print JSON")
    runs.set_defaults(func=cmd_runs)
