"""Where SSD's training prompts come from, each read into a ``PromptSet`` (items + a SHA-256 of what was read).

Source specs (``--prompts``):

- ``shipped``: the prompts written for this project (``data/prompts.jsonl``, disjoint from HumanEval and
  from the ``basic`` suite; ``tests/test_shipped_prompts.py`` keeps it so);
- ``suite:NAME``: the user messages a suite's problems are evaluated with (``pipeline.prompts``), so the
  model is sampled on exactly what it will later be asked;
- ``buffer``: the training buffer's active issue texts (the caller passes the ``TrainingBuffer``);
- a path: JSONL with a ``prompt`` field per line (and optionally ``id``), or plain text, one prompt per line.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SHIPPED_PATH = Path(__file__).parent / "data" / "prompts.jsonl"


class PromptSourceError(ValueError):
    """A prompt source cannot be read; the message says which line and why."""


@dataclass(frozen=True)
class PromptItem:
    id: str
    prompt: str


@dataclass(frozen=True)
class PromptSet:
    source: str  # the spec as given
    items: list[PromptItem]
    sha256: str  # of the bytes read (file sources) or of the prompts' JSON (suite, buffer)
    limit: int | None = None

    def __len__(self) -> int:
        return len(self.items)

    def describe(self) -> dict[str, Any]:
        return {"source": self.source, "sha256": self.sha256, "prompts": len(self.items), "limit": self.limit}


def _sha256_items(items: list[PromptItem]) -> str:
    text = json.dumps([[item.id, item.prompt] for item in items], ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _read_file(path: Path) -> tuple[list[PromptItem], str]:
    try:
        data = path.read_bytes()
        text = data.decode("utf-8")
    except OSError as exc:
        raise PromptSourceError(f"cannot read prompt file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise PromptSourceError(f"prompt file {path} is not UTF-8 text") from None
    lines = text.splitlines()
    first = next((line for line in lines if line.strip()), "")
    is_jsonl = path.suffix == ".jsonl" or first.lstrip().startswith("{")
    items: list[PromptItem] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if not is_jsonl:
            items.append(PromptItem(f"{path.stem}:{number}", line.strip()))
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise PromptSourceError(f"{path}:{number}: not JSON: {exc.msg}") from None
        if not isinstance(row, dict) or not isinstance(row.get("prompt"), str) or not row["prompt"].strip():
            raise PromptSourceError(f'{path}:{number}: each line needs a non-empty string field "prompt"')
        item_id = row.get("id", f"{path.stem}:{number}")
        if not isinstance(item_id, str | int):
            raise PromptSourceError(f'{path}:{number}: "id" must be a string')
        items.append(PromptItem(str(item_id), row["prompt"]))
    return items, hashlib.sha256(data).hexdigest()


def _from_suite(name: str) -> tuple[list[PromptItem], str]:
    from pipeline.prompts import build_messages
    from pipeline.suites import SuiteError, load_suite

    try:
        suite = load_suite(name)
    except SuiteError as exc:
        raise PromptSourceError(str(exc)) from None
    items = [PromptItem(problem.task_id, build_messages(problem)[-1]["content"]) for problem in suite.problems]
    return items, suite.sha256


def _from_buffer(buffer: Any) -> list[PromptItem]:
    if buffer is None:
        raise PromptSourceError("the 'buffer' prompt source needs the training buffer (none was given)")
    examples = sorted(buffer.active(), key=lambda e: e.id or 0)  # oldest first: a stable order to resume in
    return [PromptItem(f"{e.repo}#{e.pr_number}@{e.merge_sha[:12]}", e.prompt) for e in examples if e.prompt.strip()]


def load_prompts(spec: str, limit: int | None = None, buffer: Any = None) -> PromptSet:
    """Read the prompts ``spec`` names (see the module docstring); keep the first ``limit``.

    ``buffer``: a ``pipeline.buffer.TrainingBuffer`` for the ``buffer`` source (the CLI opens it from Settings).
    """
    if limit is not None and limit < 1:
        raise PromptSourceError(f"limit must be >= 1, got {limit}")
    if spec == "shipped":
        items, sha = _read_file(SHIPPED_PATH)
    elif spec.startswith("suite:"):
        items, sha = _from_suite(spec.removeprefix("suite:"))
    elif spec == "buffer":
        items = _from_buffer(buffer)
        sha = _sha256_items(items)
    else:
        path = Path(spec).expanduser()
        if not path.is_file():
            raise PromptSourceError(
                f"unknown prompt source {spec!r}: not 'shipped', 'suite:NAME', 'buffer' or an existing file"
            )
        items, sha = _read_file(path)
    seen: set[str] = set()
    for item in items:
        if item.id in seen:
            raise PromptSourceError(f"prompt id {item.id!r} appears twice in {spec}")
        seen.add(item.id)
    if not items:
        raise PromptSourceError(f"{spec} holds no prompts")
    if limit is not None:
        items = items[:limit]
    return PromptSet(source=spec, items=items, sha256=sha, limit=limit)
