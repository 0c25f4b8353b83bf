"""Run one command (a repository's tests, ``pip install``, a ``patch``) in the executor's sandbox.

The executor's zygote forks Python functions; a test suite is a whole program (``python -m pytest``), so
here a fresh, single-threaded launcher process applies the same facilities from ``pipeline.executor.sandbox``
and then ``exec``s the command: no network (a network namespace without interfaces), a pid namespace,
private tmpfs over the world-writable directories with only the needed paths bind-mounted back, rlimits
(processes included), no-new-privs, the AF_UNIX seccomp filter, and the Landlock allow-list (read the
installation, the environment and the work tree; write only the ``writable`` directories). As root the
command runs as a sandbox uid of its own (killed as a whole afterwards); without root, in a user namespace
where the whole tree is read-only except the ``writable`` directories.

As the executor does, the launcher refuses to run the command when the isolation it obtained lacks
anything untrusted code needs (``sandbox.missing_isolation``) and the operator has not opted in
(``allow_unsafe``, from SSD_UNSAFE_EXECUTION=1): ``run_jailed`` then raises ``UnsafeExecutionError``.
The isolation obtained travels back with every result (``JailResult.isolation``). The parent side
(``run_jailed``) allocates the uid, hands the writable directories to it, enforces the wall-clock limit and
keeps the tail of the output.
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
REFUSED_EXIT = 125  # the launcher's exit status when it refused to run the command
# What a command given the network (``pip install``) reads besides the executor's allow-list: name
# resolution, certificates, pip's configuration, and the OS identity pip puts in its user agent.
NETWORK_READ_PATHS = (
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/host.conf",
    "/etc/gai.conf",
    "/etc/services",
    "/etc/protocols",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/pki",
    "/etc/pip.conf",
    "/etc/os-release",
    "/etc/debian_version",
    "/etc/lsb-release",
)


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


def run_jailed(
    argv: list[str],
    cwd: Path,
    env: dict[str, str],
    timeout_s: float,
    *,
    writable: list[Path],
    expose: list[str] | None = None,
    limits: JailLimits | None = None,
    network: bool = False,
    give_back: bool = False,
    stdin: bytes | None = None,
    uid_base: int = 61000,
    allow_unsafe: bool = False,
) -> JailResult:
    """Run ``argv`` in ``cwd`` sandboxed; only the ``writable`` directories can be written (as root they
    become the sandbox uid's).

    ``network=True`` keeps the network (``pip install`` from the registry) and everything else of the sandbox;
    ``give_back=True`` makes the writable directories root's again afterwards, so that what the command wrote
    there (a venv) cannot be changed by later sandboxed commands. Raises ``UnsafeExecutionError`` (and runs
    nothing) where the sandbox obtained is weaker than untrusted code needs, unless ``allow_unsafe``."""
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
    # /tmp puts /tmp on sys.path; exposing it would undo the private /tmp) and minus ssd-bot's own checkout,
    # as in the executor (its default data directory, ./data, lives there).
    interpreter = [
        p
        for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, *sys.path)
        if os.path.isabs(p) and os.path.realpath(p) not in (*sandbox.SHADOWED_DIRS, PACKAGE_ROOT)
    ]
    visible = [*interpreter, *(expose or []), str(cwd), *map(str, writable)]
    config = {
        "argv": argv,
        "cwd": str(cwd),
        "env": env,
        "uid": uid,
        "expose": visible,
        "writable": [str(p) for p in writable],
        "limits": limits.__dict__,
        "network": network,
        "allow_unsafe": allow_unsafe,
    }
    started = time.monotonic()
    with tempfile.TemporaryFile() as output, tempfile.TemporaryFile() as source:
        source.write(stdin or b"")
        source.seek(0)
        process = subprocess.Popen(
            [sys.executable, "-s", "-c", BOOT.format(root=PACKAGE_ROOT), json.dumps(config)],
            stdin=source,
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd="/",
            env=sandbox.child_environment("/"),
            start_new_session=True,
            close_fds=True,
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
                isolation = json.loads(first[len(MARKER) :])
        else:
            first = b""
        output.seek(max(len(first), size - OUTPUT_TAIL))
        tail = output.read().decode("utf-8", errors="replace")
    if isolation and returncode == REFUSED_EXIT:
        sandbox.refuse_weak_isolation(isolation, allow_unsafe, network_wanted=network)  # the launcher's reason
    return JailResult(returncode, tail, timed_out, round(time.monotonic() - started, 3), isolation)


def main() -> None:
    """The launcher: isolate this fresh process, then exec the command (see the module docstring)."""
    config = json.loads(sys.argv[1])
    limits = config["limits"]
    uid = config["uid"]
    network = bool(config.get("network"))
    # As the executor's bootstrap does: new namespaces here, then the command runs in the first process of
    # the new pid namespace (its /proc, its mounts); this launcher only waits and passes the status on.
    isolation = sandbox.enter_namespaces(want_network=not network)
    if isolation.pid:
        child = os.fork()
        if child:
            _, status = os.waitpid(child, 0)
            os._exit(os.waitstatus_to_exitcode(status) % 256)
    sandbox.isolate_zygote(isolation, limits["tmpfs_size"], expose=config["expose"])
    if isolation.userns and isolation.mount:
        sandbox.make_writable(config["writable"])  # the rest of the tree is read-only for the service's uid
    # Built before the uid changes (as root, every path on the list can still be opened).
    landlock = sandbox.landlock_ruleset(
        [*config["expose"], *(NETWORK_READ_PATHS if network else ())], config["writable"]
    )
    os.chdir(config["cwd"])
    os.umask(0o022)
    for name, value in (
        (resource.RLIMIT_CPU, limits["cpu_s"]),
        (resource.RLIMIT_AS, limits["memory_bytes"]),
        (resource.RLIMIT_FSIZE, limits["fsize_bytes"]),
        (resource.RLIMIT_NOFILE, limits["nofile"]),
        (resource.RLIMIT_CORE, 0),
    ):
        resource.setrlimit(name, (value, value))
    if uid is not None or isolation.userns:
        # Counts the processes of the sandbox uid, or of this user namespace: a fork storm stops there.
        resource.setrlimit(resource.RLIMIT_NPROC, (limits["nproc"], limits["nproc"]))
        isolation.nproc = True
    if uid is not None:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    sandbox.prctl(sandbox.PR_SET_PDEATHSIG, signal.SIGKILL)
    if isolation.userns:
        sandbox.drop_capabilities()  # only needed for the mounts above
    isolation.uid = uid
    isolation.seccomp = sandbox.restrict_zygote(True)  # no-new-privs first: Landlock needs it
    if landlock is not None:
        sandbox.landlock_restrict_self(landlock[0])
        os.close(landlock[0])
        isolation.landlock = landlock[1]
    refused = (
        bool(sandbox.missing_isolation(isolation.as_dict(), network_wanted=network)) and not config["allow_unsafe"]
    )
    # One marker line (stripped by the parent) says what isolation the command actually got.
    sys.stdout.write(MARKER.decode() + json.dumps(isolation.as_dict()) + "\n")
    sys.stdout.flush()
    if refused:
        os._exit(REFUSED_EXIT)
    argv = config["argv"]
    try:
        os.execve(argv[0], argv, config["env"])
    except OSError as exc:
        sys.stderr.write(f"ssd-jail: cannot run {argv[0]}: {exc.strerror}\n")
        os._exit(127)
