"""``EvalConfig``: every evaluation setting, declared once.

``ssd eval``'s flags (``pipeline.options``), the ``/ssd eval`` arguments (``bot/commands/eval.py``) and the
reproducibility footer's command (``pipeline.provenance``) are derived from it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields

from pipeline.backends import BACKENDS
from pipeline.options import format_value
from pipeline.types import DEFAULT_MAX_TOKENS, SamplingParams

Progress = Callable[[float, str], None]

BOOTSTRAP_RESAMPLES = 2000  # over problems; seeded with EvalConfig.seed


MAX_TIMEOUT_S = 600.0


def _positive(value: int) -> None:
    if value < 1:
        raise ValueError(f"must be >= 1, got {value}")


def _temperatures(values: list[float]) -> None:
    if not values:
        raise ValueError("needs at least one temperature")
    if any(t < 0 for t in values):
        raise ValueError(f"must be >= 0, got {format_value(values)}")


def _timeout(seconds: float) -> None:
    if not 0 < seconds <= MAX_TIMEOUT_S:
        raise ValueError(f"must be > 0 and <= {MAX_TIMEOUT_S:g} seconds, got {seconds:g}")


def check_timeout(timeout_s: float | None) -> None:
    if timeout_s is not None:
        try:
            _timeout(timeout_s)
        except ValueError as exc:
            raise ValueError(f"timeout {exc}") from None


# Every eval setting is declared here once; ``ssd eval``'s flags (``pipeline.options``), the ``/ssd eval``
# arguments (``bot/commands/eval.py``) and the reproducibility footer's command (``pipeline.provenance``)
# are derived from it. Metadata keys besides those of ``pipeline.options``:
#   arg      the name a ``/ssd eval`` comment sets it by; the bot adds its own bounds and caps, and a field
#            without ``arg`` cannot be set from a comment at all (paths, URLs, worker counts).
#   footer   ALWAYS: in the footer's ``ssd eval`` command even at its default; IF_SET: when not at its
#            default; absent: never (how a run was carried out - workers, caches, output files - does not
#            change what it measured).
#   sampling the model or how it is sampled: left out of a gold run's command, which it does not affect.
ALWAYS, IF_SET = "always", "if set"


@dataclass(kw_only=True)
class EvalConfig:
    suite: str = field(
        default="humaneval",
        metadata={
            "help": "humaneval, basic, a JSONL file, lcb:PATH, or an instance file of `ssd issues build`",
            "arg": "suite",
            "footer": ALWAYS,
        },
    )
    gold: bool = field(
        default=False,
        metadata={
            "help": "run the suite's reference solutions instead of a model (an environment check)",
            "arg": "gold",
            "footer": IF_SET,
        },
    )
    model: str = field(
        default="smollm2",
        metadata={
            "help": "alias (smollm2), a .gguf file, a Hugging Face directory, or openai:NAME with --base-url",
            "arg": "model",
            "footer": ALWAYS,
            "sampling": True,
        },
    )
    backend: str | None = field(
        default=None,
        metadata={
            "choices": BACKENDS,
            "default_help": "chosen from the model",
            "arg": "backend",
            "footer": IF_SET,
            "sampling": True,
        },
    )
    base_url: str | None = field(
        default=None,
        metadata={
            "help": "OpenAI-compatible server, e.g. http://127.0.0.1:8080/v1",
            "footer": IF_SET,
            "sampling": True,
        },
    )
    adapter: str | None = field(
        default=None,
        metadata={
            "help": "PEFT LoRA directory (transformers) or LoRA .gguf (llama.cpp)",
            "metavar": "DIR",
            "arg": "adapter",
            "footer": IF_SET,
            "sampling": True,
        },
    )
    temperatures: list[float] = field(
        default_factory=lambda: [0.0],
        metadata={
            "help": "one row per temperature; 0 = greedy",
            "flag": "temperature",
            "aliases": ("-t",),
            "metavar": "T[,T...]",
            "check": _temperatures,
            "arg": "t",
            "footer": ALWAYS,
            "sampling": True,
        },
    )
    n: int = field(
        default=1,
        metadata={"help": "samples per problem", "check": _positive, "arg": "n", "footer": ALWAYS, "sampling": True},
    )
    seed: int = field(
        default=0,
        metadata={"help": "sample i of every problem uses seed+i", "arg": "seed", "footer": ALWAYS, "sampling": True},
    )
    top_p: float = field(
        default=1.0,
        metadata={"help": "nucleus truncation (1 = off)", "arg": "top_p", "footer": ALWAYS, "sampling": True},
    )
    top_k: int = field(
        default=0, metadata={"help": "top-k truncation (0 = off)", "arg": "top_k", "footer": ALWAYS, "sampling": True}
    )
    min_p: float = field(
        default=0.0, metadata={"help": "min-p truncation (0 = off)", "arg": "min_p", "footer": ALWAYS, "sampling": True}
    )
    max_tokens: int = field(
        default=DEFAULT_MAX_TOKENS,
        metadata={
            "help": "longest answer in tokens",
            "check": _positive,
            "arg": "max_tokens",
            "footer": ALWAYS,
            "sampling": True,
        },
    )
    retrieval: str = field(
        default="oracle",
        metadata={
            "help": "repository suites: show the files the gold patch touches (oracle: an upper bound) or the BM25 "
            "top files for the issue",
            "choices": ("oracle", "bm25"),
            "arg": "retrieval",
            "footer": IF_SET,
            "sampling": True,
        },
    )
    limit: int | None = field(
        default=None,
        metadata={
            "help": "first N problems only",
            "metavar": "N",
            "default_help": "all",
            "check": _positive,
            "arg": "limit",
            "footer": IF_SET,
        },
    )
    timeout_s: float | None = field(
        default=None,
        metadata={
            "help": "per-test wall limit for every problem",
            "flag": "timeout",
            "metavar": "SECONDS",
            "default_help": "the suite's, usually 6 s",
            "check": _timeout,
            "arg": "timeout",
            "footer": IF_SET,
        },
    )
    samples_out: str | None = field(
        default=None,
        metadata={
            "help": "write one JSON line per executed sample",
            "metavar": "FILE.jsonl",
            "default_help": "not written",
        },
    )
    workers: int | None = field(
        default=None, metadata={"help": "executor processes", "default_help": "cores", "check": _positive}
    )
    batch_size: int = field(
        default=8, metadata={"help": "prompts per generate() call: the unit of progress and of overlap", "cli": False}
    )
    n_threads: int | None = field(
        default=None,
        metadata={
            "help": "backend threads",
            "flag": "threads",
            "default_help": "cores - 1 for llama.cpp",
            "check": _positive,
        },
    )
    cache_dir: str | None = field(
        default=None,
        metadata={"help": "reuse verdicts of identical programs across runs", "metavar": "DIR", "default_help": "off"},
    )
    repo_cache_dir: str | None = field(
        default=None,
        metadata={
            "help": "repository suites: archives, checkouts and environments",
            "metavar": "DIR",
            "default_help": "$SSD_REPO_CACHE_DIR",
        },
    )
    unsafe_execution: bool = field(
        default=False,
        metadata={
            "help": "run programs even where the sandbox lacks isolation (the operator's opt-in, from the environment)",
            "cli": False,
        },
    )

    def __post_init__(self) -> None:
        for f in fields(self):
            value, check = getattr(self, f.name), f.metadata.get("check")
            if check is not None and value is not None:
                try:
                    check(value)
                except ValueError as exc:
                    raise ValueError(f"{f.metadata.get('flag', f.name)} {exc}") from None

    def params(self, temperature: float) -> SamplingParams:
        return SamplingParams(
            temperature=temperature,
            top_p=self.top_p,
            top_k=self.top_k,
            min_p=self.min_p,
            max_tokens=self.max_tokens,
            seed=self.seed,
            n=self.n,
        )
