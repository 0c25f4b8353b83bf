"""A model's answer -> a patch.

Small models manage search/replace blocks far better than unified diffs (line numbers, context), so that is
the format the prompt asks for; a whole file in a fenced block under its path, and a plain unified diff, are
also accepted. Edits are applied to the files at the base commit and the result is diffed with difflib, so
the patch applies exactly; an edit whose SEARCH text is not in the file is reported, never guessed at
beyond ignoring trailing whitespace.

    calc/ops.py
    <<<<<<< SEARCH
    def divide(a, b):
        return a / b
    =======
    def divide(a, b):
        if b == 0:
            raise ValueError("division by zero")
        return a / b
    >>>>>>> REPLACE
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass, field

EDIT_INSTRUCTIONS = """Answer with edits in this exact format, one block per change (several blocks are fine):

path/to/file.py
<<<<<<< SEARCH
the exact existing lines to change, copied from the file
=======
the new lines
>>>>>>> REPLACE

To create a new file, give its path and an empty SEARCH part. Change only what the issue needs."""

_BLOCK = re.compile(
    r"^(?P<path>[^\n`<>=]*?)[ \t]*\n(?:```[^\n]*\n)?<{5,9} ?SEARCH[ \t]*\n(?P<search>.*?)^={5,9}[ \t]*\n"
    r"(?P<replace>.*?)^>{5,9} ?REPLACE[ \t]*$",
    re.M | re.S,
)
_WHOLE = re.compile(
    r"^(?:File: *|# *)?(?P<path>[\w./-]+\.\w+)[ \t]*:?[ \t]*\n```[\w+-]*\n(?P<body>.*?)^```[ \t]*$", re.M | re.S
)
_PATH = re.compile(r"^[\w.-]+(?:/[\w.-]+)*$")


@dataclass
class EditResult:
    patch: str  # unified diff of the edits that applied ("" if none)
    files: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    blocks: int = 0  # edit blocks found in the answer
    format: str = ""  # search_replace | whole_file | diff | none


def _clean_path(raw: str) -> str | None:
    path = raw.strip().strip("`*'\"").removeprefix("./").strip()
    for prefix in ("File:", "file:", "Path:", "path:", "#"):
        path = path.removeprefix(prefix).strip()
    if not path or not _PATH.match(path) or ".." in path.split("/") or path.startswith(".git/"):
        return None
    return path


def _replace_once(text: str, search: str, replace: str) -> str | None:
    if search in text:
        return text.replace(search, replace, 1)
    # Tolerate trailing-whitespace differences only (line by line).
    lines, wanted = text.splitlines(keepends=True), [line.rstrip() for line in search.splitlines()]
    for start in range(len(lines) - len(wanted) + 1):
        if [line.rstrip() for line in lines[start : start + len(wanted)]] == wanted:
            new = replace if replace.endswith("\n") or not replace else replace + "\n"
            return "".join(lines[:start]) + new + "".join(lines[start + len(wanted) :])
    return None


def make_diff(original: dict[str, str | None], edited: dict[str, str]) -> str:
    """A git-style unified diff from ``original`` (None: the file does not exist) to ``edited``."""
    parts = []
    for path in sorted(edited):
        before, after = original.get(path), edited[path]
        if before == after:
            continue
        old_lines = (before or "").splitlines(keepends=True)
        new_lines = after.splitlines(keepends=True)
        for lines in (old_lines, new_lines):
            if lines and not lines[-1].endswith("\n"):
                lines[-1] += "\n"  # a missing final newline would need git's marker; add one instead
        header = f"diff --git a/{path} b/{path}\n" + ("new file mode 100644\n" if before is None else "")
        body = difflib.unified_diff(
            old_lines, new_lines, "/dev/null" if before is None else f"a/{path}", f"b/{path}", n=3
        )
        parts.append(header + "".join(body))
    return "".join(parts)


def edits_to_patch(answer: str, read_file: Callable[[str], str | None]) -> EditResult:
    """Turn ``answer`` into a patch against the files ``read_file(path)`` returns (None: no such file)."""
    if re.search(r"^diff --git a/", answer, re.M) or re.search(r"^--- a/.*\n\+\+\+ b/", answer, re.M):
        start = re.search(r"^(?:diff --git a/|--- a/)", answer, re.M)
        patch = answer[start.start() :] if start else answer
        patch = re.sub(r"\n```[ \t]*(\n|$).*", "\n", patch, flags=re.S)  # drop a closing fence and what follows
        return EditResult(patch, blocks=1, format="diff")
    original: dict[str, str | None] = {}
    edited: dict[str, str] = {}
    result = EditResult("")

    def current(path: str) -> str | None:
        if path not in original:
            original[path] = read_file(path)
        return edited.get(path, original[path])

    for match in _BLOCK.finditer(answer):
        result.blocks += 1
        result.format = "search_replace"
        path = _clean_path(match.group("path").splitlines()[-1] if match.group("path") else "")
        if path is None:
            result.errors.append(f"block {result.blocks}: no usable file path before it")
            continue
        text = current(path)
        search, replace = match.group("search"), match.group("replace")
        if text is None:
            if search.strip():
                result.errors.append(f"{path}: no such file, and SEARCH is not empty")
                continue
            edited[path] = replace
            continue
        if not search.strip():
            edited[path] = text + ("" if text.endswith("\n") or not text else "\n") + replace
            continue
        new = _replace_once(text, search, replace)
        if new is None:
            result.errors.append(f"{path}: SEARCH text not found")
            continue
        edited[path] = new
    if not result.blocks:
        for match in _WHOLE.finditer(answer):
            path = _clean_path(match.group("path"))
            # Whole files only replace files that exist (a path echoed from the instructions is not one), and a
            # body holding a fence is two blocks run together.
            if path is None or current(path) is None or "```" in match.group("body"):
                continue
            result.blocks += 1
            result.format = "whole_file"
            current(path)
            edited[path] = match.group("body")
    result.format = result.format or "none"
    result.patch = make_diff(original, edited)
    result.files = sorted(p for p in edited if edited[p] != original.get(p))
    return result
