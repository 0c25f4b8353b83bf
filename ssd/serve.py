"""The process model: web (gunicorn), RQ workers, the scheduler loop, and ``ssd serve`` running them all.

Production runs each kind as its own service (Procfile, ``deploy/*.service``), any number of workers
on any number of hosts against one Redis. ``ssd serve`` is the fresh-machine shortcut: it runs the
embedded redis-server as a child when ``SSD_REDIS_URL`` is unset, hands its URL to the other children
through their environment, and supervises them all. The embedded Redis is restarted when it dies (its
append-only file brings the queues back; the workers reconnect). Any other child dying stops the rest and
exits non-zero, so a process manager above it (or the person at the terminal) sees the failure instead
of a half-alive service. Each child runs in a process group of its own, and stopping a child kills its
whole group afterwards, so nothing it started outlives it (RQ's scheduler process); an RQ work horse,
which moves to a group of its own, dies with its worker (``MeteredWorker``).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import redis
import requests
import sqlalchemy as sa
from rq import Worker
from rq.exceptions import StopRequested
from rq.job import Job
from rq.queue import Queue

from pipeline.store import engine_for
from ssd.config import ConfigError, Settings
from ssd.queues import ALL, queue
from ssd.redis_conn import connect, embedded_server_command, redis_url
from webhooks import metrics
from webhooks.inbox import Inbox, enqueue_pending
from webhooks.signature import delivery_headers, form_body

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
GUNICORN_CONF = REPO_ROOT / "deploy" / "gunicorn.conf.py"
WEB_APP = "webhooks.app:create_app()"
WEBHOOK_PATH = "/webhooks/gitea"
HOOK_EVENTS = ("pull_request_only", "issue_comment", "pull_request_comment")

SCHEDULER_INTERVAL = 5.0  # seconds between inbox drains
PENDING_GRACE = 15.0  # rows younger than this are still being enqueued by their own web request
SWEEP_INTERVAL = 30.0  # seconds between sweeps for jobs whose worker was killed
STOP_GRACE = 20.0  # seconds a child gets after SIGTERM (an RQ worker finishes its current job)
RESTART_LIMIT = 5  # restarts of a restartable child (the embedded Redis) per RESTART_WINDOW before giving up
RESTART_WINDOW = 60.0
WORKER_RECONNECT_PAUSE = 1.0  # seconds before a worker that lost Redis starts over
READY_TIMEOUT = 30.0  # seconds a child may take to become ready (the embedded Redis loading its AOF)


# --------------------------------------------------------------------------- shared set-up

def webhook_url(settings: Settings) -> str:
    """The URL to give Gitea: ``SSD_PUBLIC_URL`` (+ the webhook path) or the bind address."""
    if settings.public_url:
        base = settings.public_url
        return base if base.endswith(WEBHOOK_PATH) else base + WEBHOOK_PATH
    return f"http://{settings.bind}{WEBHOOK_PATH}"


def service_env(settings: Settings, url: str | None = None) -> dict[str, str]:
    """Environment overrides that make child processes share this process's Redis and data dir.

    Without ``url``, starts the embedded Redis here (once) when ``SSD_REDIS_URL`` is unset; the children
    then join it by URL instead of each starting their own.
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return {"SSD_REDIS_URL": url or redis_url(settings), "SSD_DATA_DIR": str(settings.data_dir)}


def gunicorn_command() -> list[str]:
    if not GUNICORN_CONF.is_file():
        raise ConfigError(f"gunicorn config not found at {GUNICORN_CONF} (run from a checkout of ssd-bot)")
    return [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF), WEB_APP]


def ssd_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "ssd.cli", *args]


def prepare_storage(settings: Settings) -> None:
    """Create the secret and the inbox table once, before several processes race to do it."""
    _ = settings.webhook_secret
    Inbox(engine_for(settings.database_url))


# --------------------------------------------------------------------------- supervision

