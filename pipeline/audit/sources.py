"""Where audited files come from: a local directory walker with caps.

Both sources (this walker and ``bot/audit_source.py`` for a Gitea tree) yield the same ``SourceFile``
objects and count what they skip in the same ``ScanStats``, so the scanners never know where a file came
from. Caps exist because an audit runs on whatever a user points it at: a monorepo, a vendored model dir,
a symlink loop. Hitting a cap is reported, never an error.
"""

from __future__ import annotations

import os
import stat
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

# Directories that never hold a team's own settings and can be huge.
SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        "node_modules",
        "__pycache__",
        ".venv",
        "venv",
        ".tox",
        ".nox",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".idea",
        ".vscode",
        "dist",
        "build",
        ".eggs",
    }
)

CONFIG_SUFFIXES = frozenset(
    {
        ".yaml",
        ".yml",
        ".json",
        ".toml",
        ".ini",
        ".cfg",
        ".conf",
        ".env",
        ".py",
        ".sh",
        ".bash",
        ".zsh",
        ".service",
        ".modelfile",
        ".dockerfile",
        ".mk",
        ".md",
        ".markdown",
    }
)
# Files recognised by name (case-insensitive), or by a name prefix such as "Dockerfile.gpu", "Modelfile-eval".
NAME_PREFIXES = ("dockerfile", "modelfile", "procfile", "makefile", "justfile", "containerfile", ".env")


@dataclass(frozen=True)
class SourceFile:
    """One file to scan: a POSIX path relative to the audited root, and its bytes."""

    path: str
    data: bytes


@dataclass(frozen=True)
class Limits:
    """Caps on what one audit reads. Defaults fit a large repo and stay well under a minute."""

    max_files: int = 5000  # candidate files read
    max_file_bytes: int = 1024 * 1024  # larger files are skipped as "too large"
    max_total_bytes: int = 64 * 1024 * 1024
    max_depth: int = 24  # directory levels below the root


@dataclass
class ScanStats:
    """What was looked at and what was skipped, by reason (reported in the summary)."""

    seen: int = 0  # entries considered (files, after directory pruning)
    read: int = 0
    bytes_read: int = 0
    skipped: Counter = field(default_factory=Counter)
    caps_hit: set[str] = field(default_factory=set)

    def skip(self, reason: str, count: int = 1) -> None:
        self.skipped[reason] += count

    def to_dict(self) -> dict:
        return {
            "seen": self.seen,
            "read": self.read,
            "bytes_read": self.bytes_read,
            "skipped": dict(sorted(self.skipped.items())),
            "caps_hit": sorted(self.caps_hit),
        }


def is_candidate(path: str) -> bool:
    """Whether a path can hold a sampling setting in a format we scan (decided by name only)."""
    name = PurePosixPath(path).name.lower()
    if name.startswith(NAME_PREFIXES) or name.endswith(".env"):
        return True
    return PurePosixPath(name).suffix in CONFIG_SUFFIXES


class Budget:
    """Shared bookkeeping of the caps: both sources ask it before reading a file."""

    def __init__(self, limits: Limits, stats: ScanStats) -> None:
        self.limits = limits
        self.stats = stats

    def admit(self, path: str, size: int | None) -> bool:
        """Count one file and decide whether to read it; records the reason when not."""
        stats, limits = self.stats, self.limits
        stats.seen += 1
        if not is_candidate(path):
            stats.skip("not a config or source file")
            return False
        if len(PurePosixPath(path).parts) - 1 > limits.max_depth:
            stats.skip("too deep")
            stats.caps_hit.add("max_depth")
            return False
        if size is not None and size > limits.max_file_bytes:
            stats.skip("too large")
            return False
        if stats.read >= limits.max_files:
            stats.skip("file cap reached")
            stats.caps_hit.add("max_files")
            return False
        if size is not None and stats.bytes_read + size > limits.max_total_bytes:
            stats.skip("byte cap reached")
            stats.caps_hit.add("max_total_bytes")
            return False
        return True

    def record(self, data: bytes) -> bool:
        """Account for bytes actually read (a source may not know the size up front)."""
        if len(data) > self.limits.max_file_bytes:
            self.stats.skip("too large")
            return False
        self.stats.read += 1
        self.stats.bytes_read += len(data)
        return True


def walk_local(
    root: str | os.PathLike, limits: Limits | None = None, stats: ScanStats | None = None
) -> Iterator[SourceFile]:
    """Yield candidate files under ``root``, sorted, never following a symlink out of the root.

    A symlinked file whose target is inside the root is read under the link's path; symlinked directories
    are never descended (that is how loops are avoided: a real directory is visited once, by its real path).
    """
    limits = limits or Limits()
    stats = stats if stats is not None else ScanStats()
    budget = Budget(limits, stats)
    base = Path(root).resolve()
    if not base.is_dir():
        raise NotADirectoryError(f"not a directory: {root}")
    yield from _walk(base, base, 0, budget)


def _walk(base: Path, directory: Path, depth: int, budget: Budget) -> Iterator[SourceFile]:
    stats = budget.stats
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError:
        stats.skip("unreadable")
        return
    for entry in entries:
        rel = PurePosixPath(Path(entry.path).relative_to(base)).as_posix()
        try:
            is_link = entry.is_symlink()
            st = os.stat(entry.path) if is_link else entry.stat(follow_symlinks=False)
        except OSError:  # a dangling link or a loop (ELOOP)
            stats.skip("broken symlink")
            continue
        if stat.S_ISDIR(st.st_mode):
            if is_link:
                stats.skip("symlinked directory")
                continue
            if entry.name in SKIP_DIRS:
                stats.skip("excluded directory")
                continue
            if depth + 1 > budget.limits.max_depth:
                stats.skip("too deep")
                stats.caps_hit.add("max_depth")
                continue
            yield from _walk(base, Path(entry.path), depth + 1, budget)
            continue
        if not stat.S_ISREG(st.st_mode):
            stats.skip("not a regular file")
            continue
        if is_link:
            target = Path(os.path.realpath(entry.path))
            if not target.is_relative_to(base):
                stats.skip("symlink outside the root")
                continue
        if not budget.admit(rel, st.st_size):
            continue
        try:
            with open(entry.path, "rb") as handle:
                data = handle.read(budget.limits.max_file_bytes + 1)
        except OSError:
            stats.skip("unreadable")
            continue
        if budget.record(data):
            yield SourceFile(rel, data)
