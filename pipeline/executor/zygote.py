"""The fork server: one per worker, single-threaded, warm; forks one sandboxed child per sample.

Started by ``pool.Executor`` as ``python -s -P -c "...; main()"`` with an environment built from scratch.
That bootstrap process enters the namespaces (``sandbox.enter_namespaces``), forks the zygote as pid 1 of
the new pid namespace and stays outside it as the judge of assert samples (``runner.serve_judge``), linked
to the zygote by a socket pair. The zygote isolates itself once (``sandbox.isolate_zygote``), pre-imports
the stdlib modules programs use, then serves requests on stdin and answers on stdout, both as
length-prefixed JSON frames:

    request  {"op": "run", "id": ..., "program": ..., "kind": ..., "inputs": [...], ...}
             {"op": "stop", "id": ...}   (the executor found a failing test: fail fast)
             {"op": "withdraw", "id": ...}   (a queued request another worker will run: answered "withdrawn")
             {"op": "exit"}
    events   {"ev": "ready", "isolation": {...}}
             {"ev": "test", "id", "i", "status": ok|timeout|memory|error, "stdout"?, "result"?, "detail"}
             {"ev": "done", "id", "status": ..., "child_done": bool, "stderr", "duration_s", "tests", ...}
             {"ev": "withdrawn", "id"}   (that queued request will not run here)

"test" events stream as tests end (stdio/call: the executor may answer "stop"); the zygote accepts the
program's frames only in protocol order and sets ``child_done`` itself. The single test of an "assert"
sample is the judge's answer and travels inside "done" ("tests"). Requests are handled in order; the executor may queue
one small request behind the running one, so the next fork does not wait for a round trip, and withdraws it
when the running sample turns out long.

Expected outputs never reach this process (and so never a child forked from it): the executor compares.
The zygote supervises the child: per-test and per-sample deadlines, output caps, SIGKILL of the process
group, then of the whole sandbox uid, and reaps everything (it is a child subreaper) before it answers.
"""

from __future__ import annotations

import collections
import contextlib
import gc
import importlib
import json
import os
import select
import shutil
import socket
import struct
import sys
import tempfile
import time
from typing import Any

from pipeline.executor import runner, sandbox

FRAME = struct.Struct("!I")
STATUS_CODES = {status: code for code, status in runner.END_KINDS.items()}
STDERR_CAP = 64 * 1024
DRAIN_S = 5.0  # how long clean-up may wait for killed processes to disappear


def write_frame(fd: int, message: dict[str, Any]) -> None:
    data = json.dumps(message).encode("utf-8")
    view = memoryview(FRAME.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view) :]


def _read_available(fd: int, limit: int = 1 << 62) -> tuple[bytes, bool]:
    """What is readable now from a non-blocking fd, up to about ``limit`` bytes (a flooding writer must not
    keep us reading forever); (data, at_eof)."""
    chunks, size = [], 0
    while size <= limit:
        try:
            chunk = os.read(fd, 1 << 16)
        except BlockingIOError:
            break
        if not chunk:
            return b"".join(chunks), True
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks), False


