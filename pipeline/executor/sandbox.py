"""Operating-system isolation for sandboxed children (Linux only, stdlib only: the zygote imports this).

Three levels:

- ``enter_namespaces`` runs in the bootstrap process the executor starts (which then forks the zygote and
  serves as the assert-kind judge, outside the zygote's pid namespace): new mount, IPC, pid and network
  namespaces; without root, inside an unprivileged user namespace (mapping only the service's own uid).
- ``isolate_zygote`` runs in the zygote, pid 1 of the new pid namespace: its own /proc, private root-owned
  tmpfs mounts over the world-writable directories and /run (/tmp, /var/tmp, /dev/shm, /run; the database
  sockets in /run are gone), and in a user namespace the rest of the tree read-only (samples share the
  service's uid there, so its own files must not be writable). No network at all: loopback is down, so
  even 127.0.0.1 is unreachable. In a user namespace the zygote then drops every capability.
  ``restrict_zygote`` sets no-new-privs and a seccomp filter refusing AF_UNIX sockets; the zygote's
  environment is already the scrubbed one children get; all of it is inherited.
- ``enter_child`` runs in each forked child before any untrusted byte is compiled: the zygote's Landlock
  ruleset (``landlock_ruleset``: read only the installation, write only the work dir), own session,
  descriptors, work directory, rlimits, then (as root) the drop to an unprivileged uid/gid (after the
  limits, so RLIMIT_NPROC is enforced and the hard limits can no longer be raised). In a user namespace
  RLIMIT_NPROC counts the processes of that namespace only, so it holds there too.

Each zygote owns a sandbox uid of its own (``allocate_uid``, a flock held for the zygote's lifetime), so the
process limit counts only that worker's sample and ``kill_uid`` can kill everything a sample left behind in
one atomic ``kill(-1)``, even a fork bomb that changed its process group.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import resource
import signal
import stat
import tempfile
from dataclasses import dataclass

CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
CLONE_NEWPID = 0x20000000
MS_NOSUID, MS_NODEV, MS_NOEXEC = 2, 4, 8
AT_FDCWD = -100
AT_RECURSIVE = 0x8000
MOUNT_ATTR_RDONLY = 1
SYS_MOUNT_SETATTR = 442  # the same number on x86_64 and aarch64
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2

# World-writable directories that get a private, root-owned (0755) tmpfs in the zygote's mount namespace.
# /run also holds database sockets (/run/postgresql, /run/mysqld): filesystem unix sockets cross network
# namespaces, so it is covered too.
SHADOWED_DIRS = ("/tmp", "/var/tmp", "/dev/shm", "/run")
SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")


def prctl(option: int, value: int) -> None:
    _check(_libc.prctl(option, ctypes.c_ulong(value), 0, 0, 0), f"prctl({option})")


def unshare(flags: int) -> None:
    # Python 3.11 has no os.unshare (3.12 does).
    _check(_libc.unshare(flags), "unshare")


def mount(source: str, target: str, fstype: str | None, flags: int, data: str | None) -> None:
    _check(
        _libc.mount(
            source.encode(),
            target.encode(),
            fstype.encode() if fstype else None,
            ctypes.c_ulong(flags),
            data.encode() if data else None,
        ),
        f"mount {target}",
    )


@dataclass
class Isolation:
    """What the zygote actually obtained; reported with every result and in every report's footer."""

    network: bool = False  # in a network namespace without interfaces (even 127.0.0.1 is unreachable)
    mount: bool = False  # private tmpfs over the world-writable directories; read-only rest when userns
    uid: int | None = None  # the unprivileged uid samples run as (root deployments: one per zygote)
    userns: bool = False  # an unprivileged user namespace: samples have no capabilities, / is read-only
    pid: bool = False  # a pid namespace: samples see and can signal only their own processes
    nproc: bool = False  # RLIMIT_NPROC holds (a uid of our own, or a user namespace of our own)
    subreaper: bool = False
    seccomp: bool = False  # socket(AF_UNIX) is refused in children
    landlock: int = 0  # the kernel's Landlock ABI when samples read only the allow-list (0: not restricted)

    def as_dict(self) -> dict:
        return {
            "network": self.network,
            "mount": self.mount,
            "uid": self.uid,
            "userns": self.userns,
            "pid": self.pid,
            "nproc": self.nproc,
            "subreaper": self.subreaper,
            "seccomp": self.seccomp,
            "landlock": self.landlock,
        }


