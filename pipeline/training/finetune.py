"""LoRA SFT on an SSD dataset, supervised: ``finetune(data_dir, model, config, registry)`` -> AdapterRecord.

The training itself runs in a child process (``pipeline.training.trainer_child``, same interpreter) in its own
process group; this module writes the job file, starts the child, turns its JSON-lines events into
``progress(fraction, message)`` calls, kills the whole group on ``cancel``, and registers the adapter.

Resume: the run directory ``<registry>/runs/<key>`` is keyed by the dataset, the base model and the config,
so calling ``finetune`` again with the same inputs after a crash, a kill or a cancel continues from the
newest checkpoint and ends at the same total step count. The run directory is removed once the adapter is
registered.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline.backends import resolve_model
from pipeline.provenance import sha256_path
from pipeline.training.adapters import AdapterRecord, AdapterRegistry
from pipeline.training.config import FinetuneConfig

Progress = Callable[[float, str], None]
PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the directory holding the ``pipeline`` package


class FinetuneError(Exception):
    """The training failed; ``log_tail`` holds the end of the child's log for the operator (not for Gitea)."""

    def __init__(self, message: str, log_tail: str = "") -> None:
        super().__init__(message)
        self.log_tail = log_tail


class FinetuneCancelled(FinetuneError):
    pass


def read_dataset_provenance(data_dir: Path) -> dict[str, Any]:
    path = data_dir / "provenance.json"
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise FinetuneError(f"{path.name} in the dataset is not valid JSON: {exc}") from None


def check_dataset(data_dir: Path) -> None:
    """A directory ``datasets.save_to_disk`` wrote (cheap checks; the child loads it)."""
    if not data_dir.is_dir():
        raise FinetuneError(f"dataset {data_dir} does not exist (make one with `ssd sample`)")
    if not ((data_dir / "dataset_info.json").is_file() or (data_dir / "state.json").is_file()):
        raise FinetuneError(f"{data_dir} is not a dataset directory (datasets.save_to_disk output)")


class TrainingRun:
    """One fine-tune's working directory and job file (see the module docstring for the key)."""

    def __init__(self, data_dir: Path, model: str, config: FinetuneConfig, registry: AdapterRegistry) -> None:
        self.data_dir = Path(data_dir).resolve()
        check_dataset(self.data_dir)
        self.model = model
        self.model_path = resolve_model(model)
        self.config = config
        self.registry = registry
        self.base_sha256 = sha256_path(self.model_path)
        self.data_sha256 = sha256_path(self.data_dir)
        # threads change the speed, not the result: a resume may use another count
        settings = {k: v for k, v in config.to_dict().items() if k != "threads"}
        key_source = json.dumps(
            {"data": self.data_sha256, "base": self.base_sha256, "config": settings}, sort_keys=True
        )
        self.key = hashlib.sha256(key_source.encode()).hexdigest()[:16]
        self.dir = registry.root / "runs" / self.key
        self.output_dir = self.dir / "output"
        self.events = self.dir / "events.jsonl"
        self.log = self.dir / "child.log"
        self.job_file = self.dir / "job.json"

    def write_job(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        job = {
            "data_dir": str(self.data_dir),
            "model_path": str(self.model_path),
            "config": self.config.to_dict(),
            "output_dir": str(self.output_dir),
            "events": str(self.events),
            "parent_pid": os.getpid(),
            # The dequantized HF copy of a GGUF base, shared by every run on that base.
            "gguf_cache": str(self.registry.root / "runs" / "base-cache" / self.base_sha256[:16]),
        }
        self.job_file.write_text(json.dumps(job, indent=2), encoding="utf-8")

    def start(self) -> subprocess.Popen:
        """Start the child in a new session (its own process group, so a cancel reaches its helpers too)."""
        self.write_job()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PACKAGE_ROOT), env.get("PYTHONPATH", "")) if p)
        env["HF_HUB_OFFLINE"] = "1"  # nothing is downloaded at run time
        env.setdefault("TOKENIZERS_PARALLELISM", "false")
        with open(self.log, "ab") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "pipeline.training.trainer_child", str(self.job_file)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=str(self.dir),
                start_new_session=True,
            )

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the child's whole process group (checkpoints are the resume points: nothing to flush)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


