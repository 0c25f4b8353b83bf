"""Unified diffs as data: per-file sections, the source/test split, the files a patch touches.

A git diff is a sequence of ``diff --git a/X b/Y`` sections; splitting on those headers keeps every section
byte-for-byte, so the two halves of a split apply exactly like the whole.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass

# Paths that hold tests, by the usual Python conventions; fnmatch's "*" also matches "/".
DEFAULT_TEST_PATTERNS = (
    "tests/*",
    "test/*",
    "testing/*",
    "*/tests/*",
    "*/test/*",
    "test_*.py",
    "*/test_*.py",
    "*_test.py",
    "conftest.py",
    "*/conftest.py",
)
_HEADER = re.compile(r"^diff --git (?:\"?a/(.+?)\"?) (?:\"?b/(.+?)\"?)$")


@dataclass(frozen=True)
class FileDiff:
    old_path: str | None  # None: the file is new
    new_path: str | None  # None: the file is deleted
    text: str  # the whole section, header included, ending in a newline

    @property
    def path(self) -> str:
        return self.new_path or self.old_path or ""

    @property
    def is_symlink(self) -> bool:
        return bool(re.search(r"^(?:new file |old |new |deleted file )mode 120000$", self.text, re.M))

    @property
    def is_binary(self) -> bool:
        return "\nGIT binary patch\n" in self.text or bool(re.search(r"^Binary files .* differ$", self.text, re.M))


def split_files(diff: str) -> list[FileDiff]:
    """The per-file sections of a git diff (text before the first header, e.g. a mail preamble, is dropped)."""
    sections: list[list[str]] = []
    for line in diff.splitlines(keepends=True):
        if line.startswith("diff --git "):
            sections.append([line])
        elif sections:
            sections[-1].append(line)
    files = []
    for lines in sections:
        text = "".join(lines)
        if not text.endswith("\n"):
            text += "\n"
        match = _HEADER.match(lines[0].rstrip("\n"))
        old = new = match.group(2) if match else None
        if match:
            old = match.group(1)
        for line in lines[1:]:
            if line.startswith("--- "):
                old = None if line.strip() == "--- /dev/null" else line[4:].strip().removeprefix("a/")
            elif line.startswith("+++ "):
                new = None if line.strip() == "+++ /dev/null" else line[4:].strip().removeprefix("b/")
                break
            elif line.startswith("new file mode"):
                old = None
            elif line.startswith("deleted file mode"):
                new = None
        files.append(FileDiff(old, new, text))
    return files


def is_test_path(path: str, patterns: Iterable[str] = DEFAULT_TEST_PATTERNS) -> bool:
    return any(fnmatch.fnmatchcase(path, pattern) for pattern in patterns)


def split_test_patch(diff: str, patterns: Iterable[str] = DEFAULT_TEST_PATTERNS) -> tuple[str, str]:
    """(source patch, test patch): sections whose path matches a test pattern go to the test patch."""
    patterns = tuple(patterns)
    source, tests = [], []
    for section in split_files(diff):
        (tests if is_test_path(section.path, patterns) else source).append(section.text)
    return "".join(source), "".join(tests)


def touched_files(diff: str, existing_after: bool = False) -> list[str]:
    """Paths a patch touches, in order; ``existing_after`` leaves out the files it deletes."""
    paths: list[str] = []
    for section in split_files(diff):
        if existing_after and section.new_path is None:
            continue
        if section.path and section.path not in paths:
            paths.append(section.path)
    return paths


def _header_paths(diff: str) -> list[str]:
    """Every path named by a file header (git or plain unified), hunks skipped."""
    lines = diff.splitlines()
    paths = []
    for i, line in enumerate(lines):
        if line.startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ "):
            paths += [line[4:], lines[i + 1][4:]]
        elif line.startswith(("rename from ", "rename to ", "copy from ", "copy to ")):
            paths.append(line.split(" ", 2)[2])
    cleaned = []
    for path in paths:
        path = path.split("\t")[0].strip().strip('"')
        if path != "/dev/null":
            cleaned.append(path[2:] if path[:2] in ("a/", "b/") else path)
    return cleaned


def unsafe_reason(diff: str) -> str | None:
    """Why a patch from a model or a PR must not be applied at all, or None.

    Symlinks and absolute or ``..`` paths could make a later write land outside the work tree."""
    if re.search(r"^(?:new file |old |new |deleted file )mode 120000$", diff, re.M):
        return "symbolic links are not applied"
    for section in split_files(diff):
        if section.is_binary:
            return f"{section.path}: binary patches are not applied"
    for path in _header_paths(diff):
        if path.startswith("/") or ".." in path.split("/"):
            return f"{path}: path leaves the repository"
    return None
