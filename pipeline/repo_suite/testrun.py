"""Run a repository's tests in the sandbox and read per-test results from JUnit XML.

Test ids are pytest node ids (``tests/test_ops.py::TestX::test_y[1]``), rebuilt from the ``file`` and
``classname`` attributes of pytest's ``xunit1`` JUnit flavour; a file that fails to import shows up as one
``error`` entry named by the file. The XML is written by untrusted code, so it is read with size limits,
without following a symlink, and refused if it declares a DTD (entity expansion).
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.executor.sandbox import child_environment
from pipeline.repo_suite.environment import Environment
from pipeline.repo_suite.jail import JailLimits, run_jailed
from pipeline.repo_suite.repo_config import RepoConfig
from pipeline.repo_suite.workspace import Checkout

MAX_JUNIT_BYTES = 32 << 20
STATUS_RANK = {"passed": 0, "skipped": 1, "failed": 2, "error": 3}  # a worse status wins for a repeated id


@dataclass
class TestRun:
    __test__ = False  # not a pytest test class, despite the name
    results: dict[str, str]  # test id -> passed | failed | error | skipped
    returncode: int
    timed_out: bool
    duration_s: float  # the command itself (sandbox start-up included)
    output: str = ""
    isolation: dict = field(default_factory=dict)
    junit_error: str = ""  # why no results could be read, if none

    def passed(self, test: str) -> bool:
        return self.results.get(test) == "passed"


def _test_id(case: ET.Element) -> str:
    name = case.get("name", "")
    classname = case.get("classname", "")
    file = case.get("file", "")
    if not classname:  # a collection error: pytest names the module in "name"
        return name.replace(".", "/") + ".py" if not name.endswith(".py") else name
    if not file:
        parts = classname.split(".")
        file = "/".join(parts) + ".py"
        return f"{file}::{name}"
    module = file[:-3].replace("/", ".") if file.endswith(".py") else file
    classes = classname[len(module) + 1 :].split(".") if classname.startswith(module + ".") else []
    return "::".join([file, *[c for c in classes if c], name])


def parse_junit(data: bytes) -> dict[str, str]:
    if len(data) > MAX_JUNIT_BYTES:
        raise ValueError(f"JUnit XML over {MAX_JUNIT_BYTES} bytes")
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise ValueError("JUnit XML with a DTD is refused")
    root = ET.fromstring(data)
    results: dict[str, str] = {}
    for case in root.iter("testcase"):
        status = "passed"
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                status = {"failure": "failed", "error": "error", "skipped": "skipped"}[child.tag]
                if status != "skipped":
                    break
        test = _test_id(case)
        if STATUS_RANK[status] >= STATUS_RANK.get(results.get(test, "passed"), 0):
            results[test] = status
    return results


def _read_private(path: Path) -> bytes:
    """Read a file the sandbox wrote, never through a symlink and never more than the cap."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError("not a regular file")
        if info.st_size > MAX_JUNIT_BYTES:
            raise ValueError(f"JUnit XML over {MAX_JUNIT_BYTES} bytes")
        with os.fdopen(fd, "rb", closefd=False) as handle:
            return handle.read(MAX_JUNIT_BYTES + 1)
    finally:
        os.close(fd)


def expand_command(config: RepoConfig, python: Path, junit: Path, files: list[str]) -> list[str]:
    argv: list[str] = []
    for part in config.test_command:
        if part == "{files}":
            argv.extend(files)
        else:
            argv.append(part.replace("{python}", str(python)).replace("{junit}", str(junit)))
    return argv


def run_tests(
    checkout: Checkout,
    environment: Environment,
    files: list[str],
    config: RepoConfig,
    limits: JailLimits | None = None,
    allow_unsafe: bool = False,
) -> TestRun:
    """Run ``files`` (test paths relative to the work tree) with the repository's test command, sandboxed
    (``run_jailed``: raises ``UnsafeExecutionError`` where the sandbox is too weak, unless ``allow_unsafe``)."""
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=checkout.base))
    try:
        os.chmod(run_dir, 0o755)
        for name in ("home", "tmp", "out"):
            (run_dir / name).mkdir()
        junit = run_dir / "out" / "junit.xml"
        env = {**child_environment(str(run_dir / "home")), **config.env}
        env.update(
            TMPDIR=str(run_dir / "tmp"),
            PATH=f"{environment.path / 'bin'}:{env['PATH']}",
            VIRTUAL_ENV=str(environment.path),
        )
        argv = expand_command(config, environment.python, junit, files)
        started = time.monotonic()
        result = run_jailed(
            argv,
            checkout.work_tree,
            env,
            config.timeout_s,
            writable=[checkout.work_tree, run_dir / "home", run_dir / "tmp", run_dir / "out"],
            expose=[str(environment.path), str(run_dir)],
            limits=limits,
            allow_unsafe=allow_unsafe,
        )
        duration = round(time.monotonic() - started, 3)
        results: dict[str, str] = {}
        junit_error = ""
        try:
            results = parse_junit(_read_private(junit))
        except FileNotFoundError:
            junit_error = "the test command wrote no JUnit XML"
        except (OSError, ValueError, ET.ParseError) as exc:
            junit_error = f"unreadable JUnit XML: {exc}"
        return TestRun(
            results, result.returncode, result.timed_out, duration, result.output, result.isolation, junit_error
        )
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
