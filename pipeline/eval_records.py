"""What an evaluation produces: per-sample records, per-condition results with pass@k and CIs, the paired
comparison, the samples file (written in issue order as samples finish), and the table rows the CLI and the
bot render. Shared by program suites (``pipeline.evaluate``) and repository suites
(``pipeline.repo_suite.evaluate``).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from pipeline.eval_config import BOOTSTRAP_RESAMPLES


@dataclass
class SampleRecord:
    """One executed sample: a line of ``--samples-out``."""

    task_id: str
    sample_index: int
    temperature: float | None
    difficulty: str | None
    seed: int | None
    output: str | None  # raw model output (None for gold / programs scored as given)
    program: str | None  # what was executed (None: nothing could be extracted)
    verdict: str
    passed: bool
    detail: str = ""
    tests_run: int = 0
    tests_total: int = 0
    gen_s: float = 0.0  # this sample's share of its generate() call
    exec_s: float = 0.0
    cached: bool = False
    network_isolated: bool | None = None  # False: the sandbox could not cut the network for this sample
    instance: dict[str, Any] | None = None  # repository suites: applied?, FAIL_TO_PASS x/y, PASS_TO_PASS broken


@dataclass
class ConditionResult:
    """One row of the report: a temperature (or gold, or a scored file)."""

    label: str
    temperature: float | None
    n: int
    problems: int
    samples: int
    passed: int
    pass_at: dict[str, dict[str, float]]  # "1" -> {"estimate", "ci_low", "ci_high"}
    by_difficulty: dict[str, dict[str, Any]]  # difficulty -> {"problems", "samples", "passed", "pass_at"}
    verdicts: dict[str, int]
    gen_s: float = 0.0
    exec_s: float = 0.0
    completion_tokens: int = 0
    wall_s: float = 0.0
    note: str = ""  # e.g. why only pass@1 is reported


GREEDY_NOTE = "T=0 is greedy decoding: n copies of one greedy sample do not measure pass@k, so only pass@1 is reported"


@dataclass
class EvalResult:
    suite: str
    suite_sha256: str
    model: str
    backend: str
    conditions: list[ConditionResult]
    paired: list[dict[str, Any]]  # each later condition against the first, same problems
    wall_s: float
    provenance: dict[str, Any]
    records: list[SampleRecord] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The JSON summary (per-sample records are in ``samples_out``, not here)."""
        data = asdict(self)
        del data["records"]
        return data

    def condition(self, label: str) -> ConditionResult:
        return next(c for c in self.conditions if c.label == label)


# ---------------------------------------------------------------- metrics over records


def ks_for(n: int) -> list[int]:
    """pass@k reported for k = 1, 2, 4, ... <= n, and n itself."""
    ks, k = [], 1
    while k <= n:
        ks.append(k)
        k *= 2
    if n not in ks:
        ks.append(n)
    return ks


def _per_problem(records: Iterable[SampleRecord]) -> dict[str, list[bool]]:
    outcomes: dict[str, list[bool]] = defaultdict(list)
    for record in records:
        outcomes[record.task_id].append(record.passed)
    return outcomes


def summarize(
    label: str, temperature: float | None, records: list[SampleRecord], seed: int = 0, note: str = ""
) -> ConditionResult:
    """pass@k (k <= the smallest n of any problem) overall and per difficulty, with bootstrap 95% CIs.

    At temperature 0 only pass@1: repeats of greedy decoding are copies (or near-copies) of one sample, and
    a pass@k over them would only restate pass@1 with a CI that is pass@1's."""
    from pipeline import metrics

    outcomes = _per_problem(records)
    n = min((len(v) for v in outcomes.values()), default=0)
    difficulty_of = {r.task_id: r.difficulty for r in records}
    rows = [(task, difficulty_of[task], len(flags), sum(flags)) for task, flags in outcomes.items()]
    ks = ks_for(n) if n else []
    if temperature == 0 and n > 1:
        ks, note = [1], note or f"{GREEDY_NOTE} (the {n} samples per problem are averaged)"
    stats = metrics.summarize(rows, ks=ks, resamples=BOOTSTRAP_RESAMPLES, seed=seed)
    return ConditionResult(
        label=label,
        temperature=temperature,
        n=n,
        problems=len(outcomes),
        samples=len(records),
        passed=sum(r.passed for r in records),
        pass_at=stats["overall"]["pass_at"],
        by_difficulty=stats["by_difficulty"],
        verdicts=dict(Counter(r.verdict for r in records)),
        gen_s=round(sum(r.gen_s for r in records), 3),
        exec_s=round(sum(r.exec_s for r in records), 3),
        note=note,
    )


