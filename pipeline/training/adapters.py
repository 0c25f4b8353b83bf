"""The adapter registry: every fine-tuned LoRA adapter with where it came from, under ``<data_dir>/adapters``.

Layout::

    adapters/
      a-20261203-091500-ab12cd/
        record.json          # AdapterRecord (base model + hash, dataset provenance, config, loss curve, metrics)
        adapter/             # the PEFT safetensors adapter (adapter_config.json, adapter_model.safetensors)
        adapter.gguf         # optional: the same adapter for llama.cpp (pipeline.training.export)
      promoted.json          # {"current": ID | null, "history": [older IDs, newest last]}
      current                # the promoted ID as plain text, for readers that only want the name

Every write is atomic (a temp file or directory, then ``os.replace``/``rename``), so a crash leaves either the
old state or the new one; read-modify-write of ``promoted.json`` and records runs under an ``flock``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ID_PATTERN = re.compile(r"^a-\d{8}-\d{6}-[0-9a-f]{6}$")
RECORD = "record.json"
POINTER = "promoted.json"


class RegistryError(Exception):
    """A registry operation that cannot be done (bad input, nothing to roll back to)."""


class AdapterNotFound(RegistryError, KeyError):
    def __str__(self) -> str:  # KeyError would print the repr
        return str(self.args[0]) if self.args else "adapter not found"


@dataclass
class AdapterRecord:
    id: str
    path: Path
    base_model: str
    base_sha256: str
    dataset: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    loss_curve: list[dict[str, float]] = field(default_factory=list)
    created: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    gguf: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["path"] = str(self.path)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AdapterRecord:
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        values["path"] = Path(values["path"])
        return cls(**values)


def new_adapter_id(now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return f"a-{now:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def _write_json_atomic(path: Path, data: Any) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out, indent=2, ensure_ascii=False)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


class AdapterRegistry:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    # -- reading -------------------------------------------------------------------------------------------
    def _dir(self, adapter_id: str) -> Path:
        # The id is also a path component: anything but the generated shape is refused (no "../", no "/").
        if not isinstance(adapter_id, str) or not ID_PATTERN.match(adapter_id):
            raise AdapterNotFound(f"no adapter {adapter_id!r} (ids look like a-20261203-091500-ab12cd)")
        return self.root / adapter_id

    def get(self, adapter_id: str) -> AdapterRecord:
        record = self._dir(adapter_id) / RECORD
        try:
            data = json.loads(record.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise AdapterNotFound(f"no adapter {adapter_id!r} in {self.root}") from None
        return AdapterRecord.from_dict(data)

    def list(self) -> list[AdapterRecord]:
        """All adapters, oldest first."""
        if not self.root.is_dir():
            return []
        records = [self.get(d.name) for d in self.root.iterdir() if ID_PATTERN.match(d.name) and (d / RECORD).is_file()]
        return sorted(records, key=lambda r: (r.created, r.id))

    def _pointer(self) -> dict[str, Any]:
        try:
            data = json.loads((self.root / POINTER).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {"current": None, "history": []}
        return {"current": data.get("current"), "history": list(data.get("history") or [])}

    def promoted(self) -> AdapterRecord | None:
        current = self._pointer()["current"]
        return self.get(current) if current else None

    def history(self) -> list[str]:
        """Previously promoted ids, newest last (what ``rollback`` walks back through)."""
        return self._pointer()["history"]

    # -- writing -------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def create(
        self,
        adapter_dir: Path,
        base_model: str,
        base_sha256: str,
        dataset: dict[str, Any] | None = None,
        config: dict[str, Any] | None = None,
        loss_curve: list[dict[str, float]] | None = None,
        metrics: dict[str, Any] | None = None,
        gguf: Path | None = None,
        move: bool = False,
    ) -> AdapterRecord:
        """Register the PEFT adapter in ``adapter_dir`` (copied, or moved with ``move=True``) under a new id."""
        adapter_dir = Path(adapter_dir)
        if not (adapter_dir / "adapter_config.json").is_file():
            raise RegistryError(f"{adapter_dir} is not a PEFT adapter directory (no adapter_config.json)")
        self.root.mkdir(parents=True, exist_ok=True)
        now = datetime.now(UTC)
        adapter_id = new_adapter_id(now)
        final = self._dir(adapter_id)
        staging = Path(tempfile.mkdtemp(prefix=f".{adapter_id}.", dir=self.root))
        try:
            if move:
                shutil.move(str(adapter_dir), staging / "adapter")
            else:
                shutil.copytree(adapter_dir, staging / "adapter")
            gguf_name = None
            if gguf is not None:
                shutil.copy2(gguf, staging / "adapter.gguf")
                gguf_name = str(final / "adapter.gguf")
            record = AdapterRecord(
                id=adapter_id,
                path=final / "adapter",
                base_model=base_model,
                base_sha256=base_sha256,
                dataset=dataset or {},
                config=config or {},
                loss_curve=list(loss_curve or []),
                created=now.isoformat(timespec="microseconds"),
                metrics=metrics or {},
                gguf=gguf_name,
            )
            _write_json_atomic(staging / RECORD, record.to_dict())
            staging.rename(final)  # the adapter appears whole or not at all
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return record

    def _update(self, adapter_id: str, **changes: Any) -> AdapterRecord:
        with self._locked():
            record = dataclasses.replace(self.get(adapter_id), **changes)
            _write_json_atomic(self._dir(adapter_id) / RECORD, record.to_dict())
        return record

    def set_metrics(self, adapter_id: str, metrics: dict[str, Any]) -> AdapterRecord:
        """Merge ``metrics`` into the record's metrics (keys given replace the same keys)."""
        current = self.get(adapter_id).metrics
        return self._update(adapter_id, metrics={**current, **metrics})

    def set_gguf(self, adapter_id: str, gguf: Path) -> AdapterRecord:
        return self._update(adapter_id, gguf=str(gguf))

    def _write_pointer(self, current: str | None, history: list[str]) -> None:
        _write_json_atomic(self.root / POINTER, {"current": current, "history": history})
        fd, tmp = tempfile.mkstemp(prefix=".current.", dir=self.root)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write((current or "none") + "\n")
        os.replace(tmp, self.root / "current")

    def promote(self, adapter_id: str) -> AdapterRecord:
        """Make ``adapter_id`` the current adapter; the one it replaces goes on the rollback history."""
        record = self.get(adapter_id)
        with self._locked():
            pointer = self._pointer()
            if pointer["current"] == adapter_id:
                return record
            history = pointer["history"] + ([pointer["current"]] if pointer["current"] else [])
            self._write_pointer(adapter_id, history)
        return record

    def rollback(self) -> AdapterRecord | None:
        """Go back to the previously promoted adapter; ``None`` when that is the base model (no adapter)."""
        with self._locked():
            pointer = self._pointer()
            if pointer["current"] is None:
                raise RegistryError("no adapter is promoted: nothing to roll back")
            history = pointer["history"]
            previous = history.pop() if history else None
            self._write_pointer(previous, history)
        return self.get(previous) if previous else None
