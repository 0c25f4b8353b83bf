"""``ssd issues build|show``: solved Gitea issues -> a SWE-bench-style instance file, and a look at one.

The composition layer: Gitea (``bot.repo_source``) and the settings meet ``pipeline.repo_suite`` here.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pipeline.repo_suite.build import format_build_report
from pipeline.repo_suite.instances import InstanceError, load_instances, write_instances


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("issues", help="solved issues (merged PRs with tests) as a repository suite")
    commands = parser.add_subparsers(dest="issues_command", metavar="ACTION", required=True)

    build = commands.add_parser(
        "build",
        help="validate a repository's merged PRs into SWE-bench-style instances",
        description="Each merged PR that changes code and tests becomes an instance if "
        "its tests fail before the fix and pass after it (run twice).",
    )
    build.add_argument("--repo", required=True, metavar="OWNER/NAME")
    build.add_argument("--out", required=True, type=Path, metavar="FILE.jsonl")
    build.add_argument("--since", metavar="YYYY-MM-DD", help="only PRs merged on or after this date")
    build.add_argument("--limit", type=_positive, help="the N most recent merged PRs")
    build.add_argument(
        "--from-buffer",
        action="store_true",
        help="take the PRs from the training buffer instead of listing them on Gitea",
    )
    build.add_argument(
        "--test-command",
        help="overrides .ssd.yml and the default ('{python} -m pytest ... --junitxml={junit} {files}')",
    )
    build.add_argument("--test-patterns", help="comma-separated globs of test files (default: tests/*, test_*.py, ...)")
    build.add_argument("--reruns", type=_positive, default=2, help="runs with the gold patch (flakiness check)")
    build.add_argument("--report", type=Path, metavar="FILE.json", help="also write the build report as JSON")
    build.add_argument("--quiet", "-q", action="store_true")
    build.set_defaults(func=cmd_build)

    show = commands.add_parser("show", help="list the instances of a file with their test counts")
    show.add_argument("file", type=Path)
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=cmd_show)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def cmd_build(args: argparse.Namespace) -> int:
    from bot.gitea import GiteaError, gitea_from_settings
    from bot.repo_source import build_repo_suite
    from core.config import Settings
    from pipeline.executor import UnsafeExecutionError
    from ssd.cli.eval import ProgressBar

    if args.repo.count("/") != 1:
        print("ssd issues build: error: --repo must be OWNER/NAME", file=sys.stderr)
        return 2
    settings = Settings.from_env()
    if settings.dry_run:
        print("ssd issues build: error: needs Gitea (set SSD_GITEA_URL and SSD_GITEA_TOKEN)", file=sys.stderr)
        return 1
    examples = None
    if args.from_buffer:
        from bot.context import open_buffer

        buffer = open_buffer(settings)
        examples = buffer.active() + buffer.archived()
    overrides = {}
    if args.test_command:
        overrides["test_command"] = args.test_command
    if args.test_patterns:
        overrides["test_patterns"] = [p.strip() for p in args.test_patterns.split(",") if p.strip()]
    try:
        report = build_repo_suite(
            gitea_from_settings(settings),
            args.repo,
            settings,
            since=args.since,
            limit=args.limit,
            examples=examples,
            overrides=overrides,
            reruns=args.reruns,
            progress=None if args.quiet else ProgressBar(),
        )
    except (GiteaError, ValueError, UnsafeExecutionError) as exc:
        print(f"ssd issues build: error: {exc}", file=sys.stderr)
        return 1
    write_instances(args.out, report.instances)
    if args.report:
        args.report.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    print(format_build_report(report))
    print(f"instances: {args.out}", file=sys.stderr)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    try:
        instances, sha256 = load_instances(args.file)
    except (InstanceError, OSError, UnicodeDecodeError) as exc:
        print(f"ssd issues show: error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        rows = [
            {
                "instance_id": i.instance_id,
                "repo": i.repo,
                "base_commit": i.base_commit,
                "pr_numbers": i.pr_numbers,
                "FAIL_TO_PASS": len(i.FAIL_TO_PASS),
                "PASS_TO_PASS": len(i.PASS_TO_PASS),
                "title": i.problem_statement.split("\n", 1)[0],
            }
            for i in instances
        ]
        json.dump({"sha256": sha256, "instances": rows}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    print(f"{args.file} · {len(instances)} instances · sha256 {sha256[:12]}")
    for i in instances:
        title = " ".join(i.problem_statement.split("\n", 1)[0].split())[:60]
        print(
            f"{i.instance_id:<32} base {i.base_commit[:10]}  F2P {len(i.FAIL_TO_PASS):>3}  "
            f"P2P {len(i.PASS_TO_PASS):>3}  {title}"
        )
    return 0
