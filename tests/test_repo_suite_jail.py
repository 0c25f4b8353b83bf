"""The repository-suite sandbox (``pipeline.repo_suite.jail``) holds as the executor's does: as root and as an
unprivileged user (uid 65534, the documented deployment), a repository's own tests cannot read the service
user's files, write outside their work tree or reach loopback services; where isolation is missing, nothing
runs without the operator's opt-in. The pattern follows tests/test_executor_unprivileged.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from pipeline.executor.sandbox import missing_isolation
from pipeline.repo_suite.jail import run_jailed
from tests.unprivileged import NOBODY, ROOT, ROOT_ONLY, as_nobody, nobody_processes

# A repository's test file: each test passes only when the sandbox held (the last one: when it is usable).
ESCAPES = """
import os, socket, pytest

DATA = {data!r}
ROOT = {root!r}


def test_cannot_read_the_service_users_files():
    for name in ("secret", "public"):  # 0600 of the service user; 0644 outside the allow-list
        with pytest.raises(OSError):
            open(os.path.join(DATA, name)).read()


def test_cannot_write_outside_the_work_tree():
    for path in (DATA + "/open/x", DATA + "/x", ROOT + "/x", "/tmp/x", "/var/tmp/x", "/dev/shm/x",
                 os.path.dirname(os.getcwd()) + "/x"):
        with pytest.raises(OSError):
            with open(path, "a") as handle:
                handle.write("owned")


def test_cannot_reach_redis_on_loopback():
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", 6379), timeout=2).close()


def test_can_write_its_work_tree():
    with open("inside.txt", "w") as handle:
        handle.write("fine")
    assert open("inside.txt").read() == "fine"
"""

DRIVER = """
import json, sys
sys.path.insert(0, {root!r})
from pipeline.repo_suite.jail import run_jailed
from pipeline.executor.sandbox import child_environment

