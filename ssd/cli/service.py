"""Subcommands for the service processes: ``serve``, ``web``, ``worker``, ``scheduler``, ``model-server``,
``deliver``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from core.config import Settings


def _serve(args: argparse.Namespace) -> int:
    from ssd import serve

    return serve.run_serve(Settings.from_env())


def _web(args: argparse.Namespace) -> int:
    from ssd import serve

    return serve.run_web(Settings.from_env())


def _worker(args: argparse.Namespace) -> int:
    from ssd import worker

    return worker.run_worker(Settings.from_env(), worker.parse_queues(args.queues), burst=args.burst)


def _scheduler(args: argparse.Namespace) -> int:
    from ssd import scheduler

    return scheduler.run_scheduler(Settings.from_env(), interval=args.interval)


def _model_server(args: argparse.Namespace) -> int:
    from ssd.model_server import run_model_server

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return run_model_server(Settings.from_env(), port=args.port)


def _deliver(args: argparse.Namespace) -> int:
    from ssd.deliver import deliver

    path = Path(args.file)
    if not path.is_file() or not os.access(path, os.R_OK):
        print(
            f"ssd deliver: cannot read {args.file}: no such readable file (give the payload JSON to send; "
            "see deploy/examples/)",
            file=sys.stderr,
        )
        return 2
    return deliver(
        Settings.from_env(),
        Path(args.file),
        event_type=args.event_type,
        url=args.url,
        form=args.form,
        timeout=args.timeout,
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "serve",
        help="run everything on this machine: web, workers, scheduler (embedded Redis if unset)",
        description="Start the web tier, a worker for the default queue, a worker for cpu,gpu and the "
        "scheduler; print the URL and secret to give Gitea. One child dying stops all.",
    )
    p.set_defaults(func=_serve)

    p = subparsers.add_parser("web", help="the webhook receiver under gunicorn (deploy/gunicorn.conf.py, SSD_BIND)")
    p.set_defaults(func=_web)

    p = subparsers.add_parser("worker", help="an RQ worker for some queues")
    p.add_argument(
        "--queues",
        default="default,cpu,gpu",
        help="comma list of queues to serve, in priority order (default: default,cpu,gpu); "
        "GPU hosts serve gpu, CPU hosts default,cpu",
    )
    p.add_argument("--burst", action="store_true", help="exit once the queues are empty")
    p.set_defaults(func=_worker)

    p = subparsers.add_parser(
        "scheduler", help="re-enqueue journaled deliveries; keep the rq.cron nightly declaration running"
    )
    p.add_argument("--interval", type=float, default=5.0, help="seconds between inbox drains (default 5)")
    p.set_defaults(func=_scheduler)

    p = subparsers.add_parser(
        "model-server",
        help="the local OpenAI-compatible model server (SSD_SERVING=local), on 127.0.0.1",
        description="Serve the promoted adapter (or the base SSD_MODEL) at http://127.0.0.1:PORT/v1 and swap "
        "it when SSD_DATA_DIR/serving/local-model.json changes.",
    )
    p.add_argument("--port", type=int, default=None, help="port (default SSD_LOCAL_MODEL_PORT)")
    p.set_defaults(func=_model_server)

    p = subparsers.add_parser("deliver", help="sign a payload file and POST it like Gitea would (try dry-run mode)")
    p.add_argument("file", help="the payload JSON, byte-exact (see deploy/examples/)")
    p.add_argument(
        "--event-type",
        default=None,
        help="X-Gitea-Event-Type (default: from the payload: issue_comment, pull_request_comment or pull_request)",
    )
    p.add_argument(
        "--url", default=None, help="webhook URL (default: SSD_PUBLIC_URL or http://SSD_BIND/webhooks/gitea)"
    )
    p.add_argument("--form", action="store_true", help="send as application/x-www-form-urlencoded")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the answer")
    p.set_defaults(func=_deliver)