class UnsafeExecutionError(RuntimeError):
    """The sandbox obtained on this machine is weaker than untrusted code needs, and no opt-in was given."""


def missing_isolation(isolation: dict, network_wanted: bool = False) -> list[str]:
    """What a sound sandbox needs and this one lacks (empty: untrusted code may run). ``network_wanted``:
    the command was given the network on purpose (``pip install`` from the registry), so its absence of a
    network namespace is not a lack."""
    missing = []
    if not isolation.get("network") and not network_wanted:
        missing.append("a network namespace (loopback services such as Redis would be reachable)")
    if not isolation.get("mount"):
        missing.append("a private mount namespace (samples could write outside their work directory)")
    if isolation.get("uid") is None and not isolation.get("userns"):
        missing.append("a uid or user namespace of their own (samples would run as the service user)")
    if not isolation.get("pid"):
        missing.append("a pid namespace (samples could see and signal the service's processes)")
    if not isolation.get("nproc"):
        missing.append("a process limit (fork storms)")
    if isolation.get("uid") is None and not isolation.get("landlock"):
        missing.append("a read restriction (Landlock; samples of the service's uid could read its 0600 files)")
    return missing


def refuse_weak_isolation(isolation: dict, allow_unsafe: bool, network_wanted: bool = False) -> None:
    """Raise UnsafeExecutionError when ``isolation`` (what a sandbox actually obtained) lacks anything
    untrusted code needs, unless the operator opted in (``allow_unsafe``: SSD_UNSAFE_EXECUTION=1)."""
    missing = missing_isolation(isolation, network_wanted)
    if missing and not allow_unsafe:
        raise UnsafeExecutionError(
            "refusing to run untrusted programs: the sandbox on this machine lacks "
            + "; ".join(missing)
            + ". Run the workers as root, or allow unprivileged user namespaces (kernel.unprivileged_"
            "userns_clone=1, user.max_user_namespaces > 0, no AppArmor restriction, and a kernel with Landlock, "
            "5.13+, enabled in its LSM list), or opt in to the weaker sandbox with SSD_UNSAFE_EXECUTION=1."
        )


def describe_isolation(isolation: dict) -> str:
    """One line for a report's footer."""
    if not isolation:
        return "sandbox: unknown"
    parts = []
    if isolation.get("uid") is not None:
        parts.append(f"uid {isolation['uid']}")
    elif isolation.get("userns"):
        parts.append("user namespace")
    for key, label in (
        ("network", "no network"),
        ("mount", "private mounts"),
        ("pid", "pid namespace"),
        ("nproc", "process limit"),
        ("seccomp", "seccomp"),
        ("landlock", "landlock"),
    ):
        if isolation.get(key):
            parts.append(label)
    missing = missing_isolation(isolation)
    text = "sandbox: " + (", ".join(parts) or "none")
    return text + (" (UNSAFE: lacks " + "; ".join(m.split(" (")[0] for m in missing) + ")" if missing else "")