work = {work!r}
result = run_jailed([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_escapes.py"], work,
                    child_environment(work), 120, writable=[work])
print(json.dumps({{"returncode": result.returncode, "output": result.output, "isolation": result.isolation}}))
"""

# As uid 65534 in a user namespace of its own whose limit on nested user namespaces is 0 (the kernel's
# own switch, user.max_user_namespaces=0, set in that namespace only): neither the jail nor the executor
# gets the user namespace a non-root sandbox needs.
NO_USERNS_DRIVER = """
import ctypes, json, os, sys
sys.path.insert(0, {root!r})
from pipeline.executor import Executor, UnsafeExecutionError
from pipeline.executor.sandbox import CLONE_NEWUSER, child_environment, describe_isolation, unshare
from pipeline.repo_suite.jail import run_jailed

uid, gid = os.geteuid(), os.getegid()
unshare(CLONE_NEWUSER)
for name, text in (("setgroups", "deny"), ("uid_map", f"{{uid}} {{uid}} 1"), ("gid_map", f"{{gid}} {{gid}} 1")):
    with open(f"/proc/self/{{name}}", "w") as handle:
        handle.write(text)
with open("/proc/sys/user/max_user_namespaces", "w") as handle:
    handle.write("0")

work = {work!r}
argv = [sys.executable, "-c", "open('ran', 'w').write('x')"]
results = {{}}
try:
    run_jailed(argv, work, child_environment(work), 60, writable=[work])
    results["jail"] = "ran"
except UnsafeExecutionError as exc:
    results["jail"] = str(exc)
results["ran_without_opt_in"] = os.path.exists(os.path.join(work, "ran"))
opted = run_jailed(argv, work, child_environment(work), 60, writable=[work], allow_unsafe=True)
results["opt_in"] = [opted.returncode, os.path.exists(os.path.join(work, "ran")), describe_isolation(opted.isolation)]
try:
    with Executor(workers=1) as ex:
        results["executor"] = ex.isolation_summary()
except UnsafeExecutionError as exc:
    results["executor"] = str(exc)
print(json.dumps(results))
"""


def service_data(owner: int) -> Path:
    """The service user's data directory, outside /tmp (whose private tmpfs would hide it anyway): a 0600
    secret, a world-readable file and a world-writable directory, none of them on the sandbox's lists."""
    path = Path(tempfile.mkdtemp(prefix=".test-jail-data-", dir=ROOT))
    (path / "secret").write_text("webhook secret")
    (path / "secret").chmod(0o600)
    (path / "public").write_text("not for samples either")
    (path / "public").chmod(0o644)
    (path / "open").mkdir()
    (path / "open").chmod(0o777)
    for item in (path, path / "secret", path / "public", path / "open"):
        os.chown(item, owner, owner)
    path.chmod(0o755)
    return path


def repository(work: Path, data: Path, owner: int) -> None:
    (work / "test_escapes.py").write_text(textwrap.dedent(ESCAPES.format(data=str(data), root=ROOT)))
    work.chmod(0o755)
    for item in (work, work / "test_escapes.py"):
        os.chown(item, owner, owner)


def assert_contained(returncode: int, output: str, isolation: dict, data: Path) -> None:
    assert returncode == 0 and "4 passed" in output, output[-3000:]
    assert missing_isolation(isolation) == [], isolation
    assert isolation["landlock"] >= 1 and isolation["network"] and isolation["pid"], isolation
    assert (data / "secret").read_text() == "webhook secret"
    assert not (data / "x").exists() and not (data / "open" / "x").exists() and not (Path(ROOT) / "x").exists()


@ROOT_ONLY
def test_repository_tests_are_contained_as_root(public_dir: Path) -> None:
    data = service_data(0)
    try:
        work = public_dir / "work"
        work.mkdir()
        repository(work, data, 0)
        result = run_jailed(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_escapes.py"],
            work,
            {"PATH": "/usr/bin:/bin", "HOME": str(work)},
            120,
            writable=[work],
        )
        assert_contained(result.returncode, result.output, result.isolation, data)
        assert result.isolation["uid"] >= 61000
        assert (work / "inside.txt").read_text() == "fine"
    finally:
        shutil.rmtree(data, ignore_errors=True)


@ROOT_ONLY
def test_repository_tests_are_contained_as_an_unprivileged_user(public_dir: Path) -> None:
    assert not nobody_processes(), "another test left processes of uid 65534"
    data = service_data(NOBODY)
    data.chmod(0o700)  # the service user's own directory, as /var/lib/ssd-bot would be
    try:
        work = public_dir / "work"
        work.mkdir()
        repository(work, data, NOBODY)
        driver = public_dir / "driver.py"
        driver.write_text(DRIVER.format(root=ROOT, work=str(work)))
        done = subprocess.run(
            as_nobody([sys.executable, str(driver)], public_dir),
            capture_output=True,
            text=True,
            timeout=180,
            cwd=str(public_dir),
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(public_dir)},
        )
        assert done.returncode == 0, done.stderr[-3000:]
        result = json.loads(done.stdout.splitlines()[-1])
        assert result["isolation"]["userns"] and result["isolation"]["mount"], result["isolation"]
        assert_contained(result["returncode"], result["output"], result["isolation"], data)
        assert (work / "inside.txt").read_text() == "fine"
        assert not nobody_processes()
    finally:
        shutil.rmtree(data, ignore_errors=True)


@ROOT_ONLY
def test_without_user_namespaces_nothing_runs_unless_the_operator_opts_in(public_dir: Path) -> None:
    work = public_dir / "work"
    work.mkdir()
    os.chown(work, NOBODY, NOBODY)
    driver = public_dir / "driver.py"
    driver.write_text(NO_USERNS_DRIVER.format(root=ROOT, work=str(work)))
    done = subprocess.run(
        as_nobody([sys.executable, str(driver)], public_dir),
        capture_output=True,
        text=True,
        timeout=180,
        cwd=str(public_dir),
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(public_dir)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.splitlines()[-1])
    for refusal in (results["jail"], results["executor"]):
        assert refusal.startswith("refusing to run untrusted programs"), refusal
        assert "user namespace" in refusal and "SSD_UNSAFE_EXECUTION=1" in refusal
    assert results["ran_without_opt_in"] is False
    returncode, ran, footer = results["opt_in"]
    assert returncode == 0 and ran
    assert "UNSAFE: lacks" in footer and "pid namespace" in footer and "landlock" in footer, footer
