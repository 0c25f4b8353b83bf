"""The Python environment a repository's tests run in: built once per dependency-files hash, then reused.

An environment is a venv made from the interpreter running ssd-bot that sees that interpreter's packages
(``--system-site-packages``, or when ssd-bot itself runs from a venv, where "system" would mean the base
Python's packages instead, a ``.pth`` file naming the venv's site-packages), plus ``pip install -r`` of each
requirements file the repository has (``RepoConfig.requirements``). The install runs in the sandbox as its
uid with the network on (the registry), since a requirement can be a local package whose build runs code;
the venv is root's again afterwards. It reads the requirements of the base commit, before any patch: a
model's patch cannot make the service install anything. A repository without requirement lines needs
nothing from the network.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

INSTALL_TIMEOUT_S = 1800


class EnvironmentSetupError(RuntimeError):
    """The environment could not be built (the message carries the tail of pip's output)."""


@dataclass(frozen=True)
class Environment:
    path: Path
    key: str
    built: bool  # False: reused from the cache
    seconds: float

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"


def dependency_files(work_tree: Path, names: tuple[str, ...]) -> list[Path]:
    """The requirements files present (regular files inside the tree), in ``names`` order."""
    found = []
    for name in names:
        path = work_tree / name
        if path.is_file() and not path.is_symlink() and path.resolve().is_relative_to(work_tree.resolve()):
            found.append(path)
    return found


def _has_requirements(path: Path) -> bool:
    return any(
        line.strip() and not line.strip().startswith("#")
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines()
    )


def environment_key(work_tree: Path, names: tuple[str, ...]) -> str:
    """Hash of the interpreter and the dependency files' names and contents."""
    digest = hashlib.sha256(f"{sys.executable}\0{sys.version}\0".encode())
    for path in dependency_files(work_tree, names):
        digest.update(path.relative_to(work_tree).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:20]


def _parent_site_packages() -> list[str]:
    paths = [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    paths += [p for p in sys.path if p.endswith(("site-packages", "dist-packages"))]
    return list(dict.fromkeys(p for p in paths if os.path.isdir(p)))


class EnvironmentCache:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def ensure(self, work_tree: Path, names: tuple[str, ...], allow_unsafe: bool = False) -> Environment:
        """The environment for ``work_tree``'s dependency files, built (in the sandbox) if not cached;
        ``allow_unsafe``: the operator's opt-in to a weaker sandbox (``run_jailed``)."""
        started = time.monotonic()
        key = environment_key(work_tree, names)
        path = self.root / key
        if (path / "ssd-ready").is_file():
            return Environment(path, key, False, round(time.monotonic() - started, 3))
        staging = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=self.root))
        try:
            venv = staging / "venv"
            # The venv's python is a symlink to this interpreter; the venv's own path is baked into nothing
            # but pyvenv.cfg, so renaming it into place afterwards is fine.
            # From a venv, "system" site-packages would mean the base interpreter's, not the ones ssd-bot
            # runs with; the .pth below names those. Outside a venv, --system-site-packages is that.
            in_venv = sys.prefix != sys.base_prefix
            self._run(
                [
                    sys.executable,
                    "-m",
                    "venv",
                    "--without-pip",
                    *([] if in_venv else ["--system-site-packages"]),
                    str(venv),
                ]
            )
            purelib = subprocess.run(
                [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            purelib = purelib.replace(str(venv), str(path))
            site = venv / Path(purelib).relative_to(path)
            site.mkdir(parents=True, exist_ok=True)
            (site / "_ssd_parent.pth").write_text("\n".join(_parent_site_packages()) + "\n")
            for requirements in dependency_files(work_tree, names):
                if _has_requirements(requirements):
                    self._pip_install(venv, staging, requirements, work_tree, allow_unsafe)
            (venv / "ssd-ready").write_text(key + "\n")
            try:
                venv.rename(path)
            except OSError:
                if not (path / "ssd-ready").is_file():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return Environment(path, key, True, round(time.monotonic() - started, 3))

    @staticmethod
    def _pip_install(venv: Path, staging: Path, requirements: Path, work_tree: Path, allow_unsafe: bool) -> None:
        """``pip install -r`` in the sandbox with the network on: a requirements file can name a local
        package whose build runs its code, so it runs as the sandbox uid, which may write only the venv."""
        from pipeline.executor.sandbox import child_environment
        from pipeline.repo_suite.jail import run_jailed

        home, tmp = staging / "home", staging / "tmp"
        for directory in (home, tmp):
            directory.mkdir(exist_ok=True)
        os.chmod(staging, 0o755)
        env = {
            **child_environment(str(home)),
            "TMPDIR": str(tmp),
            "PIP_NO_INPUT": "1",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        }
        argv = [str(venv / "bin" / "python"), "-m", "pip", "install", "-r", str(requirements)]
        result = run_jailed(
            argv,
            work_tree,
            env,
            INSTALL_TIMEOUT_S,
            writable=[venv, home, tmp],
            expose=[str(staging)],
            network=True,
            give_back=True,
            allow_unsafe=allow_unsafe,
        )
        if result.timed_out:
            raise EnvironmentSetupError(f"pip install -r {requirements.name}: no result within {INSTALL_TIMEOUT_S}s")
        if result.returncode != 0:
            raise EnvironmentSetupError(f"pip install -r {requirements.name} failed: {result.output.strip()[-800:]}")

    @staticmethod
    def _run(argv: list[str], cwd: Path | None = None) -> None:
        try:
            result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise EnvironmentSetupError(f"{' '.join(argv[:4])}: no result within {INSTALL_TIMEOUT_S}s") from None
        if result.returncode != 0:
            tail = (result.stdout + result.stderr).strip()[-800:]
            raise EnvironmentSetupError(f"{Path(argv[0]).name} {' '.join(argv[1:4])} failed: {tail}")
