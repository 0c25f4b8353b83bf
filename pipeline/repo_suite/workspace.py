"""Code at a commit, prepared once and reset cheaply between runs.

Layout under the cache root (``SSD_REPO_CACHE_DIR``)::

    archives/<owner>__<name>/<sha>.tar.gz   what the forge sent, cached per commit
    git/<owner>__<name>/<sha>/              a git directory whose one commit is that tree ("prepared")
    work/                                   work trees, one per open ``Checkout``, removed on close

The git directory lives outside the work tree and stays root-owned: sandboxed tests write only the work
tree, so nothing they leave (hooks, a ``.git/config``) is ever read by the git commands run here. Each run
starts from a fresh work tree (``reset``: remove, ``checkout-index``), which is cheaper than copying and
cannot be fooled by files a previous run left behind.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pipeline.repo_suite.patches import unsafe_reason

GIT_IDENTITY = (
    "-c",
    "user.name=ssd-bot",
    "-c",
    "user.email=ssd-bot@localhost",
    "-c",
    "core.hooksPath=/dev/null",
    "-c",
    "commit.gpgsign=false",
    "-c",
    "core.autocrlf=false",
)
PATCH_FUZZ = 3


class CheckoutError(RuntimeError):
    """The code at a commit cannot be had (no archive cached and no source to fetch it from, a bad archive)."""


class ArchiveSource(Protocol):
    def archive(self, commit: str) -> bytes: ...


def repo_key(repo: str) -> str:
    owner, name = repo.split("/", 1)
    key = f"{owner}__{name}"
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", key) or key.startswith("."):
        raise CheckoutError(f"repository name {repo!r} is not usable as a directory name")
    return key


def _check_sha(commit: str) -> str:
    if not re.fullmatch(r"[0-9a-f]{7,64}", commit):
        raise CheckoutError(f"{commit!r} is not a commit sha")
    return commit


@dataclass(frozen=True)
class ApplyResult:
    applied: bool
    method: str  # "git apply", "git apply --3way", "patch --fuzz", "empty", "refused", "failed"
    detail: str = ""


def git(
    *args: str,
    git_dir: Path,
    work_tree: Path | None = None,
    index: Path | None = None,
    input: bytes | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "GIT_DIR": str(git_dir),
        "HOME": str(git_dir),
        "GIT_CONFIG_NOSYSTEM": "1",
        "LC_ALL": "C",
    }
    if work_tree is not None:
        env["GIT_WORK_TREE"] = str(work_tree)
    if index is not None:
        env["GIT_INDEX_FILE"] = str(index)
    cwd = work_tree or (git_dir if git_dir.is_dir() else git_dir.parent)
    result = subprocess.run(["git", *GIT_IDENTITY, *args], cwd=cwd, env=env, input=input, capture_output=True)
    if check and result.returncode != 0:
        raise CheckoutError(f"git {args[0]} failed: {result.stderr.decode(errors='replace').strip()[:500]}")
    return result


class RepoCache:
    """Archives and prepared git directories under one root."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        for part in ("archives", "git", "work"):
            (self.root / part).mkdir(parents=True, exist_ok=True)
        os.chmod(self.root / "git", 0o700)
        # Work trees are handed to a sandbox uid, which must be able to reach them.
        os.chmod(self.root / "work", 0o711)

    def archive_path(self, repo: str, commit: str) -> Path:
        return self.root / "archives" / repo_key(repo) / f"{_check_sha(commit)}.tar.gz"

    def archive(self, repo: str, commit: str, source: ArchiveSource | None = None) -> Path:
        """The cached archive, fetched from ``source`` on a miss."""
        path = self.archive_path(repo, commit)
        if path.is_file():
            return path
        if source is None:
            raise CheckoutError(
                f"{repo}@{commit[:12]}: no cached archive under {path.parent} and no source "
                "to fetch it from (build the suite first, or configure Gitea)"
            )
        data = source.archive(commit)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
        return path

    def prepared(self, repo: str, commit: str, source: ArchiveSource | None = None) -> Path:
        """The git directory of ``commit``'s tree, made from the archive once."""
        git_dir = self.root / "git" / repo_key(repo) / _check_sha(commit)
        if (git_dir / "ssd-ready").is_file():
            return git_dir
        archive = self.archive(repo, commit, source)
        git_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{commit[:12]}-", dir=git_dir.parent))
        try:
            tree = staging / "tree"
            _extract(archive, tree)
            new_git = staging / "git"
            git("init", "-q", "--bare", str(new_git), git_dir=new_git)
            index = staging / "index"
            git("add", "-A", "-f", ".", git_dir=new_git, work_tree=tree, index=index)
            git("commit", "-q", "--no-verify", "-m", f"{repo}@{commit}", git_dir=new_git, work_tree=tree, index=index)
            (new_git / "ssd-ready").write_text(commit + "\n")
            try:
                new_git.rename(git_dir)
            except OSError:  # another process prepared it meanwhile
                if not (git_dir / "ssd-ready").is_file():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return git_dir

    def checkout(self, repo: str, commit: str, source: ArchiveSource | None = None) -> Checkout:
        return Checkout(self.prepared(repo, commit, source), self.root / "work", commit)