def paired_against_first(
    conditions: list[tuple[ConditionResult, list[SampleRecord]]], seed: int = 0
) -> list[dict[str, Any]]:
    """pass@1 difference (later - first) on the problems both measured, with a paired bootstrap CI."""
    from pipeline import metrics

    if len(conditions) < 2:
        return []
    base_condition, base_records = conditions[0]
    base = _per_problem(base_records)
    result = []
    for condition, records in conditions[1:]:
        other = _per_problem(records)
        shared = sorted(set(base) & set(other))
        a = [(len(base[t]), sum(base[t])) for t in shared]
        b = [(len(other[t]), sum(other[t])) for t in shared]
        if not shared:
            continue
        diff = metrics.paired_difference(a, b, k=1, resamples=BOOTSTRAP_RESAMPLES, seed=seed)
        result.append(
            {
                "label": condition.label,
                "against": base_condition.label,
                "problems": len(shared),
                "k": 1,
                "delta": diff["difference"],
                "ci_low": diff["ci_low"],
                "ci_high": diff["ci_high"],
                "first": diff["a"],
                "second": diff["b"],
            }
        )
    return result


class _Sink:
    """Collects records and appends them to the samples file in the order they were issued, as soon as
    every earlier one is done (execution itself finishes in any order)."""

    def __init__(self, handle: IO[str] | None) -> None:
        self.handle = handle
        self.records: list[SampleRecord] = []
        self._issued: list[SampleRecord | None] = []  # by issue number; None once written
        self._done: set[int] = set()
        self._next = 0

    def issue(self, record: SampleRecord) -> int:
        self._issued.append(record)
        return len(self._issued) - 1

    def add(self, records: list[SampleRecord]) -> None:
        """Records already done, in order (repository suites score one instance at a time)."""
        for record in records:
            self.finish(self.issue(record))

    def finish(self, number: int) -> None:
        self._done.add(number)
        while self._next in self._done:
            self._done.discard(self._next)
            record = self._issued[self._next]
            self._issued[self._next] = None
            self._next += 1
            assert record is not None
            self.records.append(record)
            if self.handle:
                self.handle.write(json.dumps(asdict(record), ensure_ascii=False) + "\n")
        if self.handle:
            self.handle.flush()


@contextmanager
def _open_samples(path: str | None) -> Iterator[IO[str] | None]:
    if not path:
        yield None
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        yield handle


class SamplesError(ValueError):
    """A samples file line is malformed; the message names the line."""


def jsonl_rows(path: str | Path) -> Iterator[tuple[int, Any]]:
    """(line number, parsed JSON) of each non-blank line; a line that is not JSON is a ``SamplesError``."""
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as exc:
                raise SamplesError(f"{path}:{number}: not JSON: {exc}") from None


# ---------------------------------------------------------------- presentation (shared by the CLI and the bot)


def format_stat(stat: dict[str, float] | None) -> str:
    """``12.5% [8.0, 17.0]``: estimate and 95% CI in percent."""
    if not stat:
        return "–"
    return f"{stat['estimate'] * 100:.1f}% [{stat['ci_low'] * 100:.1f}, {stat['ci_high'] * 100:.1f}]"


def report_rows(data: dict[str, Any]) -> tuple[list[str], list[list[str]], list[str]]:
    """(headers, rows, paired lines) for ``EvalResult.to_dict()``: one row per condition and one per
    difficulty under it; every number with its n and CI."""
    ks = sorted({int(k) for c in data["conditions"] for k in c["pass_at"]})
    headers = ["condition", "difficulty", "problems", "samples", "passed", *[f"pass@{k}" for k in ks], "time"]
    rows: list[list[str]] = []
    for c in data["conditions"]:
        timing = f"{c['wall_s']:.0f}s" if c.get("wall_s") else f"exec {c['exec_s']:.1f}s"
        rows.append(
            [
                c["label"],
                "all",
                str(c["problems"]),
                str(c["samples"]),
                str(c["passed"]),
                *[format_stat(c["pass_at"].get(str(k))) for k in ks],
                timing,
            ]
        )
        for difficulty, bucket in c["by_difficulty"].items():
            rows.append(
                [
                    "",
                    difficulty,
                    str(bucket["problems"]),
                    str(bucket["samples"]),
                    str(bucket["passed"]),
                    *[format_stat(bucket["pass_at"].get(str(k))) for k in ks],
                    "",
                ]
            )
    notes = [f"{c['label']}: {c['note']}" for c in data["conditions"] if c.get("note")]
    paired = notes + [
        f"paired: {p['label']} − {p['against']}: pass@1 {p['delta'] * 100:+.1f} points "
        f"[{p['ci_low'] * 100:+.1f}, {p['ci_high'] * 100:+.1f}] (95% CI, {p['problems']} problems)"
        for p in data.get("paired", [])
    ]
    return headers, rows, paired
