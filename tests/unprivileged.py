"""Running code as an unprivileged user (uid 65534) from tests that run as root, as CI does: the sandbox
tests of the executor and of the repository-suite jail drive it the way the documented deployment
(``User=ssd``) would."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from pipeline.executor.sandbox import _blocking_ancestor

NOBODY = 65534
ROOT = str(Path(__file__).resolve().parents[1])
ROOT_ONLY = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None,
    reason="needs root and setpriv to become uid 65534 (CI runs as root)",
)


def as_nobody(argv: list[str], scratch: Path) -> list[str]:
    """``argv`` run as uid 65534. Where the python installation, the venv or this checkout lies under a
    directory uid 65534 cannot enter (pyenv under /root), in a private mount namespace in which a tmpfs
    covers that directory and just those paths are bind-mounted back."""
    become = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *argv]
    needed = sorted({os.path.realpath(p) for p in (sys.base_prefix, sys.prefix, ROOT)})
    blocked = [(path, _blocking_ancestor(path)) for path in needed]
    blocked = [(path, blocker) for path, blocker in blocked if blocker]
    if not blocked:
        return become
    q = shlex.quote
    steps = []
    holds = []
    for path, _ in blocked:
        hold = tempfile.mkdtemp(prefix="hold-", dir=scratch)
        holds.append(hold)
        steps.append(f"mount --bind {q(path)} {q(hold)}")
    for blocker in sorted({blocker for _, blocker in blocked}):
        steps.append(f"mount -t tmpfs -o mode=0755 tmpfs {q(blocker)}")
    for (path, _), hold in zip(blocked, holds, strict=True):
        steps.append(f"mkdir -p {q(path)} && mount --bind {q(hold)} {q(path)}")
    script = " && ".join([*steps, f"exec {shlex.join(become)}"])
    return ["unshare", "-m", "--propagation", "private", "sh", "-c", script]


def nobody_processes() -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["uids", "status"]):
        try:
            if proc.info["uids"].real == NOBODY and proc.info["status"] != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (psutil.Error, AttributeError):
            continue
    return found


@pytest.fixture()
def public_dir() -> Iterator[Path]:
    """A directory uid 65534 can use (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="ssd-unprivileged-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)