def _die_with_parent(sig: int = signal.SIGTERM) -> None:
    """In a child: get ``sig`` when the parent dies (Linux), so nothing is orphaned."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, sig)  # PR_SET_PDEATHSIG


@dataclass(frozen=True)
class Child:
    """A process ``supervise`` runs: its command line, whether to restart it when it dies (instead of
    stopping everyone), and what to wait for before starting the children after it."""

    argv: list[str]
    restart: bool = False
    ready: Callable[[], bool] | None = None


def _spawn(name: str, child: Child, env: Mapping[str, str]) -> subprocess.Popen:
    # Own process group: a terminal's Ctrl-C reaches only the supervisor, which stops the children in
    # order instead of all of them tearing down at once; and the group is what we kill at the end.
    proc = subprocess.Popen(child.argv, env=dict(env), process_group=0, preexec_fn=_die_with_parent)
    print(f"ssd: started {name} (pid {proc.pid})", flush=True)
    if child.ready is not None:
        deadline = time.monotonic() + READY_TIMEOUT
        while not child.ready():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not become ready (exit status {proc.poll()})")
            time.sleep(0.05)
    return proc


def _kill_group(proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    """Signal the child's whole process group, even after the child itself is gone (its children stay)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def _stop(procs: Mapping[str, subprocess.Popen]) -> None:
    """SIGTERM everyone, wait, SIGTERM again (RQ's cold shutdown), then kill whole process groups."""
    for attempt, grace in ((1, STOP_GRACE), (2, 5.0)):
        alive = [p for p in procs.values() if p.poll() is None]
        for proc in alive:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(p.poll() is None for p in alive):
            time.sleep(0.1)
        if all(p.poll() is not None for p in procs.values()):
            break
        log.warning("children still running after SIGTERM #%d", attempt)
    for name, proc in procs.items():
        if proc.poll() is None:
            log.error("killing %s (pid %d)", name, proc.pid)
        _kill_group(proc)  # also whatever a child left in its group (RQ's scheduler process)
        proc.wait()


def supervise(children: Mapping[str, list[str] | Child], env: Mapping[str, str]) -> int:
    """Run the children until a signal (exit 0) or until one of them exits (stop the rest, exit non-zero).

    Children start in order (waiting for each one's ``ready``); a ``restart`` child that dies is started
    again, up to RESTART_LIMIT times per RESTART_WINDOW. At the end the others stop first and the
    restartable ones (the Redis the others need to shut down cleanly) last.
    """
    specs = {name: child if isinstance(child, Child) else Child(list(child)) for name, child in children.items()}
    stopping = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("%s received; stopping", signal.Signals(signum).name)
        stopping.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    procs: dict[str, subprocess.Popen] = {}
    restarts: dict[str, list[float]] = {name: [] for name in specs}
    failed: tuple[str, int] | None = None
    try:
        for name, child in specs.items():
            procs[name] = _spawn(name, child, env)
        while not stopping.is_set() and failed is None:
            for name, proc in procs.items():
                if proc.poll() is None:
                    continue
                now = time.monotonic()
                restarts[name] = [t for t in restarts[name] if now - t < RESTART_WINDOW] + [now]
                if not specs[name].restart or len(restarts[name]) > RESTART_LIMIT:
                    failed = (name, proc.returncode)
                    break
                print(f"ssd: {name} exited with status {proc.returncode}; restarting it", file=sys.stderr,
                      flush=True)
                _kill_group(proc)
                procs[name] = _spawn(name, specs[name], env)
            stopping.wait(0.2)
    except RuntimeError as exc:  # a restarted child that never became ready
        print(f"ssd: {exc}", file=sys.stderr, flush=True)
        failed = ("supervisor", 1)
    finally:
        if failed:
            print(f"ssd: {failed[0]} exited with status {failed[1]}; stopping the others", file=sys.stderr, flush=True)
        _stop({name: proc for name, proc in procs.items() if not specs[name].restart})
        _stop({name: proc for name, proc in procs.items() if specs[name].restart})
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if failed:
        return failed[1] if failed[1] > 0 else 1
    return 0


def redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5).ping())
    except redis.RedisError:
        return False


def embedded_redis_child(settings: Settings) -> tuple[Child, str]:
    """The embedded Redis as a supervised, restartable child; returns it and its URL."""
    argv, url = embedded_server_command(settings.data_dir)
    return Child(argv, restart=True, ready=lambda: redis_answers(url)), url


# --------------------------------------------------------------------------- web and workers

def run_web(settings: Settings) -> int:
    """``ssd web``: gunicorn with ``deploy/gunicorn.conf.py`` on ``SSD_BIND``."""
    env = settings.child_env(**service_env(settings))
    prepare_storage(settings)
    return supervise({"web": gunicorn_command()}, env)


class MeteredWorker(Worker):
    """An RQ worker that adds each job's run time to the ``ssd_job_duration_seconds`` histogram.

    Its work horse dies with it: RQ moves the horse to a process group of its own, so a worker killed
    outright (SIGKILL, OOM) would otherwise leave the horse running the job to the end, unsupervised,
    while the job is already being reported as abandoned.
    """

    def main_work_horse(self, job: Job, queue: Queue) -> None:
        parent = os.getppid()
        _die_with_parent(signal.SIGKILL)
        if os.getppid() != parent:  # the worker died before the line above took effect
            os._exit(1)
        super().main_work_horse(job, queue)

    def perform_job(self, job: Job, queue: Queue) -> bool:
        started = time.monotonic()
        ok = super().perform_job(job, queue)
        metrics.record_job(self.connection, queue.name, "finished" if ok else "failed", time.monotonic() - started)
        return ok