class Zygote:
    def __init__(self, config: dict[str, Any], isolation: sandbox.Isolation, judge: socket.socket) -> None:
        self.config = config
        self.judge = judge
        self.host_pid = sandbox.own_host_pid()
        self.uid: int | None = None
        self.lock_fd: int | None = None
        if os.geteuid() == 0 and config.get("drop_privileges", True):
            allocated = sandbox.allocate_uid(int(config.get("uid_base", 60000)))
            if allocated is None:  # never fall back to running untrusted code as root
                raise RuntimeError("no free sandbox uid (all 1000 from uid_base are locked)")
            self.uid, self.lock_fd = allocated
        needed = [sys.prefix, sys.base_prefix, sys.exec_prefix, *sys.path]
        self.isolation = isolation
        sandbox.isolate_zygote(isolation, config.get("tmpfs_size", "256m"), expose=needed)
        self.isolation.uid = self.uid
        self.isolation.nproc = self.uid is not None or isolation.userns
        for name in runner.PRELOAD:
            importlib.import_module(name)
        runner.premake_streams()
        # Programs must not import ssd-bot's own packages by accident (a program's ``import bench``).
        self.child_sys_path = [p for p in sys.path if p and p != config.get("package_root")]
        # One work-directory path for all samples (recreated empty each time), in a root-owned parent the
        # sandbox uid may only traverse; in the private /tmp when the mount namespace exists.
        self.workdir_parent = tempfile.mkdtemp(prefix="ssd-zygote-", dir="/tmp" if self.isolation.mount else None)
        os.chmod(self.workdir_parent, 0o711)
        self.workdir = os.path.join(self.workdir_parent, "sample")
        # In a user namespace the work directory is a mount of its own, kept and emptied per sample.
        self.fixed_workdir = isolation.userns and isolation.mount
        if self.fixed_workdir:
            sandbox.confine_writes(self.workdir_parent, self.workdir, config.get("tmpfs_size", "256m"))
        # Samples read only the installation and write only beneath the work directory's parent (the
        # work directory itself is recreated per sample as root, so the rule names its parent).
        self.landlock: int | None = None
        if config.get("landlock", True):
            built = sandbox.landlock_ruleset(
                [sys.prefix, sys.base_prefix, sys.exec_prefix, *self.child_sys_path], [self.workdir_parent]
            )
            if built is not None:
                self.landlock, self.isolation.landlock = built
        os.environ.clear()
        os.environ.update(sandbox.child_environment(self.workdir))
        self.stopping = False
        self.inbox = bytearray()
        self.messages: collections.deque[dict[str, Any]] = collections.deque()
        self.stdin_closed = False
        self.kill_everything()  # whatever a crashed predecessor with this uid left behind
        self._reap_all()
        if isolation.userns:
            sandbox.drop_capabilities()  # only needed for the mounts above; children inherit none
        self.isolation.seccomp = sandbox.restrict_zygote(bool(config.get("seccomp", True)))
        gc.collect()
        gc.freeze()  # children then do not dirty (copy) the pre-imported objects' pages when the GC runs

    # ------------------------------------------------------------------ serving

    def serve(self) -> None:
        os.set_blocking(0, False)
        write_frame(1, {"ev": "ready", "isolation": self.isolation.as_dict(), "pid": self.host_pid})
        while not self.stopping:
            request = self._next_request()
            if request is None or request.get("op") == "exit":
                break
            if request.get("op") == "run":
                write_frame(1, self.run_sample(request))
            # a "stop" for a sample that already finished is stale: ignore it

    def _take_messages(self) -> None:
        """Move complete frames from the stdin buffer to the message queue; note end of file."""
        data, eof = _read_available(0)
        self.inbox += data
        while len(self.inbox) >= FRAME.size:
            (length,) = FRAME.unpack_from(self.inbox)
            if len(self.inbox) < FRAME.size + length:
                break
            self.messages.append(json.loads(self.inbox[FRAME.size : FRAME.size + length]))
            del self.inbox[: FRAME.size + length]
        if eof:
            self.stdin_closed = True

    def _next_request(self) -> dict[str, Any] | None:
        while not self.messages:
            if self.stdin_closed:
                return None
            select.select([0], [], [])
            self._take_messages()
        return self.messages.popleft()

    def _check_stdin(self, sample_id: Any) -> bool:
        """Handle executor messages during a sample; True when the sample must be stopped now."""
        self._take_messages()
        stop = False
        kept: collections.deque[dict[str, Any]] = collections.deque()
        for message in self.messages:
            if message.get("op") == "exit":
                self.stopping = stop = True
            elif message.get("op") == "stop":
                stop = stop or message.get("id") == sample_id  # stale stops are dropped
            elif message.get("op") == "withdraw":
                # a queued request the executor gives to another worker; too late once it started
                queued = [m for m in kept if m.get("op") == "run" and m.get("id") == message.get("id")]
                for request in queued:
                    kept.remove(request)
                    write_frame(1, {"ev": "withdrawn", "id": request["id"]})
            else:
                kept.append(message)
        self.messages = kept
        if self.stdin_closed:
            self.stopping = stop = True  # the executor went away: stop this sample and exit
        return stop

    # ------------------------------------------------------------------ one sample

    def run_sample(self, request: dict[str, Any]) -> dict[str, Any]:
        sample_id = request["id"]
        kind = request["kind"]
        timeout = float(request["timeout_s"])
        grace = 0.25 + 0.1 * timeout
        n_tests = max(1, len(request.get("inputs") or ()))
        out_cap = int(request["output_limit"])
        limits = sandbox.ChildLimits(
            cpu_s=int(timeout * (n_tests + 1)) + 2,
            memory_bytes=int(request["memory_bytes"]),
            fsize_bytes=max(
                int(request["fsize_bytes"]),
                max((len(t.encode("utf-8")) for t in request.get("inputs") or ()), default=0) + 1,
            ),
            nofile=int(request["nofile"]),
            nproc=int(request["nproc"]),
            own_user_namespace=self.isolation.userns,
        )
        workdir = self.workdir
        if self.fixed_workdir:
            sandbox.empty_dir(workdir)  # normally empty already: emptied after each sample
        else:
            if os.path.lexists(workdir):  # only if a previous clean-up failed: normally removed after each sample
                shutil.rmtree(workdir, ignore_errors=True)
            sandbox.make_workdir(workdir, self.uid)
        request = {**request, "sys_path": self.child_sys_path}
        # The program's frames: stdio/call to us (we accept them only in protocol order), assert to the judge
        # (which runs check and calls the program's functions back over the second pipe).
        ctrl_r, ctrl_w = os.pipe()
        back_r, back_w = os.pipe() if kind == "assert" else (None, None)
        err_r, err_w = os.pipe()
        # stdio: the child's stdout, and a "go" pipe on which it waits after each test, so that all of a test's
        # output has been drained from the pipe before the next test writes any.
        out_r, out_w = os.pipe() if kind == "stdio" else (None, None)
        go_r, go_w = os.pipe() if kind == "stdio" else (None, None)
        devnull = os.open(os.devnull, os.O_RDWR)
        start = time.monotonic()
        pid = os.fork()
        if pid == 0:  # ---- the child
            try:
                sandbox.enter_child(
                    workdir,
                    limits,
                    self.uid,
                    self.landlock,
                    {
                        0: devnull,
                        1: out_w if out_w is not None else devnull,
                        2: err_w,
                        runner.CTRL_FD: ctrl_w,
                        runner.GO_FD: go_r if go_r is not None else back_r if back_r is not None else devnull,
                    },
                )
                runner.run(request)
            finally:
                os._exit(70)
        # ---- the zygote
        for fd in (ctrl_w, err_w, out_w, go_r, back_r, devnull):
            if fd is not None:
                os.close(fd)
        if kind == "assert":
            judge_request = {
                "id": sample_id,
                "assert_code": request["assert_code"],
                "timeout_s": timeout,
                "output_limit": out_cap,
            }
            try:
                socket.send_fds(self.judge, [json.dumps(judge_request).encode()], [ctrl_r, back_w])
            finally:
                os.close(ctrl_r)
                os.close(back_w)
            ctrl_r = None
        pidfd = os.pidfd_open(pid)
        readers = [fd for fd in (ctrl_r, out_r, err_r) if fd is not None]
        for fd in readers:
            os.set_blocking(fd, False)

        frames = runner.FrameReader(payload_cap=out_cap + 64)
        out_buf = bytearray()
        out_total = 0
        err_buf = bytearray()
        reason = ""  # why the zygote killed the child, if it did
        violation = ""
        child_done = False
        judged = False  # assert: the judge answered for this sample
        syntax_detail: str | None = None
        test_deadline = start + timeout + grace  # compile / set-up phase
        sample_deadline = start + min(
            float(request.get("sample_timeout_s") or 1e9), (timeout + grace) * (n_tests + 1) + 5
        )
        open_readers = set(readers)
        held_events: list[dict[str, Any]] = []
        total = len(request.get("inputs") or ())
        expected = 0  # stdio/call: the next test index the program may report
        in_test = False
        set_up = kind != "call"  # call: the module set-up reports first
        if kind == "stdio" and total == 0:
            child_done = True

        def emit_test(index: int, kind_code: int, payload: bytes) -> None:
            event: dict[str, Any] = {"ev": "test", "id": sample_id, "i": index, "status": runner.END_KINDS[kind_code]}
            if kind_code == runner.END_OK:
                if kind == "stdio":
                    event["stdout"] = out_buf.decode("utf-8", "replace")
                elif kind == "call":
                    event["result"] = payload.decode("utf-8", "replace")
            else:
                event["detail"] = payload.decode("utf-8", "replace")
            if kind == "assert":
                held_events.append(event)  # one test: nothing to stop early, it travels with "done"
            else:
                write_frame(1, event)

        def on_frame(code: int, index: int, payload: bytes) -> str:
            """One frame of the program (stdio/call); returns a protocol violation, or ""."""
            nonlocal child_done, syntax_detail, test_deadline, expected, in_test, set_up, out_total
            if code == runner.SYNTAX and expected == 0 and not in_test:
                syntax_detail = payload.decode("utf-8", "replace")
                return ""
            if code == runner.BEGIN and set_up and not in_test and index == expected:
                in_test = True
                test_deadline = time.monotonic() + timeout + grace
                return ""
            if code not in runner.END_KINDS:
                return f"protocol violation: frame kind {code} for test {index} out of order"
            if index == runner.SETUP_INDEX and not set_up:
                set_up = True
                if code != runner.END_OK:
                    emit_test(0, code, payload)
                child_done = code == runner.END_OK and total == 0
            elif in_test and index == expected:
                if out_r is not None and out_r in open_readers:
                    pump(out_r)  # the child flushed before END: its output is in the pipe
                emit_test(index, code, payload)
                in_test = False
                expected += 1
                child_done = code == runner.END_OK and expected == total  # only we say a sample finished
                if code == runner.END_OK and go_w is not None and expected < total:
                    # lock-step: the child waits for this byte to start the next test
                    with contextlib.suppress(OSError):
                        os.write(go_w, b"g")
            else:
                return f"protocol violation: a result for test {index} out of order (expected test {expected})"
            out_buf.clear()
            out_total = 0  # the output limit is per test
            test_deadline = time.monotonic() + timeout + grace
            return ""

        def pump(fd: int) -> None:
            nonlocal out_total, reason, violation
            data, eof = _read_available(fd, out_cap - out_total if fd == out_r else 4 * out_cap)
            if eof:
                open_readers.discard(fd)
            if fd == out_r:
                out_total += len(data)
                if out_total > out_cap:
                    reason = reason or "output_limit"
                else:
                    out_buf.extend(data)
            elif fd == err_r:
                err_buf.extend(data[: max(0, STDERR_CAP - len(err_buf))])
            elif fd == ctrl_r:
                for code, index, payload in frames.feed(data):
                    if not violation:
                        violation = on_frame(code, index, payload)
                violation = violation or frames.violation
                if violation:
                    reason = reason or "protocol"

        def on_judge() -> None:
            nonlocal judged, child_done, syntax_detail
            answer = self.judge.recv(1 << 20)
            if not answer:
                raise RuntimeError("the judge process ended")
            verdict = json.loads(answer)
            if verdict.get("id") != sample_id:
                return  # a late answer about a sample we already gave up on
            judged = True
            status, detail = verdict["status"], verdict.get("detail") or ""
            if status == "syntax":
                syntax_detail = detail
            elif status in STATUS_CODES:
                emit_test(0, STATUS_CODES[status], detail.encode())
                child_done = status == "ok"

        exited = False
        # assert: the sample ends with the judge's answer (it answers promptly once the program is gone)
        while not (judged if kind == "assert" else exited) and not reason:
            now = time.monotonic()
            deadline = min(test_deadline, sample_deadline)
            if now >= deadline:
                reason = "timeout"
                break
            watch = [*open_readers] + ([] if exited else [pidfd]) + ([] if self.stdin_closed else [0])
            if kind == "assert":
                watch.append(self.judge.fileno())
            ready, _, _ = select.select(watch, [], [], deadline - now)
            for fd in ready:
                if fd == pidfd:
                    exited = True
                elif kind == "assert" and fd == self.judge.fileno():
                    on_judge()
                elif fd == 0:
                    if self._check_stdin(sample_id):
                        reason = reason or "stopped"
                else:
                    pump(fd)
        # Kill the group while the child is still unreaped: its pid (= the group id) cannot be reused yet.
        sandbox.kill_pid_and_group(pid)
        _, wait_status = os.waitpid(pid, 0)
        os.close(pidfd)
        for fd in list(open_readers):
            pump(fd)  # what the child wrote just before it exited
        duration = time.monotonic() - start
        leaked = self._clean_up()
        for fd in (*readers, go_w):
            if fd is not None:
                os.close(fd)
        if self.fixed_workdir:
            try:
                sandbox.empty_dir(workdir)
            except (OSError, RecursionError):
                self.stopping = True  # a work directory we cannot empty: a fresh zygote takes over
        else:
            shutil.rmtree(workdir, ignore_errors=True)

        if syntax_detail is not None:
            status = "syntax"
        elif reason:
            status = reason
        elif os.WIFSIGNALED(wait_status):
            status = "signal"
        else:
            status = "exited"
        return {
            "ev": "done",
            "id": sample_id,
            "status": status,
            "child_done": child_done,
            "detail": syntax_detail or violation,
            "signal": os.WTERMSIG(wait_status) if os.WIFSIGNALED(wait_status) else None,
            "exit_code": os.WEXITSTATUS(wait_status) if os.WIFEXITED(wait_status) else None,
            "stderr": err_buf.decode("utf-8", "replace"),
            "output_bytes": out_total,
            "duration_s": duration,
            "leaked": leaked,
            "workdir": workdir,
            "tests": held_events,
        }

    # ------------------------------------------------------------------ clean-up

    def kill_everything(self) -> None:
        """SIGKILL every process a sample may have left: the whole pid namespace, or the sandbox uid."""
        if self.isolation.pid and os.getpid() == 1:
            sandbox.kill_all_in_namespace()
        elif self.uid is not None:
            sandbox.kill_uid(self.uid)

    def _reap_all(self) -> bool:
        """Reap every exited child; True when none is left (alive or zombie)."""
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return True
            if pid == 0:
                return False

    def _clean_up(self) -> int:
        """Kill and reap everything the sample left (its group, escaped descendants); returns how many
        processes could not be reaped in time (0 is the normal case)."""
        deadline = time.monotonic() + DRAIN_S
        while not self._reap_all():
            # Orphans were re-parented to us (subreaper); some may have left the group.
            self.kill_everything()
            for child in sandbox.child_pids():
                sandbox.kill_pid_and_group(child)
            if time.monotonic() > deadline:
                return len(sandbox.child_pids())
            time.sleep(0.0003)
        return 0