def allocate_uid(base: int, count: int = 1000) -> tuple[int, int] | None:
    """Lock a sandbox uid no other zygote on this machine uses; returns (uid, lock_fd) or None.

    The lock is an flock on a file per uid; it is released when the holding process dies, so a crashed
    zygote frees its uid without clean-up.
    """
    lock_dir = "/run/ssd-sandbox" if os.access("/run", os.W_OK) else os.path.join(tempfile.gettempdir(), "ssd-sandbox")
    os.makedirs(lock_dir, mode=0o755, exist_ok=True)
    info = os.lstat(lock_dir)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o022:
        raise PermissionError(f"{lock_dir} must be a directory owned by uid {os.geteuid()}, not group/world-writable")
    for uid in range(base, base + count):
        fd = os.open(os.path.join(lock_dir, f"uid-{uid}.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return uid, fd
    return None


def _world_traversable(path: str) -> bool:
    info = os.stat(path)
    return bool(info.st_mode & stat.S_IXOTH)


def _blocking_ancestor(path: str) -> str | None:
    """The top-most directory on the way to ``path`` that other users cannot enter (e.g. /root), if any."""
    current = "/"
    for part in path.strip("/").split("/"):
        current = os.path.join(current, part)
        if os.path.isdir(current) and not _world_traversable(current):
            return current
    return None


def _covers(top: str, path: str) -> bool:
    return path == top or path.startswith(top.rstrip("/") + "/")


def private_mounts(expose: list[str], tmpfs_size: str) -> None:
    """In a fresh mount namespace: empty root-owned tmpfs over the world-writable directories, and over any
    0700 directory (pyenv under /root) that hides the Python installation from the sandbox uid; then the
    paths in ``expose`` (the installation, site-packages) are bind-mounted back at their own places, from
    descriptors opened before they were covered. Programs import the standard library and see nothing
    else of those directories."""
    mount("none", "/", None, MS_REC | MS_PRIVATE, None)  # nothing we mount propagates to the host
    shadows = [p for p in SHADOWED_DIRS if os.path.isdir(p) and not os.path.islink(p)]
    needed = sorted({os.path.realpath(p) for p in expose if p and os.path.isdir(p)})
    blockers = sorted({b for b in map(_blocking_ancestor, needed) if b})
    covers = [*shadows, *(b for b in blockers if not any(_covers(top, b) for top in shadows))]
    keep: list[tuple[str, int]] = []
    for path in needed:
        if any(_covers(top, path) for top in covers) and not any(_covers(kept, path) for kept, _ in keep):
            keep.append((path, os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)))
    for top in covers:
        size = tmpfs_size if top in shadows else "1m"
        mount("tmpfs", top, "tmpfs", 0, f"mode=0755,size={size},nr_inodes=65536")
    for path, fd in keep:
        os.makedirs(path, mode=0o755, exist_ok=True)
        mount(f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC, None)
        os.close(fd)


def enter_namespaces(want_network: bool = True) -> Isolation:
    """In the bootstrap process, before it forks the zygote: new mount, IPC, pid (for its next child, the
    zygote) and network namespaces; without root inside a new user namespace (where the kernel allows
    unprivileged ones), mapping only our own uid and gid."""
    result = Isolation()
    uid, gid = os.geteuid(), os.getegid()
    flags = CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWPID | (CLONE_NEWNET if want_network else 0)
    if uid != 0:
        flags |= CLONE_NEWUSER
    try:
        unshare(flags)
    except OSError:
        return result
    if uid != 0:
        for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
            with open(f"/proc/self/{name}", "w") as handle:
                handle.write(text)
        result.userns = True
    result.network = want_network
    result.pid = True
    return result


def isolate_zygote(isolation: Isolation, tmpfs_size: str = "256m", expose: list[str] | None = None) -> None:
    """In the zygote (pid 1 of the new pid namespace when there is one): a /proc of that namespace, the
    private mounts, and in a user namespace a read-only view of everything else. Updates ``isolation``."""
    try:
        prctl(PR_SET_CHILD_SUBREAPER, 1)  # escaped grandchildren are re-parented to us and can be reaped
        isolation.subreaper = True
    except OSError:
        pass
    if not isolation.pid:
        return
    try:
        mount("none", "/", None, MS_REC | MS_PRIVATE, None)  # nothing we mount propagates to the host
        if isolation.userns:
            # The service user's own files (its data directory, the journal, the webhook secret) would be
            # writable by samples of the same uid: the whole tree becomes read-only first.
            attr = (ctypes.c_uint64 * 4)(MOUNT_ATTR_RDONLY, 0, 0, 0)
            _check(
                _libc.syscall(SYS_MOUNT_SETATTR, AT_FDCWD, b"/", AT_RECURSIVE, ctypes.byref(attr), ctypes.sizeof(attr)),
                "mount_setattr /",
            )
        mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None)
        private_mounts(expose or [], tmpfs_size)
        isolation.mount = True
    except OSError:
        pass