def parse_queues(text: str) -> list[str]:
    """``default,cpu`` (or ``default:cpu``: systemd unit instance names cannot hold a comma)."""
    names = [name.strip() for name in text.replace(":", ",").split(",") if name.strip()]
    unknown = [name for name in names if name not in ALL]
    if not names or unknown:
        raise ConfigError(f"--queues: expected a comma list of {', '.join(ALL)}, got {text!r}")
    return names


def run_worker(settings: Settings, queue_names: list[str], burst: bool = False) -> int:
    """``ssd worker``: one forking RQ worker (a fresh work horse per job) on the given queues.

    RQ's loop rides out a Redis outage while it waits for jobs, but a connection lost at some other
    moment (a heartbeat, its maintenance) ends ``work()`` ("found an unhandled exception, quitting"),
    or its clean-up raises. Unless a stop was asked for, the worker then starts over with a new
    registration instead of exiting, so a restarted Redis does not take the workers down with it.
    """
    while True:
        worker: MeteredWorker | None = None
        error: Exception | None = None
        try:
            conn = connect(settings)
            worker = MeteredWorker([queue(name, conn) for name in queue_names], connection=conn)
            # with_scheduler: RQ's own scheduler moves delayed retries (Retry(interval=...)) back onto queues.
            worker.work(burst=burst, with_scheduler=True, logging_level=settings.log_level)
        except redis.RedisError as exc:  # also while registering: Redis may be restarting right now
            error = exc
        stop_asked = worker is not None and worker._shutdown_requested_date is not None  # SIGTERM/SIGINT
        if burst or stop_asked:
            if error is not None:
                raise error
            return 0
        log.warning("worker: stopped on its own (%s); starting over in %.0f s",
                    error or "see the error above", WORKER_RECONNECT_PAUSE)
        try:
            time.sleep(WORKER_RECONNECT_PAUSE)
        except StopRequested:  # SIGTERM in the pause, seen by the old worker's handler
            return 0


# --------------------------------------------------------------------------- scheduler

def nightly_schedule(settings: Settings) -> str:
    """``SSD_NIGHTLY_CRON``, checked (a bad expression fails ``ssd serve`` at once, not in a child)."""
    from croniter import croniter

    if not croniter.is_valid(settings.nightly_cron):
        raise ConfigError(f"SSD_NIGHTLY_CRON: not a cron expression (got {settings.nightly_cron!r})")
    return settings.nightly_cron


def cron_command() -> list[str]:
    """The process that declares the nightly run with rq.cron (``python -m ssd.schedule``)."""
    return [sys.executable, "-m", "ssd.schedule"]


class Scheduler:
    """Every few seconds: queue journaled deliveries; every half minute: report jobs whose worker died.

    The nightly run is not timed here: RQ's own cron scheduler (``ssd.schedule``) does that, in a child
    process the scheduler keeps running (``run_scheduler``). Several schedulers may run (one per host):
    rq.cron's scheduler takes a lock per job, so the nightly run is enqueued once.
    """

    def __init__(self, settings: Settings, conn: redis.Redis | None = None,
                 sweep_interval: float = SWEEP_INTERVAL) -> None:
        self.conn = conn if conn is not None else connect(settings)
        self.inbox = Inbox(engine_for(settings.database_url))
        self.sweep_interval = sweep_interval
        self._next_sweep = 0.0

    def sweep_abandoned(self) -> None:
        """Report command jobs whose worker died mid-run (``bot.jobs.report_abandoned``)."""
        try:
            from bot.jobs import report_abandoned

            reported = report_abandoned(self.conn)
        except Exception:  # the sweep is best effort; the loop must keep draining the inbox
            log.exception("scheduler: sweeping abandoned jobs failed")
            return
        if reported:
            log.info("scheduler: reported %d abandoned jobs: %s", len(reported), ", ".join(reported))

    def tick(self) -> None:
        try:
            enqueue_pending(self.inbox, self.conn, min_age=PENDING_GRACE)
        except (redis.RedisError, sa.exc.SQLAlchemyError) as exc:
            log.warning("scheduler: inbox not drained this time: %s", exc)
        if self.sweep_interval != math.inf and time.monotonic() >= self._next_sweep:
            self._next_sweep = time.monotonic() + self.sweep_interval
            self.sweep_abandoned()

    def run(self, stop: threading.Event, interval: float = SCHEDULER_INTERVAL,
            cron: list[str] | None = None) -> None:
        """Tick until ``stop``; with ``cron``, keep that process (rq.cron) running beside, restarting it
        when it dies (it blocks and installs its own signal handlers, so it cannot share this process)."""
        log.info("scheduler: draining the inbox every %.0f s", interval)
        child: subprocess.Popen | None = None
        try:
            while not stop.is_set():
                if cron and (child is None or child.poll() is not None):
                    if child is not None:
                        log.warning("scheduler: the rq.cron process exited with status %s; starting it again",
                                    child.returncode)
                    child = subprocess.Popen(cron, preexec_fn=_die_with_parent)
                self.tick()
                stop.wait(interval)
        finally:
            if child is not None and child.poll() is None:
                child.terminate()  # rq's CronScheduler stops cleanly on SIGTERM (unregisters itself)
                try:
                    child.wait(STOP_GRACE)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()


