"""Plain data shared by suites, the executor, sampling backends and metrics."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

# Verdicts of one (problem, sample) execution. "pass" is the only passing one.
VERDICTS = ("pass", "wrong", "runtime_error", "timeout", "memory", "no_code", "syntax")
Verdict = Literal["pass", "wrong", "runtime_error", "timeout", "memory", "no_code", "syntax"]
DIFFICULTIES = ("easy", "medium", "hard")


@dataclass(frozen=True)
class TestCase:
    """One stdin/stdout pair (kind "stdio") or one call (kind "call": JSON args list -> JSON result)."""

    input: str
    output: str


@dataclass(frozen=True)
class TestSpec:
    """How a program is checked.

    - "assert": ``assert_code`` runs after the program in the child (HumanEval's ``check``); the
      verdict is whether it completes. The only kind whose expectations live in the child.
    - "stdio":  each case's ``input`` is fed on stdin; the parent compares stdout with ``output``.
    - "call":   the child calls ``fn_name(*json.loads(input))`` and returns the result; the parent
      compares it with ``json.loads(output)``.
    """

    kind: Literal["assert", "stdio", "call"]
    assert_code: str | None = None
    cases: tuple[TestCase, ...] = ()
    fn_name: str | None = None
    timeout_s: float = 6.0  # per test, wall clock


@dataclass(frozen=True)
class Problem:
    task_id: str
    prompt: str
    tests: TestSpec
    entry_point: str | None = None
    starter_code: str | None = None
    difficulty: str | None = None
    reference: str | None = None  # a known-good full program (gold check)
    # "complete": the prompt is code to continue (HumanEval); "instruct": a task statement;
    # "lcb": LiveCodeBench's own templates.
    style: Literal["complete", "instruct", "lcb"] = "instruct"
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ExecResult:
    verdict: Verdict
    tests_run: int = 0
    tests_total: int = 0
    duration_s: float = 0.0
    detail: str = ""  # first failure, truncated
    cached: bool = False
    network_isolated: bool = False  # the sample ran in a network namespace without interfaces

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"


# The longest answer, in tokens, wherever one is sampled: an eval, SSD's training samples, the base-vs-tuned
# comparison and the nightly loop share it, so their numbers stay comparable.
DEFAULT_MAX_TOKENS = 512


@dataclass(frozen=True)
class SamplingParams:
    """Temperature 0 means greedy. Backends say (raise or warn) when they cannot honour a field."""

    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0  # 0 = off
    min_p: float = 0.0
    max_tokens: int = DEFAULT_MAX_TOKENS
    seed: int = 0
    stop: tuple[str, ...] = ()
    n: int = 1
