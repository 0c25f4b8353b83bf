"""``ssd eval`` / ``ssd score`` on an instance file: the same ``EvalResult`` (pass@k = resolved rate, bootstrap
CIs, paired deltas between temperatures) as every other suite.

Generation prompts the model with the issue text and the content of files at the base commit: by default the
files the gold patch touches (SWE-bench's "oracle" retrieval, which tells the model where to look, so it is an
**upper bound** on what the same model does with real retrieval), or with ``retrieval="bm25"`` the top
files of a BM25 ranking of the repository's Python files against the issue text. The answer's search/replace blocks become a patch
(``edits``), scored like any prediction (``score``). One checkout per instance serves all of its samples.
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.eval_config import EvalConfig, Progress
from pipeline.eval_records import (
    EvalResult,
    SampleRecord,
    SamplesError,
    _open_samples,
    _Sink,
    jsonl_rows,
    paired_against_first,
    summarize,
)
from pipeline.repo_suite.edits import EDIT_INSTRUCTIONS, edits_to_patch
from pipeline.repo_suite.environment import EnvironmentCache
from pipeline.repo_suite.instances import Instance, load_instances
from pipeline.repo_suite.patches import touched_files
from pipeline.repo_suite.retrieval import bm25_files
from pipeline.repo_suite.score import Outcome, Scorer
from pipeline.repo_suite.workspace import RepoCache
from pipeline.suites import Suite
from pipeline.types import Problem, TestSpec

MAX_FILE_CHARS = 12_000  # per file shown to the model; longer files are cut with a note
BM25_FILES = 3
RETRIEVAL_NOTES = {
    "oracle": "oracle (the files the gold patch touches: an upper bound on retrieval)",
    "bm25": f"bm25 (the top {BM25_FILES} Python files for the issue text)",
}


@dataclass(frozen=True)
class RepoCacheDirs:
    root: Path

    def caches(self) -> tuple[RepoCache, EnvironmentCache]:
        return RepoCache(self.root), EnvironmentCache(self.root / "envs")


def as_suite(instances: list[Instance], sha256: str, suite_id: str) -> Suite:
    """Instances as a ``Suite`` of ``Problem``s (for provenance and reports; the tests are the instance's)."""
    problems = [
        Problem(
            task_id=i.instance_id,
            prompt=i.problem_statement,
            tests=TestSpec(kind="assert"),
            metadata={"repo": i.repo, "pr_numbers": i.pr_numbers},
        )
        for i in instances
    ]
    return Suite(id=suite_id, problems=problems, sha256=sha256)


def training_overlap(instances: list[Instance], adapter: str | None) -> list[str]:
    """Instances whose PR is in the adapter's training data (``training_data.jsonl`` in the adapter's
    directory: ``ssd buffer export`` lines, each with ``repo`` and ``pr_number``)."""
    if not adapter:
        return []
    directory = Path(adapter) if Path(adapter).is_dir() else Path(adapter).parent
    manifest = directory / "training_data.jsonl"
    if not manifest.is_file():
        return []
    trained: set[tuple[str, int]] = set()
    with open(manifest, encoding="utf-8") as handle:
        for line in handle:
            try:
                row = json.loads(line)
                trained.add((str(row["repo"]).lower(), int(row["pr_number"])))
            except (ValueError, KeyError, TypeError):
                continue
    return [
        i.instance_id
        for i in instances
        if any((i.repo.lower(), number) in trained for number in (i.pr_numbers or [i.pr_number]))
    ]


def _record(
    instance: Instance,
    index: int,
    temperature: float | None,
    seed: int | None,
    output: str | None,
    patch: str | None,
    outcome: Outcome,
    gen_s: float = 0.0,
) -> SampleRecord:
    record = SampleRecord(
        instance.instance_id,
        index,
        temperature,
        None,
        seed,
        output,
        patch,
        outcome.verdict,
        outcome.resolved,
        detail=outcome.summary(),
        tests_run=outcome.f2p_passed + outcome.p2p_total - len(outcome.p2p_broken),
        tests_total=outcome.f2p_total + outcome.p2p_total,
        gen_s=round(gen_s, 4),
        exec_s=outcome.total_s,
        network_isolated=outcome.isolation.get("network") if outcome.isolation else None,
    )
    record.instance = {
        "applied": outcome.applied,
        "apply_method": outcome.apply_method,
        "FAIL_TO_PASS": f"{outcome.f2p_passed}/{outcome.f2p_total}",
        "PASS_TO_PASS_broken": outcome.p2p_broken,
        "test_s": outcome.test_s,
    }
    return record


# ---------------------------------------------------------------- scoring predictions


def read_predictions(path: str | Path, by_id: dict[str, Instance]) -> list[tuple[Instance, dict[str, Any]]]:
    """SWE-bench predictions (``instance_id``, ``model_patch``, ``model_name_or_path``) or our own samples
    lines (``task_id``, ``program`` = the patch, ``temperature``)."""
    rows = []
    for number, row in jsonl_rows(path):
        key = row.get("instance_id", row.get("task_id")) if isinstance(row, dict) else None
        if key is None:
            raise SamplesError(f"{path}:{number}: expected an object with instance_id")
        instance = by_id.get(str(key))
        if instance is None:
            raise SamplesError(f"{path}:{number}: instance_id {key!r} is not in the suite")
        patch = row.get("model_patch", row.get("program"))
        if patch is not None and not isinstance(patch, str):
            raise SamplesError(f"{path}:{number}: model_patch must be a string")
        rows.append(
            (
                instance,
                {
                    "patch": patch,
                    "temperature": row.get("temperature"),
                    "output": row.get("output"),
                    "seed": row.get("seed"),
                },
            )
        )
    return rows


def score_predictions(
    suite: str,
    predictions: str | Path,
    cache_dir: str | Path,
    *,
    samples_out: str | None = None,
    progress: Progress | None = None,
    seed: int = 0,
    source_for: Callable[[str], Any] | None = None,
    unsafe_execution: bool = False,
) -> EvalResult:
    """Score SWE-bench predictions; the repositories' tests run in the sandbox (``jail``), which refuses
    to run them with weaker isolation unless ``unsafe_execution`` (SSD_UNSAFE_EXECUTION=1)."""
    started = time.perf_counter()
    report = progress or (lambda fraction, message: None)
    instances, sha256 = load_instances(suite)
    rows = read_predictions(predictions, {i.instance_id: i for i in instances})
    if not rows:
        raise SamplesError(f"{predictions} holds no predictions")
    groups: dict[float | None, list[tuple[Instance, dict[str, Any]]]] = defaultdict(list)
    for instance, row in rows:
        temperature = row["temperature"]
        groups[float(temperature) if temperature is not None else None].append((instance, row))
    cache, environments = RepoCacheDirs(Path(cache_dir)).caches()
    conditions = []
    done = 0
    with ExitStack() as stack:
        sink = _Sink(stack.enter_context(_open_samples(samples_out)))
        scorer = stack.enter_context(Scorer(cache, environments, source_for, allow_unsafe=unsafe_execution))
        for temperature, items in sorted(groups.items(), key=lambda kv: (kv[0] is not None, kv[0] or 0)):
            label = "predictions" if temperature is None else f"T={temperature:g}"
            records, seen = [], Counter()
            for instance, row in items:
                outcome = scorer.score(instance, row["patch"])
                index = seen[instance.instance_id]
                seen[instance.instance_id] += 1
                records.append(_record(instance, index, temperature, row["seed"], row["output"], row["patch"], outcome))
                sink.add(records[-1:])
                done += 1
                report(
                    done / len(rows), f"{label}: {done}/{len(rows)} scored, {sum(r.passed for r in records)} resolved"
                )
            conditions.append((summarize(label, temperature, records, seed), records))
        sandbox = scorer.isolation_summary()
    report(1.0, "done")
    suite_id = Path(suite).stem
    return EvalResult(
        suite=suite_id,
        suite_sha256=sha256,
        model=str(predictions),
        backend="predictions",
        conditions=[c for c, _ in conditions],
        paired=paired_against_first(conditions, seed),
        wall_s=round(time.perf_counter() - started, 3),
        provenance={
            "suite": {"id": suite_id, "sha256": sha256, "problems": len(instances), "kind": "repo"},
            "samples": str(predictions),
            "sandbox": sandbox,
            "command": f"ssd score --suite {suite} --samples {predictions}",
        },
        records=sink.records,
    )


# ---------------------------------------------------------------- generation


def build_prompt(
    instance: Instance, read_file: Callable[[str], str | None], files: list[str] | None = None
) -> list[dict[str, str]]:
    """Issue text + files (default: those the gold patch touches, oracle retrieval) + the edit format."""
    parts = [
        f"You are fixing an issue in the repository {instance.repo}.",
        "## Issue",
        instance.problem_statement.strip(),
        "## Relevant files",
    ]
    for path in touched_files(instance.patch) if files is None else files:
        text = read_file(path)
        if text is None:
            parts.append(f"{path} (does not exist yet; create it if the fix needs it)")
            continue
        if len(text) > MAX_FILE_CHARS:
            text = text[:MAX_FILE_CHARS] + f"\n# ... ({len(text) - MAX_FILE_CHARS} more characters not shown)\n"
        parts.append(f"{path}\n```python\n{text}```" if text.endswith("\n") else f"{path}\n```python\n{text}\n```")
    parts += ["## Answer format", EDIT_INSTRUCTIONS]
    return [{"role": "user", "content": "\n\n".join(parts)}]


def _reader(checkout: Any) -> Callable[[str], str | None]:
    def read(path: str) -> str | None:
        target = checkout.work_tree / path
        if target.is_symlink() or not target.is_file() or not target.resolve().is_relative_to(checkout.work_tree):
            return None
        return target.read_text(encoding="utf-8", errors="replace")

    return read


def run_repo_eval(
    cfg: EvalConfig,
    progress: Progress | None = None,
    cache_dir: str | Path | None = None,
    source_for: Callable[[str], Any] | None = None,
) -> EvalResult:
    """``run_eval`` for an instance file: generate (or take the gold patches), score, summarize."""
    from pipeline import provenance

    started = time.perf_counter()
    report = progress or (lambda fraction, message: None)
    if cfg.retrieval not in RETRIEVAL_NOTES:
        raise ValueError(f"retrieval must be one of {', '.join(RETRIEVAL_NOTES)}, got {cfg.retrieval!r}")
    cache_root = cache_dir or cfg.repo_cache_dir
    if not cache_root:
        raise ValueError("a repository suite needs a cache directory (SSD_REPO_CACHE_DIR)")
    instances, sha256 = load_instances(cfg.suite, cfg.limit)
    suite = as_suite(instances, sha256, Path(cfg.suite).stem)
    cache, environments = RepoCacheDirs(Path(cache_root)).caches()
    conditions = []
    with ExitStack() as stack:
        sink = _Sink(stack.enter_context(_open_samples(cfg.samples_out)))
        scorer = stack.enter_context(Scorer(cache, environments, source_for, allow_unsafe=cfg.unsafe_execution))
        if cfg.gold:
            records = []
            for position, instance in enumerate(instances):
                outcome = scorer.score(instance, instance.patch)
                records.append(_record(instance, 0, None, None, None, instance.patch, outcome))
                sink.add(records[-1:])
                report((position + 1) / len(instances), f"gold: {position + 1}/{len(instances)}")
            conditions.append((summarize("gold", None, records, cfg.seed), records))
            model_info, model_id, backend_name = None, "gold", "gold"
        else:
            from pipeline.backends import open_backend, sample_seed

            backend = open_backend(
                cfg.model,
                backend=cfg.backend,
                base_url=cfg.base_url,
                adapter=cfg.adapter,
                n_threads=cfg.n_threads,
                n_ctx=max(8192, cfg.max_tokens + 6144),
            )
            stack.callback(backend.close)
            model_info, model_id, backend_name = backend.describe(), backend.model_id, backend.name
            prompts = {}
            for instance in instances:
                checkout, _ = scorer.checkout(instance)
                checkout.reset()
                files = None
                if cfg.retrieval == "bm25":
                    files = bm25_files(checkout.work_tree, instance.problem_statement, BM25_FILES)
                prompts[instance.instance_id] = build_prompt(instance, _reader(checkout), files)
            for t_index, temperature in enumerate(cfg.temperatures):
                params = cfg.params(temperature)
                tokens_before = backend.usage.completion_tokens
                t0 = time.perf_counter()
                records = []
                for position, instance in enumerate(instances):
                    g0 = time.perf_counter()
                    outputs = backend.generate([prompts[instance.instance_id]], params)[0]
                    share = (time.perf_counter() - g0) / max(len(outputs), 1)
                    checkout, _ = scorer.checkout(instance)
                    checkout.reset()
                    for index, text in enumerate(outputs):
                        edit = edits_to_patch(text, _reader(checkout))
                        outcome = scorer.score(instance, edit.patch)
                        if not edit.patch and edit.blocks:
                            outcome.verdict, outcome.detail = "patch_failed", "; ".join(edit.errors)[:300]
                        elif not edit.blocks:
                            outcome.verdict, outcome.detail = "no_code", "no edit block in the answer"
                        record = _record(
                            instance,
                            index,
                            temperature,
                            sample_seed(params, index) if temperature > 0 else None,
                            text,
                            edit.patch,
                            outcome,
                            share,
                        )
                        record.instance["edit_format"] = edit.format
                        record.instance["edit_errors"] = edit.errors
                        records.append(record)
                        sink.add([record])
                    report(
                        (t_index + (position + 1) / len(instances)) / len(cfg.temperatures),
                        f"T={temperature:g}: {position + 1}/{len(instances)} instances, "
                        f"{sum(r.passed for r in records)} resolved",
                    )
                condition = summarize(f"T={temperature:g}", temperature, records, cfg.seed)
                condition.completion_tokens = backend.usage.completion_tokens - tokens_before
                condition.wall_s = round(time.perf_counter() - t0, 3)
                conditions.append((condition, records))
        record = provenance.collect(cfg, suite, model_info)
        record["sandbox"] = scorer.isolation_summary()
    record["suite"]["kind"] = "repo"
    record["retrieval"] = RETRIEVAL_NOTES["oracle" if cfg.gold else cfg.retrieval]
    overlap = training_overlap(instances, cfg.adapter)
    if overlap:
        record["training_overlap"] = overlap
    report(1.0, "done")
    return EvalResult(
        suite=suite.id,
        suite_sha256=sha256,
        model=model_id,
        backend=backend_name,
        conditions=[c for c, _ in conditions],
        paired=paired_against_first(conditions, cfg.seed),
        wall_s=round(time.perf_counter() - started, 3),
        provenance=record,
        records=sink.records,
    )


def is_repo_suite(spec: str) -> bool:
    from pipeline.repo_suite.instances import looks_like_instances

    path = Path(spec).expanduser()
    return path.is_file() and looks_like_instances(path)
