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
from datetime import datetime
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

_CRON_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12),
                ("day of week", 0, 7))


def _cron_field(text: str, label: str, low: int, high: int) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        spec, _, step_text = part.partition("/")
        step = int(step_text) if step_text.isdigit() and int(step_text) > 0 else None
        if step_text and step is None:
            raise ValueError(f"bad step in {label} field {part!r}")
        if spec == "*":
            start, stop = low, high
        elif "-" in spec:
            a, _, b = spec.partition("-")
            if not (a.isdigit() and b.isdigit()):
                raise ValueError(f"bad range in {label} field {part!r}")
            start, stop = int(a), int(b)
        elif spec.isdigit():
            start = int(spec)
            stop = high if step else start
        else:
            raise ValueError(f"bad {label} field {part!r}")
        if not low <= start <= stop <= high:
            raise ValueError(f"{label} field {part!r} outside {low}-{high}")
        values.update(range(start, stop + 1, step or 1))
    return frozenset(values)


class CronSchedule:
    """A five-field cron expression (``m h dom mon dow``: ``*``, lists, ranges, steps), in local time.

    As in cron, when both day fields are restricted a day matches if either does.
    """

    def __init__(self, expression: str) -> None:
        self.expression = expression
        parts = expression.split()
        if len(parts) != 5:
            raise ValueError(f"expected 5 fields (minute hour day month weekday), got {len(parts)}")
        fields = [_cron_field(p, label, lo, hi) for p, (label, lo, hi) in zip(parts, _CRON_FIELDS, strict=True)]
        self.minutes, self.hours, self.days, self.months, weekdays = fields
        self.weekdays = frozenset(d % 7 for d in weekdays)  # 0 and 7 are both Sunday
        self.any_day, self.any_weekday = parts[2] == "*", parts[4] == "*"

    def matches(self, when: datetime) -> bool:
        if when.minute not in self.minutes or when.hour not in self.hours or when.month not in self.months:
            return False
        day_ok = when.day in self.days
        weekday_ok = (when.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return day_ok and weekday_ok
        return day_ok or weekday_ok


def nightly_schedule(settings: Settings) -> CronSchedule:
    try:
        return CronSchedule(settings.nightly_cron)
    except ValueError as exc:
        raise ConfigError(f"SSD_NIGHTLY_CRON: {exc} (got {settings.nightly_cron!r})") from None


def _train_command() -> object | None:
    """The registered ``train`` command, if a later issue has added one."""
    try:
        from bot.commands import registry
    except ImportError:
        return None
    with contextlib.suppress(KeyError):
        return registry.get("train")
    return None


def nightly(conn: redis.Redis, when: datetime) -> list[str]:
    """The nightly hook: hand the night to the ``train`` command once one exists.

    It enqueues ``bot.jobs.run_nightly`` on the train command's queue when both are defined; until
    then it enqueues nothing and says so in the log. Returns the ids of the jobs it enqueued.
    """
    train = _train_command()
    if train is None:
        log.info("nightly: no `train` command is registered yet; nothing to enqueue")
        return []
    try:
        import bot.jobs as jobs
    except ImportError:
        jobs = None
    if not callable(getattr(jobs, "run_nightly", None)):
        log.warning("nightly: `train` is registered but bot.jobs.run_nightly is not; nothing to enqueue")
        return []
    job = queue(getattr(train, "queue", "gpu"), conn).enqueue(
        "bot.jobs.run_nightly", job_id=f"nightly-{when:%Y%m%d-%H%M}"
    )
    log.info("nightly: enqueued %s", job.id)
    return [job.id]


class Scheduler:
    """Every few seconds: queue journaled deliveries; every half minute: report jobs whose worker died;
    at ``SSD_NIGHTLY_CRON``: the nightly hook.

    Several schedulers may run (one per host); a Redis key per cron minute makes the nightly run once.
    """

    def __init__(self, settings: Settings, conn: redis.Redis | None = None,
                 nightly_hook: Callable[[redis.Redis, datetime], list[str]] = nightly,
                 sweep_interval: float = SWEEP_INTERVAL) -> None:
        self.schedule = nightly_schedule(settings)
        self.conn = conn if conn is not None else connect(settings)
        self.inbox = Inbox(engine_for(settings.database_url))
        self.nightly_hook = nightly_hook
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

    def tick(self, now: datetime | None = None) -> None:
        now = now or datetime.now().astimezone()
        try:
            enqueue_pending(self.inbox, self.conn, min_age=PENDING_GRACE)
        except (redis.RedisError, sa.exc.SQLAlchemyError) as exc:
            log.warning("scheduler: inbox not drained this time: %s", exc)
        if self.sweep_interval != math.inf and time.monotonic() >= self._next_sweep:
            self._next_sweep = time.monotonic() + self.sweep_interval
            self.sweep_abandoned()
        if self.schedule.matches(now):
            try:
                if self.conn.set(f"ssd:scheduler:nightly:{now:%Y%m%d%H%M}", "1", nx=True, ex=86400):
                    self.nightly_hook(self.conn, now)
            except redis.RedisError as exc:
                log.warning("scheduler: nightly hook skipped: %s", exc)

    def run(self, stop: threading.Event, interval: float = SCHEDULER_INTERVAL) -> None:
        log.info("scheduler: draining the inbox every %.0f s; nightly hook at cron %r (local time)",
                 interval, self.schedule.expression)
        while not stop.is_set():
            self.tick()
            stop.wait(interval)


def run_scheduler(settings: Settings, interval: float = SCHEDULER_INTERVAL) -> int:
    """``ssd scheduler``: the loop above until SIGTERM/SIGINT."""
    scheduler = Scheduler(settings)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    scheduler.run(stop, interval)
    log.info("scheduler: stopped")
    return 0


# --------------------------------------------------------------------------- serve

def run_serve(settings: Settings) -> int:
    """``ssd serve``: web + a ``default`` worker + a ``cpu,gpu`` worker + the scheduler, supervised."""
    nightly_schedule(settings)  # a bad SSD_NIGHTLY_CRON fails here, not in a child
    web = gunicorn_command()
    children: dict[str, list[str] | Child] = {}
    url = None
    if settings.redis_url is None:
        children["redis"], url = embedded_redis_child(settings)
    env = settings.child_env(**service_env(settings, url))
    prepare_storage(settings)
    print(f"ssd: serving on http://{settings.bind} (data in {settings.data_dir})", flush=True)
    print(f"ssd: Gitea webhook URL: {webhook_url(settings)}", flush=True)
    print(f"ssd: webhook secret:    {settings.webhook_secret}", flush=True)
    print(f"ssd: content type application/json, events: {', '.join(HOOK_EVENTS)}", flush=True)
    if settings.dry_run:
        print(f"ssd: dry-run (SSD_GITEA_URL unset): replies go to {settings.outbox_dir}", flush=True)
    children |= {
        "web": web,
        # The conversation queue gets a worker of its own, so `/ssd help` is answered while an
        # evaluation holds the other worker.
        "worker-default": ssd_command("worker", "--queues", "default"),
        "worker-jobs": ssd_command("worker", "--queues", "cpu,gpu"),
        "scheduler": ssd_command("scheduler"),
    }
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
