"""Run one command (a repository's tests, a ``patch``) in the executor's sandbox.

The executor's zygote forks Python functions; a test suite is a whole program (``python -m pytest``), so
here a fresh, single-threaded launcher process applies the same facilities from ``pipeline.executor.sandbox``
and then ``exec``s the command: no network (a network namespace without interfaces), private tmpfs over the
world-writable directories with only the needed paths bind-mounted back, rlimits, no-new-privs, the
AF_UNIX seccomp filter, and as root a sandbox uid of its own (killed as a whole afterwards). The parent
side (``run_jailed``) allocates the uid, hands the writable directories to it, enforces the wall-clock
limit and keeps the tail of the output.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.executor import sandbox

PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
BOOT = "import sys; sys.path.insert(0, {root!r}); from pipeline.repo_suite.jail import main; main()"
OUTPUT_TAIL = 16 * 1024
MARKER = b"\x00ssd-jail "  # the launcher's first line: the isolation it obtained


@dataclass(frozen=True)
class JailLimits:
    cpu_s: int = 600
    memory_bytes: int = 8 << 30
    fsize_bytes: int = 512 << 20
    nofile: int = 1024
    nproc: int = 512
    tmpfs_size: str = "512m"


@dataclass
class JailResult:
    returncode: int
    output: str  # the last OUTPUT_TAIL bytes of stdout+stderr
    timed_out: bool
    duration_s: float
    isolation: dict = field(default_factory=dict)


def _chown_tree(path: Path, uid: int) -> None:
    os.lchown(path, uid, uid)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.lchown(os.path.join(root, name), uid, uid)


def run_jailed(argv: list[str], cwd: Path, env: dict[str, str], timeout_s: float, *,
               writable: list[Path], expose: list[str] | None = None, limits: JailLimits | None = None,
               network: bool = False, give_back: bool = False, stdin: bytes | None = None,
               uid_base: int = 61000) -> JailResult:
    """Run ``argv`` in ``cwd`` sandboxed; ``writable`` directories become the sandbox uid's (as root).

    ``network=True`` keeps the network (``pip install`` from the registry) and everything else of the sandbox;
    ``give_back=True`` makes the writable directories root's again afterwards, so that what the command wrote
    there (a venv) cannot be changed by later sandboxed commands."""
    limits = limits or JailLimits()
    uid, lock_fd = None, None
    if os.geteuid() == 0:
        allocated = sandbox.allocate_uid(uid_base)
        if allocated is None:  # never fall back to running untrusted code as root
            raise RuntimeError("no free sandbox uid")
        uid, lock_fd = allocated
        for path in writable:
            _chown_tree(path, uid)
    # The interpreter and its import path, minus a world-writable directory as a whole (a script run from
    # /tmp puts /tmp on sys.path; exposing it would undo the private /tmp).
    interpreter = [p for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, *sys.path)
                   if os.path.isabs(p) and os.path.realpath(p) not in sandbox.SHADOWED_DIRS]
    visible = [*interpreter, *(expose or []), str(cwd), *map(str, writable)]
    config = {"argv": argv, "cwd": str(cwd), "env": env, "uid": uid, "expose": visible,
              "limits": limits.__dict__, "network": network}
    started = time.monotonic()
    with tempfile.TemporaryFile() as output, tempfile.TemporaryFile() as source:
        source.write(stdin or b"")
        source.seek(0)
        process = subprocess.Popen(
            [sys.executable, "-s", "-c", BOOT.format(root=PACKAGE_ROOT), json.dumps(config)],
            stdin=source, stdout=output, stderr=subprocess.STDOUT, cwd="/",
            env=sandbox.child_environment("/"), start_new_session=True, close_fds=True,
        )
        timed_out = False
        try:
            returncode = process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            sandbox.kill_pid_and_group(process.pid)
            returncode = process.wait()
        finally:
            if uid is not None:
                sandbox.kill_uid(uid)  # whatever the command left running
                if give_back:
                    for path in writable:
                        _chown_tree(path, os.geteuid())
            if lock_fd is not None:
                os.close(lock_fd)
        size = output.seek(0, os.SEEK_END)
        output.seek(0)
        first = output.readline(4096)
        isolation = {}
        if first.startswith(MARKER):
            with contextlib.suppress(ValueError):
                isolation = json.loads(first[len(MARKER):])
        else:
            first = b""
        output.seek(max(len(first), size - OUTPUT_TAIL))
        tail = output.read().decode("utf-8", errors="replace")
    return JailResult(returncode, tail, timed_out, round(time.monotonic() - started, 3), isolation)


def main() -> None:
    """The launcher: isolate this fresh process, then exec the command (see the module docstring)."""
    config = json.loads(sys.argv[1])
    limits = config["limits"]
    uid = config["uid"]
    # As the executor's bootstrap does: new namespaces here, then the command runs in the first process of
    # the new pid namespace (its /proc, its mounts); this launcher only waits and passes the status on.
    isolation = sandbox.enter_namespaces(want_network=not config.get("network"))
    if isolation.pid:
        child = os.fork()
        if child:
            _, status = os.waitpid(child, 0)
            os._exit(os.waitstatus_to_exitcode(status) % 256)
    sandbox.isolate_zygote(isolation, limits["tmpfs_size"], expose=config["expose"])
    os.chdir(config["cwd"])
    os.umask(0o022)
    for name, value in ((resource.RLIMIT_CPU, limits["cpu_s"]), (resource.RLIMIT_AS, limits["memory_bytes"]),
                        (resource.RLIMIT_FSIZE, limits["fsize_bytes"]), (resource.RLIMIT_NOFILE, limits["nofile"]),
                        (resource.RLIMIT_CORE, 0)):
        resource.setrlimit(name, (value, value))
    if uid is not None:
        resource.setrlimit(resource.RLIMIT_NPROC, (limits["nproc"], limits["nproc"]))
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    sandbox.prctl(sandbox.PR_SET_PDEATHSIG, signal.SIGKILL)
    isolation.uid = uid
    isolation.seccomp = sandbox.restrict_zygote(True)
    # One marker line (stripped by the parent) says what isolation the command actually got.
    sys.stdout.write(MARKER.decode() + json.dumps(isolation.as_dict()) + "\n")
    sys.stdout.flush()
    argv = config["argv"]
    try:
        os.execve(argv[0], argv, config["env"])
    except OSError as exc:
        sys.stderr.write(f"ssd-jail: cannot run {argv[0]}: {exc.strerror}\n")
        os._exit(127)