def run_scheduler(settings: Settings, interval: float = SCHEDULER_INTERVAL) -> int:
    """``ssd scheduler``: the loop above plus the rq.cron process, until SIGTERM/SIGINT."""
    cron = nightly_schedule(settings)
    scheduler = Scheduler(settings)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    log.info("scheduler: nightly loop run at cron %r in %s (rq.cron)", cron, settings.nightly_tz)
    scheduler.run(stop, interval, cron=cron_command())
    log.info("scheduler: stopped")
    return 0


# --------------------------------------------------------------------------- serve

def serve_children(settings: Settings, redis_child: Child | None = None) -> dict[str, list[str] | Child]:
    """What ``ssd serve`` runs, in start order."""
    children: dict[str, list[str] | Child] = {"redis": redis_child} if redis_child else {}
    children |= {
        "web": gunicorn_command(),
        # The conversation queue gets a worker of its own, so `/ssd help` is answered while an
        # evaluation holds the other worker.
        "worker-default": ssd_command("worker", "--queues", "default"),
        "worker-jobs": ssd_command("worker", "--queues", "cpu,gpu"),
        "scheduler": ssd_command("scheduler"),
    }
    if settings.serving == "local":  # the OpenAI-compatible server the loop deploys promoted adapters to
        children["model"] = ssd_command("model-server")
    return children


def run_serve(settings: Settings) -> int:
    """``ssd serve``: web + a ``default`` worker + a ``cpu,gpu`` worker + the scheduler (+ the local model
    server when ``SSD_SERVING=local``), supervised."""
    nightly_schedule(settings)  # a bad SSD_NIGHTLY_CRON fails here, not in a child
    redis_child, url = embedded_redis_child(settings) if settings.redis_url is None else (None, None)
    children = serve_children(settings, redis_child)
    env = settings.child_env(**service_env(settings, url))
    prepare_storage(settings)
    print(f"ssd: serving on http://{settings.bind} (data in {settings.data_dir})", flush=True)
    print(f"ssd: Gitea webhook URL: {webhook_url(settings)}", flush=True)
    print(f"ssd: webhook secret:    {settings.webhook_secret}", flush=True)
    print(f"ssd: content type application/json, events: {', '.join(HOOK_EVENTS)}", flush=True)
    if settings.dry_run:
        print(f"ssd: dry-run (SSD_GITEA_URL unset): replies go to {settings.outbox_dir}", flush=True)
    if "model" in children:
        print(f"ssd: model server (SSD_SERVING=local): http://127.0.0.1:{settings.local_model_port}/v1", flush=True)
    return supervise(children, env)


# --------------------------------------------------------------------------- deliver

def guess_event_type(signed: bytes) -> str:
    """``X-Gitea-Event-Type`` for a payload file: comment (issue or PR conversation) or pull_request."""
    try:
        payload = json.loads(signed)
    except ValueError:
        return "issue_comment"
    if isinstance(payload, dict) and "comment" in payload:
        return "pull_request_comment" if payload.get("is_pull") else "issue_comment"
    if isinstance(payload, dict) and "pull_request" in payload:
        return "pull_request"
    return "issue_comment"


def deliver(settings: Settings, path: Path, event_type: str | None = None, url: str | None = None,
            form: bool = False, timeout: float = 10.0) -> int:
    """``ssd deliver``: sign a payload file with the configured secret and POST it the way Gitea does."""
    signed = path.read_bytes()
    event_type = event_type or guess_event_type(signed)
    target = url or webhook_url(settings)
    headers = delivery_headers(settings.webhook_secret, signed, event_type, "form" if form else "json")
    try:
        response = requests.post(target, data=form_body(signed) if form else signed, headers=headers,
                                 timeout=timeout, allow_redirects=False)
    except requests.RequestException as exc:
        print(f"ssd deliver: could not reach {target}: {exc}", file=sys.stderr)
        return 1
    print(f"{response.status_code} {response.text.strip()}")
    if response.status_code == 401:
        print("ssd deliver: 401 means the secret differs from the service's (same SSD_WEBHOOK_SECRET or "
              "SSD_DATA_DIR?)", file=sys.stderr)
    return 0 if 200 <= response.status_code < 300 else 1