def main() -> None:
    """The bootstrap process: enter the namespaces, fork the zygote (pid 1 of the new pid namespace), then
    serve as the judge for assert samples. The judge lives outside the zygote's pid namespace, so no
    sample can see or signal it; it holds no descriptor of the executor's protocol pipes."""
    config = json.loads(sys.argv[1])
    sys.path.extend(p for p in config.get("site_packages", ()) if p not in sys.path)
    sys.stdout = sys.stderr  # fd 1 carries the protocol; a stray print must not corrupt it
    if config.get("cpu") is not None:
        os.sched_setaffinity(0, {config["cpu"]})
    isolation = sandbox.enter_namespaces(bool(config.get("network_isolation", True)))
    judge_end, zygote_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pid = os.fork()
    if pid == 0:
        judge_end.close()
        _zygote_main(config, isolation, zygote_end)
        os._exit(0)
    zygote_end.close()
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)  # only the zygote holds the protocol pipes: when it dies, the executor sees EOF
    os.dup2(devnull, 1)
    os.close(devnull)
    sandbox.prctl(sandbox.PR_SET_DUMPABLE, 0)
    if isolation.userns:
        sandbox.drop_capabilities()
    try:
        runner.serve_judge(judge_end)
    finally:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)


def _zygote_main(config: dict[str, Any], isolation: sandbox.Isolation, judge: socket.socket) -> None:
    zygote = Zygote(config, isolation, judge)
    try:
        zygote.serve()
    finally:
        zygote.kill_everything()
        zygote._reap_all()
        shutil.rmtree(zygote.workdir_parent, ignore_errors=True)


if __name__ == "__main__":
    main()
