"""The sandbox in the documented deployment: the executor driven by an unprivileged user (uid 65534).

CI runs as root; these tests start a small driver script as uid 65534 (``setpriv``) with the venv's
python, so the executor takes its non-root path (an unprivileged user namespace) and real programs probe
it. Where the python installation sits under a directory uid 65534 cannot enter (pyenv under /root), the
driver runs in a private mount namespace in which that installation is bind-mounted back, nothing else.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.config import ConfigError, unsafe_execution_from_env
from pipeline.executor import Executor, UnsafeExecutionError
from pipeline.executor.sandbox import describe_isolation, missing_isolation
from pipeline.types import TestCase as Case
from pipeline.types import TestSpec as Spec
from tests.unprivileged import NOBODY, ROOT, ROOT_ONLY, as_nobody, nobody_processes

SECRET = "fake-secret-4711"

# Each probe prints "contained" only when the sandbox held.
PROBES = {
    "writes": """
        import os
        outside = [DATA + '/journal.sqlite3', DATA + '/new', '/tmp/x', '/var/tmp/x', '/dev/shm/x', '/run/x',
                   ROOT + '/x', os.path.dirname(os.getcwd()) + '/x']
        escaped = []
        for path in outside:
            try:
                with open(path, 'a') as handle:
                    handle.write('owned')
                escaped.append(path)
            except OSError:
                pass
        with open('inside.txt', 'w') as handle:  # the work directory itself is writable
            handle.write('fine')
        print('contained' if not escaped else escaped)
    """,
    "reads": """
        # The service user's 0600 files, outside every shadowed directory: same uid, so modes do not help.
        leaked = []
        for path in (DATA + '/webhook_secret', DATA + '/journal.sqlite3'):
            try:
                with open(path) as handle:
                    leaked.append(handle.read())
            except OSError:
                pass
        import json, numpy  # the installation and site-packages stay readable
        print('contained' if not leaked and numpy.array([1]).sum() == 1 else leaked)
    """,
    "fork_storm": """
        import os, time
        started = 0
        for _ in range(300):
            try:
                if os.fork() == 0:
                    time.sleep(60)
                    os._exit(0)
                started += 1
            except OSError:
                break
        print('contained' if started < 40 else started)
    """,
    "environment": """
        import os
        seen = [k for k, v in os.environ.items() if SECRET in v or k == 'SSD_GITEA_TOKEN']
        pids = [p for p in os.listdir('/proc') if p.isdigit()]
        for pid in pids:
            try:
                with open(f'/proc/{pid}/environ', 'rb') as handle:
                    if SECRET.encode() in handle.read():
                        seen.append(pid)
            except OSError:
                pass
        # pid 1 is the zygote; the service's processes are not even visible
        print('contained' if not seen and len(pids) < 10 else (seen, pids))
    """,
    "loopback": """
        import socket
        try:
            socket.create_connection(('127.0.0.1', 6379), timeout=2).close()
            print('connected')
        except OSError:
            print('contained')
    """,
}

DRIVER = """
import json, os, sys
sys.path.insert(0, {root!r})
os.environ["SSD_GITEA_TOKEN"] = {secret!r}  # what the work horse's environment would hold
from pipeline.executor import Executor
from pipeline.types import TestCase, TestSpec

spec = TestSpec(kind="stdio", cases=(TestCase("", "contained\\n"),), timeout_s=5.0)
header = "DATA = {data!r}\\nROOT = {root!r}\\nSECRET = {secret!r}\\n"
results = {{"uid": os.getuid()}}
with Executor(workers=1) as ex:
    results["isolation"] = ex.isolation
    for name, program in json.loads(sys.argv[1]).items():
        outcome = ex.run_one(header + program, spec)
        results[name] = [outcome.verdict, outcome.detail]
    results["afterwards"] = ex.run_one("print('contained')", spec).verdict
