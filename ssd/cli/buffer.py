"""``ssd buffer list|export|stats``: look into and export the training buffer.

This is the glue between the settings and ``pipeline.buffer`` (which itself takes explicit arguments),
so it is the one place under ``pipeline/`` that reads ``core.config``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bot.context import open_buffer
from core.config import Settings
from pipeline.buffer import Example


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("buffer", help="inspect and export the merged-PR training buffer")
    commands = parser.add_subparsers(dest="buffer_command", metavar="ACTION", required=True)

    listing = commands.add_parser("list", help="list examples, newest first")
    listing.add_argument("--archived", action="store_true", help="list archived examples instead of the window")
    listing.add_argument("--limit", type=_positive_int, default=None, help="show at most N examples")
    listing.add_argument("--json", action="store_true", help="print a JSON array of full examples")
    listing.set_defaults(func=cmd_list)

    export = commands.add_parser("export", help="write the buffer as JSONL or a Hugging Face dataset")
    export.add_argument(
        "--format",
        choices=("jsonl", "hf"),
        default="jsonl",
        help="jsonl: one chat-form example per line; hf: datasets save_to_disk directory",
    )
    export.add_argument("--include-archived", action="store_true", help="export archived examples too")
    export.add_argument("out", type=Path, help="output file (jsonl) or directory (hf)")
    export.set_defaults(func=cmd_export)

    stats = commands.add_parser("stats", help="window size, active and archived counts")
    stats.add_argument("--json", action="store_true", help="print the figures as JSON")
    stats.set_defaults(func=cmd_stats)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return value


def _one_line(text: str, width: int) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def cmd_list(args: argparse.Namespace) -> int:
    buffer = open_buffer(Settings.from_env())
    examples: list[Example] = buffer.archived(args.limit) if args.archived else buffer.active(args.limit)
    if args.json:
        json.dump([example.to_dict() for example in examples], sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
        return 0
    if not examples:
        print("no archived examples" if args.archived else "the buffer is empty")
        return 0
    print(f"{'id':>6}  {'repo':<24} {'PR':>5}  {'merge':<10}  {'issues':<12} {'merged_at':<20}  prompt")
    for example in examples:
        issues = ",".join(f"#{n}" for n in example.issue_numbers) or "-"
        print(
            f"{example.id:>6}  {_one_line(example.repo, 24):<24} {example.pr_number:>5}  "
            f"{example.merge_sha[:10]:<10}  {_one_line(issues, 12):<12} {example.merged_at:<20}  "
            f"{_one_line(example.prompt, 60)}"
        )
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    buffer = open_buffer(Settings.from_env())
    if args.format == "jsonl":
        written = buffer.export_jsonl(args.out, include_archived=args.include_archived)
    else:
        dataset = buffer.to_dataset(include_archived=args.include_archived)
        dataset.save_to_disk(str(args.out))
        written = len(dataset)
    print(f"wrote {written} examples to {args.out} ({args.format})")
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    figures = open_buffer(Settings.from_env()).stats()
    if args.json:
        print(json.dumps(figures))
        return 0
    print(f"window:   {figures['window']}")
    print(f"active:   {figures['active']}")
    print(f"archived: {figures['archived']}")
    print(f"repos:    {figures['repos']}")
    if figures["active"]:
        print(f"span:     {figures['oldest_active']} .. {figures['newest_active']}")
    return 0