def _extract(archive: Path, dest: Path) -> None:
    """Unpack a forge archive (one top-level directory) into ``dest``, refusing anything that escapes it."""
    dest.mkdir(parents=True)
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            tops = {m.name.split("/", 1)[0] for m in members if m.name not in ("", ".", "pax_global_header")}
            strip = len(tops) == 1 and all(
                "/" in m.name or m.isdir() for m in members if m.name.split("/", 1)[0] in tops
            )
            for member in members:
                if member.name == "pax_global_header":
                    continue
                if strip:
                    parts = member.name.split("/", 1)
                    if len(parts) < 2 or not parts[1]:
                        continue
                    member.name = parts[1]
                tar.extract(member, dest, filter="data")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise CheckoutError(f"{archive.name}: not a usable archive: {exc}") from None


class Checkout:
    """One work tree of a prepared commit; ``reset`` before each run, ``close`` at the end."""

    def __init__(self, git_dir: Path, work_root: Path, commit: str) -> None:
        self.git_dir = git_dir
        self.commit = commit
        self.base = Path(tempfile.mkdtemp(prefix=f"{commit[:12]}-", dir=work_root))
        os.chmod(self.base, 0o711)
        self.work_tree = self.base / "repo"
        # The index lives beside the root-owned git directory, out of the sandbox's reach.
        self.index = Path(tempfile.mkdtemp(prefix=".git-", dir=git_dir.parent)) / "index"
        self.reset()

    def __enter__(self) -> Checkout:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def git(self, *args: str, input: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess:
        return git(*args, git_dir=self.git_dir, work_tree=self.work_tree, index=self.index, input=input, check=check)

    def reset(self) -> None:
        """A fresh work tree equal to the commit (whatever the last run did to the old one)."""
        self._restore("HEAD")

    def _restore(self, tree: str) -> None:
        shutil.rmtree(self.work_tree, ignore_errors=True)
        self.work_tree.mkdir()
        self.git("read-tree", tree)
        self.git("checkout-index", "-a", "-f")

    def close(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)
        shutil.rmtree(self.index.parent, ignore_errors=True)

    def apply(self, patch: str, fuzz: bool = True, allow_unsafe: bool = False) -> ApplyResult:
        """Apply ``patch`` to the work tree: exactly, then with a 3-way merge, then with ``patch``'s fuzz.

        A failed attempt leaves the tree as it was (git apply is atomic; a 3-way conflict is undone)."""
        if not patch.strip():
            return ApplyResult(False, "empty", "the patch is empty")
        reason = unsafe_reason(patch)
        if reason:
            return ApplyResult(False, "refused", reason)
        data = patch.encode("utf-8") if patch.endswith("\n") else (patch + "\n").encode("utf-8")
        attempt = self.git("apply", "--whitespace=nowarn", "-", input=data, check=False)
        if attempt.returncode == 0:
            return ApplyResult(True, "git apply")
        first_error = attempt.stderr.decode(errors="replace").strip()
        if not fuzz:
            return ApplyResult(False, "failed", first_error[:500])
        # --3way implies --index: make the index equal the work tree first; that tree is also the undo point.
        self.git("add", "-A", "-f")
        snapshot = self.git("write-tree").stdout.decode().strip()
        attempt = self.git("apply", "--3way", "--whitespace=nowarn", "-", input=data, check=False)
        if attempt.returncode == 0:
            return ApplyResult(True, "git apply --3way")
        self._restore(snapshot)
        applied = self._fuzzy_patch(data, allow_unsafe)
        if applied is not None:
            return applied
        self._restore(snapshot)
        return ApplyResult(False, "failed", first_error[:500])

    def _fuzzy_patch(self, data: bytes, allow_unsafe: bool) -> ApplyResult | None:
        """GNU ``patch --fuzz``, run in the sandbox as the sandbox uid: it follows symlinks the repository
        itself may hold, so it must not write as root. All or nothing: a dry run first."""
        from pipeline.executor.sandbox import child_environment
        from pipeline.repo_suite.jail import run_jailed

        scratch = Path(tempfile.mkdtemp(prefix="patch-", dir=self.base))
        os.chmod(scratch, 0o755)
        try:
            options = f'--batch --forward -p1 --fuzz={PATCH_FUZZ} --no-backup-if-mismatch -r - -i "$TMPDIR/p"'
            script = f'cat > "$TMPDIR/p" && patch --dry-run {options} >/dev/null && patch {options}'
            env = {**child_environment(str(scratch)), "TMPDIR": str(scratch)}
            result = run_jailed(
                ["/bin/sh", "-c", script],
                self.work_tree,
                env,
                60,
                writable=[self.work_tree, scratch],
                give_back=True,
                stdin=data,
                allow_unsafe=allow_unsafe,
            )
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        if result.returncode != 0:
            return None
        return ApplyResult(True, "patch --fuzz", result.output[-300:])

    def restore_paths(self, paths: list[str]) -> None:
        """Put ``paths`` back as they are at the commit (removing those the commit does not have)."""
        for path in paths:
            target = self.work_tree / path
            if target.is_symlink() or target.is_file():
                target.unlink()
            elif target.is_dir():
                shutil.rmtree(target)
        known = self.git("ls-tree", "-r", "--name-only", "HEAD", "--", *paths).stdout.decode().split("\n")
        known = [p for p in known if p]
        if known:
            self.git("checkout", "HEAD", "--", *known)
