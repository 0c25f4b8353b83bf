"""Sandboxed, parallel execution of untrusted programs against their tests.

    with Executor() as executor:                       # one warm zygote per usable core
        results = executor.run([(program, spec), ...])  # ExecResult per item, in input order

Layout: ``sandbox`` (namespaces, rlimits, uid drop), ``runner`` (the trusted code inside each child),
``zygote`` (the per-worker fork server and supervisor), ``pool`` (``Executor``: scheduling and judging),
``compare`` (LiveCodeBench's output rules), ``cache`` (on-disk verdict cache).

Known limits: an "assert" test (HumanEval's ``check``) runs inside the child, so a program written to
subvert the check in its own process (forging the control frames) could fake a pass; stdio and call
verdicts are decided in the parent and cannot be faked. Files the service leaves world-readable can be
read by a sample (keep secrets mode 0600).
"""

from __future__ import annotations

from typing import Any

__all__ = ["Executor", "ZygoteError", "usable_cores"]


def __getattr__(name: str) -> Any:
    # Lazy, so the zygote (which imports pipeline.executor.zygote) does not load the pool, threads, sqlite3:
    # every module it holds makes each fork a little dearer.
    if name in __all__:
        from pipeline.executor import pool

        return getattr(pool, name)
    raise AttributeError(name)