class _EventReader:
    """Reads whole new lines appended to the events file since the reader was made."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = path.stat().st_size if path.exists() else 0

    def read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        with open(self.path, "rb") as handle:
            handle.seek(self.offset)
            data = handle.read()
        end = data.rfind(b"\n") + 1  # a line still being written is read next time
        self.offset += end
        events = []
        for line in data[:end].splitlines():
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return events


def supervise(
    run: TrainingRun,
    proc: subprocess.Popen,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    reader: _EventReader | None = None,
    poll_s: float = 0.2,
) -> dict[str, Any]:
    """Follow the child until it ends; returns its ``done`` event. Raises FinetuneCancelled / FinetuneError."""
    reader = reader or _EventReader(run.events)
    done: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    max_steps = 0

    def handle(events: list[dict[str, Any]]) -> None:
        nonlocal done, error, max_steps
        for event in events:
            kind = event.get("event")
            if kind == "start":
                max_steps = int(event.get("max_steps") or 0)
                resumed = event.get("resumed_from")
                note = f", resuming at step {resumed}" if resumed else ""
                if progress:
                    progress(
                        resumed / max_steps if resumed and max_steps else 0.0,
                        f"training {max_steps} steps on {event.get('device')}{note}",
                    )
            elif kind == "step" and progress:
                loss = f", loss {event['loss']:.4f}" if event.get("loss") is not None else ""
                progress(float(event["fraction"]), f"step {event['step']}/{event['max_steps']}{loss}")
            elif kind == "done":
                done = event
            elif kind == "error":
                error = event

    while proc.poll() is None:
        if cancel is not None and cancel.is_set():
            kill_group(proc)
            raise FinetuneCancelled("fine-tuning cancelled; run it again with the same inputs to resume")
        handle(reader.read())
        time.sleep(poll_s)
    handle(reader.read())
    if done is not None and proc.returncode == 0:
        return done
    if error is not None:
        raise FinetuneError(f"training failed: {error.get('type')}: {error.get('message')}", run.log_tail())
    if proc.returncode and proc.returncode < 0:
        raise FinetuneError(
            f"the training process was killed by signal {-proc.returncode}; "
            "run it again with the same inputs to resume",
            run.log_tail(),
        )
    raise FinetuneError(f"the training process exited with status {proc.returncode}", run.log_tail())


def finetune(
    data_dir: Path,
    model: str,
    config: FinetuneConfig,
    registry: AdapterRegistry,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> AdapterRecord:
    """Train a LoRA adapter on the ``messages`` dataset in ``data_dir`` and register it (see module docstring)."""
    run = TrainingRun(Path(data_dir), model, config, registry)
    if progress:
        progress(0.0, "starting the training process")
    reader = _EventReader(run.events)
    proc = run.start()
    try:
        result = supervise(run, proc, progress, cancel, reader)
    except BaseException:
        if proc.poll() is None:  # e.g. KeyboardInterrupt in the supervisor: never leave the child running
            kill_group(proc)
        raise
    train_metrics = {
        "backend": result["backend"],
        "steps": result["global_step"],
        "train_loss": result["train_loss"],
        "runtime_s": result["runtime_s"],
        "cpu_s": result.get("cpu_s"),
        "resumed_from": result.get("resumed_from"),
        **result["data"],
    }
    gguf = None
    if run.model_path.suffix == ".gguf":  # llama.cpp serves the base: give it the adapter as GGUF too (~1 s)
        from pipeline.training.export import ExportError, base_config_for, export_lora_gguf

        try:
            gguf = export_lora_gguf(Path(result["adapter"]), base_config_for(run.model_path), run.dir / "adapter.gguf")
        except ExportError as exc:
            train_metrics["gguf_export"] = str(exc)
    record = registry.create(
        Path(result["adapter"]),
        base_model=model,
        base_sha256=run.base_sha256,
        dataset={**read_dataset_provenance(run.data_dir), "path": str(run.data_dir), "sha256": run.data_sha256},
        config=config.to_dict(),
        loss_curve=result["loss_curve"],
        metrics={"train": train_metrics},
        gguf=gguf,
        move=True,
    )
    shutil.rmtree(run.dir, ignore_errors=True)
    if progress:
        progress(1.0, f"adapter {record.id} registered")
    return record