def confine_writes(workdir_parent: str, workdir: str, tmpfs_size: str) -> None:
    """User namespace only (samples share the zygote's uid, so ownership protects nothing): the work
    directory becomes a tmpfs of its own, kept for the zygote's life and emptied after each sample
    (``empty_dir``); everything around it, its parent and the private tmpfs over /tmp, /run..., becomes
    read-only, so a sample can write nowhere else and leave nothing for the next one."""
    mount("tmpfs", workdir_parent, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0711,size=1m,nr_inodes=64")
    os.mkdir(workdir, 0o700)
    mount("tmpfs", workdir, "tmpfs", MS_NOSUID | MS_NODEV, f"mode=0700,size={tmpfs_size},nr_inodes=65536")
    attr = (ctypes.c_uint64 * 4)(MOUNT_ATTR_RDONLY, 0, 0, 0)
    for path in (*SHADOWED_DIRS, workdir_parent):
        if os.path.isdir(path) and not os.path.islink(path) and os.path.ismount(path):
            _check(
                _libc.syscall(SYS_MOUNT_SETATTR, AT_FDCWD, path.encode(), 0, ctypes.byref(attr), ctypes.sizeof(attr)),
                f"mount_setattr {path}",
            )


def make_writable(paths: list[str]) -> None:
    """User namespace only, after ``isolate_zygote`` made the tree read-only: each directory in ``paths``
    becomes writable again, as a bind mount of itself whose read-only flag is cleared (mounts beneath it
    stay read-only). A command that must write its work tree (a repository's tests) writes there only."""
    attr = (ctypes.c_uint64 * 4)(0, MOUNT_ATTR_RDONLY, 0, 0)  # attr_set, attr_clr, propagation, userns_fd
    for path in sorted(set(paths)):  # parents first: a child's own mount goes on top of its parent's
        mount(path, path, None, MS_BIND | MS_REC, None)
        _check(
            _libc.syscall(SYS_MOUNT_SETATTR, AT_FDCWD, path.encode(), 0, ctypes.byref(attr), ctypes.sizeof(attr)),
            f"mount_setattr {path}",
        )


def empty_dir(path: str) -> None:
    """Remove everything in ``path`` (not the directory itself), whatever modes a sample set; raises
    OSError (or RecursionError for absurd depth) when it cannot."""
    os.chmod(path, 0o700)
    for entry in os.scandir(path):
        if entry.is_dir(follow_symlinks=False):
            empty_dir(entry.path)
            os.rmdir(entry.path)
        else:
            os.unlink(entry.path)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


def drop_capabilities() -> None:
    """Clear every capability (those a user namespace's creator holds in it); children inherit none."""
    header = _CapHeader(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
    data = (ctypes.c_uint32 * 6)()
    _check(_libc.capset(ctypes.byref(header), ctypes.byref(data)), "capset")


def own_host_pid() -> int:
    """Our pid as the host sees it; read before /proc is replaced by the pid namespace's own."""
    with open("/proc/self/stat") as handle:
        return int(handle.read().split()[0])


def kill_all_in_namespace() -> None:
    """From pid 1 of a pid namespace: SIGKILL every other process in it, at once."""
    try:
        os.kill(-1, signal.SIGKILL)
    except OSError as exc:
        if exc.errno != errno.ESRCH:
            raise


@dataclass
class ChildLimits:
    cpu_s: int
    memory_bytes: int
    fsize_bytes: int
    nofile: int
    nproc: int
    own_user_namespace: bool = False


def child_environment(workdir: str) -> dict[str, str]:
    """Built from scratch: nothing of the service's environment (tokens, URLs) reaches a sample."""
    return {
        "PATH": SAFE_PATH,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "HOME": workdir,
        "TMPDIR": workdir,
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }


def make_workdir(path: str, uid: int | None) -> None:
    """A fresh directory the sandboxed uid (only) may write; the zygote removes it after the sample. The path
    is the same for every sample of a zygote, so HOME and TMPDIR are set once in the zygote's environment."""
    os.mkdir(path, 0o700)
    if uid is not None:
        os.chown(path, uid, uid)


def enter_child(
    workdir: str, limits: ChildLimits, uid: int | None, landlock: int | None, keep_fds: dict[int, int]
) -> None:
    """Turn a freshly forked zygote child into a sandbox. ``landlock`` is the zygote's ruleset fd (or None);
    ``keep_fds`` maps target fd -> source fd.

    Everything that is the same for every sample (environment, no-new-privs, the seccomp filter) was done
    once in the zygote and is inherited: on this machine each page a child touches costs a copy-on-write
    fault, so the per-sample work here is kept to what must differ."""
    os.setsid()  # own session and process group: the zygote kills the whole group
    if landlock is not None:
        landlock_restrict_self(landlock)  # first: the dup2s below may reuse its descriptor number
    for target, source in keep_fds.items():
        os.dup2(source, target, inheritable=True)
    os.closerange(max(keep_fds) + 1, 1 << 16)  # the zygote's request/response pipes and the uid lock
    os.chdir(workdir)
    os.umask(0o077)
    for name, value, hard in (
        (resource.RLIMIT_CPU, limits.cpu_s, limits.cpu_s + 1),  # SIGXCPU at soft, SIGKILL at hard
        (resource.RLIMIT_AS, limits.memory_bytes, limits.memory_bytes),
        (resource.RLIMIT_FSIZE, limits.fsize_bytes, limits.fsize_bytes),
        (resource.RLIMIT_NOFILE, limits.nofile, limits.nofile),
        (resource.RLIMIT_CORE, 0, 0),
    ):
        resource.setrlimit(name, (value, hard))
    if uid is not None or limits.own_user_namespace:
        # Only meaningful for a uid (or user namespace) of our own: RLIMIT_NPROC counts every process of
        # the real uid (in that namespace).
        resource.setrlimit(resource.RLIMIT_NPROC, (limits.nproc, limits.nproc))
    if uid is not None:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    # After the uid change (which clears it): die with the zygote.
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def restrict_zygote(seccomp: bool) -> bool:
    """No-new-privs (setuid binaries such as su or ping cannot gain privileges) and, if asked, the seccomp
    filter, on the zygote itself once its set-up is done; every child inherits both. Returns whether the
    filter is active."""
    prctl(PR_SET_NO_NEW_PRIVS, 1)
    if not seccomp:
        return False
    try:
        return block_unix_sockets()
    except OSError:
        return False


# seccomp: socket(AF_UNIX, ...) fails with EACCES, so a sample cannot connect to a filesystem socket we did
# not think of (a service's gunicorn socket, a database elsewhere). socketpair() stays allowed (asyncio and
# multiprocessing pipes use it). Syscall numbers and audit arch per machine; other machines skip the filter.
_SECCOMP_ARCH = {"x86_64": (0xC000003E, 41), "aarch64": (0xC00000B7, 198)}
_BPF_LD_W_ABS, _BPF_JEQ_K, _BPF_RET_K = 0x20, 0x15, 0x06
_SECCOMP_RET_ALLOW, _SECCOMP_RET_ERRNO = 0x7FFF0000, 0x00050000
AF_UNIX = 1


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


def _build_filter() -> _SockFprog | None:
    arch = _SECCOMP_ARCH.get(os.uname().machine)
    if arch is None:
        return None
    audit_arch, nr_socket = arch
    x32_socket = nr_socket | 0x40000000 if audit_arch == 0xC000003E else nr_socket  # x86's x32 ABI alias
    program = [
        (_BPF_LD_W_ABS, 0, 0, 4),  # seccomp_data.arch
        (_BPF_JEQ_K, 1, 0, audit_arch),
        (_BPF_RET_K, 0, 0, _SECCOMP_RET_ERRNO | errno.ENOSYS),  # a foreign ABI (int 0x80): refused
        (_BPF_LD_W_ABS, 0, 0, 0),  # seccomp_data.nr
        (_BPF_JEQ_K, 1, 0, nr_socket),
        (_BPF_JEQ_K, 0, 3, x32_socket),
        (_BPF_LD_W_ABS, 0, 0, 16),  # args[0] (low half): the address family
        (_BPF_JEQ_K, 0, 1, AF_UNIX),
        (_BPF_RET_K, 0, 0, _SECCOMP_RET_ERRNO | errno.EACCES),
        (_BPF_RET_K, 0, 0, _SECCOMP_RET_ALLOW),
    ]
    filters = (_SockFilter * len(program))(*[_SockFilter(*op) for op in program])
    prog = _SockFprog(len(program), filters)
    prog._keep = filters  # the array must outlive the struct that points at it
    return prog


# Built once in the zygote: a forked child only makes the prctl call (fewer pages touched per sample).
_FILTER = _build_filter()


def _install_filter() -> None:
    _check(_libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(_FILTER), 0, 0), "seccomp")


def block_unix_sockets() -> bool:
    """Install the filter (needs no-new-privs); False where this machine has no known syscall table."""
    if _FILTER is None:
        return False
    _install_filter()
    return True


def kill_uid(uid: int) -> None:
    """SIGKILL every process of ``uid`` at once: kill(-1) from a helper running as that uid.

    The kernel walks the task list under a lock that fork() also takes, so a fork bomb cannot outrun it.
    """
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            os.kill(-1, signal.SIGKILL)
        except OSError:
            pass
        finally:
            os._exit(0)
    while True:
        try:
            os.waitpid(pid, 0)
            return
        except ChildProcessError:
            return
        except InterruptedError:
            continue


def child_pids() -> list[int]:
    """Our direct children (includes adopted orphans, since we are a subreaper)."""
    pids: list[int] = []
    for tid in os.listdir(f"/proc/{os.getpid()}/task"):
        try:
            with open(f"/proc/{os.getpid()}/task/{tid}/children") as handle:
                pids.extend(int(p) for p in handle.read().split())
        except OSError:
            continue
    return pids


def kill_pid_and_group(pid: int) -> None:
    for action in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
        try:
            action()
        except OSError as exc:
            if exc.errno not in (errno.ESRCH, errno.EPERM):
                raise


# Landlock: each sample may read only an allow-list (the Python installation and the libraries it loads,
# /proc of its pid namespace, a few devices) and write only its work directory. In a user namespace samples
# share the service's uid, so file modes alone would let them read its 0600 files (the webhook secret, the
# journal, an env file with the Gitea token); Landlock closes that whatever the paths are. The ruleset is
# built once in the zygote; a child only calls landlock_restrict_self (one syscall per sample).
SYS_LANDLOCK_CREATE_RULESET, SYS_LANDLOCK_ADD_RULE, SYS_LANDLOCK_RESTRICT_SELF = 444, 445, 446  # all arches
LANDLOCK_CREATE_RULESET_VERSION = 1
LANDLOCK_RULE_PATH_BENEATH = 1
FS_EXECUTE, FS_WRITE_FILE, FS_READ_FILE, FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
FS_TRUNCATE, FS_IOCTL_DEV = 1 << 14, 1 << 15
FS_FILE_RIGHTS = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV  # what a file rule may grant
FS_READ = FS_EXECUTE | FS_READ_FILE | FS_READ_DIR
# Read-only system paths every program may need: shared libraries, executables, the loader's cache, the
# world-readable user database (pwd.getpwuid, getpass.getuser), CPU topology (os.cpu_count, BLAS). The
# rest of /etc and the service user's home are not on it.
SYSTEM_READ_PATHS = (
    "/usr",
    "/lib",
    "/lib32",
    "/lib64",
    "/bin",
    "/sbin",
    "/etc/ld.so.cache",
    "/etc/localtime",
    "/etc/passwd",
    "/etc/group",
    "/etc/nsswitch.conf",
    "/proc",
    "/sys/devices/system/cpu",
)
DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def landlock_abi() -> int:
    """The kernel's Landlock ABI version; 0 when it has none (or it is disabled)."""
    version = _libc.syscall(
        SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(LANDLOCK_CREATE_RULESET_VERSION)
    )
    return max(0, version)


def landlock_ruleset(read_paths: list[str], write_paths: list[str]) -> tuple[int, int] | None:
    """A ruleset fd allowing reads beneath ``read_paths`` (and SYSTEM_READ_PATHS, DEVICES) and everything
    beneath ``write_paths``; every other file access is refused once applied. Returns (fd, ABI), or None
    where the kernel has no Landlock. Paths that do not exist are skipped."""
    abi = landlock_abi()
    if abi < 1:
        return None
    handled = (1 << 13) - 1  # ABI 1: execute ... make_sym
    if abi >= 2:
        handled |= 1 << 13  # refer (rename/link across directories)
    if abi >= 3:
        handled |= FS_TRUNCATE
    if abi >= 5:
        handled |= FS_IOCTL_DEV
    handled_attr = ctypes.c_uint64(handled)  # struct landlock_ruleset_attr, first field only
    ruleset = _libc.syscall(
        SYS_LANDLOCK_CREATE_RULESET,
        ctypes.byref(handled_attr),
        ctypes.c_size_t(ctypes.sizeof(handled_attr)),
        ctypes.c_uint32(0),
    )
    if ruleset < 0:
        code = ctypes.get_errno()
        raise OSError(code, f"landlock_create_ruleset: {os.strerror(code)}")
    rules = [(p, FS_READ) for p in (*read_paths, *SYSTEM_READ_PATHS)]
    rules += [(p, FS_READ_FILE | FS_WRITE_FILE | FS_TRUNCATE) for p in DEVICES]
    rules += [(p, handled) for p in write_paths]
    try:
        for path, access in rules:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                if not stat.S_ISDIR(os.fstat(fd).st_mode):
                    access &= FS_FILE_RIGHTS
                rule = _PathBeneath(access & handled, fd)
                _check(
                    _libc.syscall(SYS_LANDLOCK_ADD_RULE, ruleset, LANDLOCK_RULE_PATH_BENEATH, ctypes.byref(rule), 0),
                    f"landlock_add_rule {path}",
                )
            finally:
                os.close(fd)
    except OSError:
        os.close(ruleset)
        raise
    os.set_inheritable(ruleset, False)
    return ruleset, abi


def landlock_restrict_self(ruleset: int) -> None:
    """Apply the ruleset to this process and everything it starts (needs no-new-privs, set in the zygote)."""
    _check(_libc.syscall(SYS_LANDLOCK_RESTRICT_SELF, ruleset, 0), "landlock_restrict_self")