print(json.dumps(results))
"""


@pytest.fixture()
def data_dir() -> Iterator[Path]:
    """The service user's data dir (0700, owned by uid 65534), outside /tmp: the sandbox's private tmpfs
    over /tmp would hide it anyway, as it would not hide a real one (/var/lib/ssd-bot)."""
    path = Path(tempfile.mkdtemp(prefix=".test-data-", dir=ROOT))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@ROOT_ONLY
def test_unprivileged_executor_contains_samples(public_dir: Path, data_dir: Path) -> None:
    assert not nobody_processes(), "another test left processes of uid 65534"
    data = data_dir  # the journal, the webhook secret
    for name, text in (("journal.sqlite3", "journal"), ("webhook_secret", SECRET)):
        (data / name).write_text(text)
        (data / name).chmod(0o600)
        os.chown(data / name, NOBODY, NOBODY)
    data.chmod(0o700)
    os.chown(data, NOBODY, NOBODY)
    driver = public_dir / "driver.py"
    driver.write_text(DRIVER.format(root=ROOT, secret=SECRET, data=str(data)))
    probes = {name: textwrap.dedent(body) for name, body in PROBES.items()}
    done = subprocess.run(
        as_nobody([sys.executable, str(driver), json.dumps(probes)], public_dir),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=str(public_dir),
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(public_dir)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.splitlines()[-1])
    assert results["uid"] == NOBODY
    isolation = results["isolation"]
    assert isolation["userns"] and isolation["pid"] and isolation["network"] and isolation["mount"], isolation
    assert isolation["landlock"] >= 1, isolation  # this kernel has Landlock (ABI 7 on the CI box)
    assert missing_isolation(isolation) == []
    for name in PROBES:
        assert results[name][0] == "pass", (name, results[name])
    assert results["afterwards"] == "pass"
    assert (data / "journal.sqlite3").read_text() == "journal" and not (data / "new").exists()
    assert not (Path(ROOT) / "x").exists()
    assert not nobody_processes()  # the fork storm's sleepers died with the sample


@ROOT_ONLY
def test_weaker_sandbox_is_refused_unless_the_operator_opts_in() -> None:
    spec = Spec(kind="stdio", cases=(Case("", "ok\n"),))
    with Executor(workers=1, network_isolation=False) as ex, pytest.raises(UnsafeExecutionError) as refused:
        ex.run_one("print('ok')", spec)
    assert "network namespace" in str(refused.value) and "SSD_UNSAFE_EXECUTION=1" in str(refused.value)
    with Executor(workers=1, network_isolation=False, allow_unsafe=True) as ex:
        assert ex.run_one("print('ok')", spec).verdict == "pass"
        assert "UNSAFE" in ex.isolation_summary() and "network namespace" in ex.isolation_summary()


def test_isolation_summary_and_opt_in_setting() -> None:
    full = {
        "network": True,
        "mount": True,
        "uid": None,
        "userns": True,
        "pid": True,
        "nproc": True,
        "seccomp": True,
        "landlock": 7,
    }
    assert missing_isolation(full) == []
    assert describe_isolation(full) == (
        "sandbox: user namespace, no network, private mounts, pid namespace, process limit, seccomp, landlock"
    )
    assert "UNSAFE: lacks a process limit" in describe_isolation({**full, "nproc": False})
    # Without Landlock, samples of the service's uid could read its files; a uid of their own suffices.
    assert "UNSAFE: lacks a read restriction" in describe_isolation({**full, "landlock": 0})
    assert missing_isolation({**full, "landlock": 0, "userns": False, "uid": 60001}) == []
    assert [len(missing_isolation({})), describe_isolation({})] == [6, "sandbox: unknown"]
    assert unsafe_execution_from_env({}) is False
    assert unsafe_execution_from_env({"SSD_UNSAFE_EXECUTION": "1"}) is True
    with pytest.raises(ConfigError, match="SSD_UNSAFE_EXECUTION"):
        unsafe_execution_from_env({"SSD_UNSAFE_EXECUTION": "sure"})
