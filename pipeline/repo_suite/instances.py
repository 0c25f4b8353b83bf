"""The instance record and its JSONL file, with SWE-bench's field names.

SWE-bench's datasets store ``FAIL_TO_PASS``/``PASS_TO_PASS`` as JSON-encoded strings; we write lists and read
either, so its files load here and ours load there after ``json.loads`` of nothing at all.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REQUIRED = (
    "instance_id",
    "repo",
    "base_commit",
    "problem_statement",
    "patch",
    "test_patch",
    "FAIL_TO_PASS",
    "PASS_TO_PASS",
)
_ID = re.compile(r"^[A-Za-z0-9_.-]+__[A-Za-z0-9_.-]+-[0-9]+$")


class InstanceError(ValueError):
    """An instance file is malformed; the message names the line."""


def instance_id(repo: str, pr_number: int) -> str:
    """SWE-bench's ``{owner}__{repo}-{pr}``."""
    owner, name = repo.split("/", 1)
    return f"{owner}__{name}-{pr_number}"


@dataclass
class Instance:
    instance_id: str
    repo: str
    base_commit: str
    problem_statement: str
    patch: str  # the gold source change
    test_patch: str
    FAIL_TO_PASS: list[str]  # noqa: N815 (SWE-bench's field name)
    PASS_TO_PASS: list[str]  # noqa: N815
    pr_number: int = 0
    pr_numbers: list[int] = field(default_factory=list)  # PRs whose code the instance is (training overlap)
    issue_numbers: list[int] = field(default_factory=list)
    merge_commit: str = ""
    created_at: str = ""  # the merge time
    hints_text: str = ""
    version: str = ""
    environment_setup_commit: str = ""
    test_files: list[str] = field(default_factory=list)  # the test files the test patch touches (run these)
    test_command: list[str] = field(default_factory=list)  # empty: the default

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> Instance:
        missing = [name for name in REQUIRED if name not in row]
        if missing:
            raise InstanceError(f"missing field(s) {', '.join(missing)}")
        values = {name: row[name] for name in cls.__dataclass_fields__ if name in row}
        for name in ("FAIL_TO_PASS", "PASS_TO_PASS"):
            if isinstance(values[name], str):
                values[name] = json.loads(values[name])
            if not isinstance(values[name], list) or not all(isinstance(t, str) for t in values[name]):
                raise InstanceError(f"{name} must be a list of test ids")
        for name in ("instance_id", "repo", "base_commit", "problem_statement", "patch", "test_patch"):
            if not isinstance(values[name], str):
                raise InstanceError(f"{name} must be a string")
        if not _ID.match(values["instance_id"]) or "/" not in values["repo"]:
            raise InstanceError(f"instance_id {values['instance_id']!r} / repo {values['repo']!r} malformed")
        if not re.fullmatch(r"[0-9a-f]{7,64}", values["base_commit"]):
            raise InstanceError(f"base_commit {values['base_commit']!r} is not a commit sha")
        instance = cls(**values)
        if not instance.test_files:
            from pipeline.repo_suite.patches import touched_files

            instance.test_files = touched_files(instance.test_patch, existing_after=True)
        return instance


def looks_like_instances(path: str | Path) -> bool:
    """Whether the first non-blank line of ``path`` is a SWE-bench instance (``instance_id`` + ``base_commit``)."""
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    row = json.loads(line)
                    return isinstance(row, dict) and "instance_id" in row and "base_commit" in row
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return False


def load_instances(path: str | Path, limit: int | None = None) -> tuple[list[Instance], str]:
    """(instances, sha256 of the file bytes)."""
    data = Path(path).read_bytes()
    instances: list[Instance] = []
    for number, line in enumerate(data.decode("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            instances.append(Instance.from_dict(json.loads(line)))
        except (json.JSONDecodeError, InstanceError, TypeError) as exc:
            raise InstanceError(f"{path}:{number}: {exc}") from None
    ids = [i.instance_id for i in instances]
    if len(set(ids)) != len(ids):
        raise InstanceError(f"{path}: duplicate instance_id")
    return (instances[:limit] if limit else instances), hashlib.sha256(data).hexdigest()


def write_instances(path: str | Path, instances: list[Instance]) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        for instance in instances:
            handle.write(json.dumps(instance.to_dict(), ensure_ascii=False) + "\n")
    tmp.replace(target)
