"""On-disk verdict cache: an SQLite file under the executor's cache directory.

Key = sha256 over (executor version, namespace such as (suite id, task id), sha256(program), tests hash,
limits). The tests hash covers the whole ``TestSpec`` (kind, cases, assert code, fn name, timeout), so a
changed test or limit never reuses an old verdict. Timeouts are not stored: they depend on machine load.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path

from pipeline.types import ExecResult, TestSpec

# Bump when the executor's judging changes in a way that can change a verdict.
EXECUTOR_VERSION = "2"
UNCACHED_VERDICTS = frozenset({"timeout"})


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@functools.lru_cache(maxsize=4096)  # the n samples of a problem share one TestSpec
def tests_hash(spec: TestSpec) -> str:
    return sha256_text(json.dumps(dataclasses.asdict(spec), sort_keys=True))


def verdict_key(program: str, spec: TestSpec, limits: dict, namespace: tuple[str, ...] = ()) -> str:
    parts = [EXECUTOR_VERSION, list(namespace), sha256_text(program), tests_hash(spec), limits]
    return sha256_text(json.dumps(parts, sort_keys=True))


class VerdictCache:
    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "verdicts.sqlite3"
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS verdicts (key TEXT PRIMARY KEY, verdict TEXT NOT NULL, tests_run INTEGER,"
            " tests_total INTEGER, duration_s REAL, detail TEXT, network_isolated INTEGER, created REAL)"
        )

    def get(self, key: str) -> ExecResult | None:
        with self._lock:
            row = self._db.execute(
                "SELECT verdict, tests_run, tests_total, duration_s, detail, network_isolated FROM verdicts"
                " WHERE key = ?",
                (key,),
            ).fetchone()
        if row is None:
            return None
        return ExecResult(
            verdict=row[0],
            tests_run=row[1],
            tests_total=row[2],
            duration_s=row[3],
            detail=row[4],
            cached=True,
            network_isolated=bool(row[5]),
        )

    def put(self, key: str, result: ExecResult) -> None:
        if result.verdict in UNCACHED_VERDICTS:
            return
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO verdicts VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    key,
                    result.verdict,
                    result.tests_run,
                    result.tests_total,
                    result.duration_s,
                    result.detail,
                    int(result.network_isolated),
                    time.time(),
                ),
            )

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT count(*) FROM verdicts").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
