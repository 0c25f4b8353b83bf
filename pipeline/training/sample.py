"""SSD step 1: sample ONE answer per prompt from the frozen base model at T_train, filter, write a dataset.

No correctness filter (the method trains on raw, unverified outputs). Filtering follows the released code
(apple/ml-ssd ``filter_shortest_percent``): empty answers are always dropped, then the shortest
``filter_shortest_percent`` percent of the rest (``int(n * p / 100)`` answers, by character length, ties
broken by prompt order). ``filter_shortest_percent=0`` is the paper's text instead: drop empty answers and
one-line stubs (one non-empty line, under 80 characters, no code fence: the MLX port's "paper mode").
Every drop is written to ``dropped.jsonl`` with its reason.

Chat template: ON by default, unlike the released code, which passes the raw prompt string to vLLM. Our
prompts are instructions for chat models, the dataset is chat-formatted (the SFT trains on the assistant turn
after the user turn, rendered with the same template), and our evaluation prompts the model through its chat
template too, so sampling through the template makes the training answers the model's own answers in the
context it is trained and evaluated in. ``chat_template=False`` reproduces the released pipeline (raw prompt,
stop at ``<|im_end|>``/``<|endoftext|>``); it needs a local model (llama.cpp or transformers).

Output directory (``out``): ``datasets.Dataset.save_to_disk`` files (columns ``messages``, ``prompt_id``,
``source``), ``provenance.json`` (``read_provenance``), ``dropped.jsonl``, and the work files ``run.json``
(the settings this directory was started with) and ``raw.jsonl`` (every sample, appended chunk by chunk and
flushed). Resumable: running again with the same settings skips the prompts already in ``raw.jsonl`` (a chunk
cut short by a kill is sampled again, so chunk boundaries, and with them the transformers backend's seeding,
stay those of an uninterrupted run); different settings are refused rather than mixed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shlex
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.training.presets import Preset, preset_for
from pipeline.training.prompt_sources import PromptItem, PromptSet, load_prompts
from pipeline.types import DEFAULT_MAX_TOKENS, SamplingParams

Progress = Callable[[float, str], None]

RAW_FILE = "raw.jsonl"
RUN_FILE = "run.json"
DROPPED_FILE = "dropped.jsonl"
PROVENANCE_FILE = "provenance.json"
# What the released pipeline stops on when it samples raw prompts (vLLM ``stop=[...]``).
RAW_STOP = ("<|im_end|>", "<|endoftext|>")
STUB_MAX_CHARS = 80


class SampleError(ValueError):
    """A sampling run cannot start or continue; the message says why and what to do."""


class SampleCancelled(RuntimeError):
    """The run was cancelled; what was sampled so far stays in ``raw.jsonl`` for a resume."""


@dataclass
class SampleConfig:
    prompts: str = field(
        default="shipped",
        metadata={
            "help": "prompt source: shipped | suite:NAME | buffer | a JSONL file (field 'prompt') or text file "
            "(one prompt per line)",
            "metavar": "SRC",
        },
    )
    model: str = field(
        default="smollm2",
        metadata={
            "help": "base model: an alias (smollm2), a .gguf file or a Hugging Face model directory",
            "metavar": "SPEC",
        },
    )
    out: str | None = field(default=None, metadata={"help": "output dataset directory", "metavar": "DIR"})
    backend: str | None = field(
        default=None, metadata={"help": "llamacpp | transformers; none = chosen from the model spec"}
    )
    preset: str | None = field(
        default=None,
        metadata={"help": "decoding preset family (see pipeline.training.presets); none = from the model name"},
    )
    t_train: float | None = field(default=None, metadata={"help": "sampling temperature; none = the preset's"})
    top_p: float | None = field(default=None, metadata={"help": "nucleus truncation; none = the preset's"})
    top_k: int | None = field(default=None, metadata={"help": "top-k truncation (0 = off); none = the preset's"})
    min_p: float = field(default=0.0, metadata={"help": "min-p truncation (0 = off)"})
    max_tokens: int = field(default=DEFAULT_MAX_TOKENS, metadata={"help": "longest answer in tokens"})
    limit: int | None = field(default=None, metadata={"help": "sample only the first N prompts"})
    seed: int = field(default=0, metadata={"help": "sampling seed (every prompt's one sample uses it)"})
    filter_shortest_percent: float = field(
        default=10.0,
        metadata={
            "help": "drop the shortest P% of non-empty answers (released code); 0 = drop empty answers and "
            "one-line stubs only (the paper's text)"
        },
    )
    chat_template: bool = field(
        default=True,
        metadata={"help": "sample through the model's chat template (the released code samples the raw prompt)"},
    )
    batch_size: int = field(default=8, metadata={"help": "prompts per generate call and per resume chunk"})
    n_threads: int | None = field(default=None, metadata={"help": "backend CPU threads; none = cores - 1"})

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 1:
            raise SampleError(f"limit must be >= 1, got {self.limit}")
        if not 0 <= self.filter_shortest_percent < 100:
            raise SampleError(f"filter_shortest_percent must be in [0, 100), got {self.filter_shortest_percent}")
        if self.t_train is not None and self.t_train <= 0:
            raise SampleError("t_train must be > 0: SSD samples, it never decodes greedily")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise SampleError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k is not None and self.top_k < 0:
            raise SampleError(f"top_k must be >= 0, got {self.top_k}")
        if self.max_tokens < 1 or self.batch_size < 1:
            raise SampleError("max_tokens and batch_size must be >= 1")

    def preset_values(self) -> Preset:
        return preset_for(self.model, self.preset)

    def params(self) -> SamplingParams:
        """The sampling parameters: explicit values, else the preset's."""
        preset = self.preset_values()
        return SamplingParams(
            temperature=self.t_train if self.t_train is not None else preset.t_train,
            top_p=self.top_p if self.top_p is not None else preset.top_p,
            top_k=self.top_k if self.top_k is not None else preset.top_k,
            min_p=self.min_p,
            max_tokens=self.max_tokens,
            seed=self.seed,
            stop=() if self.chat_template else RAW_STOP,
            n=1,
        )


@dataclass
class SampleResult:
    out: Path
    provenance: dict[str, Any]
    kept: int
    dropped: dict[str, int]
    resumed_from: int  # prompts already sampled when this run started

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["out"] = str(self.out)
        return data


# ---------------------------------------------------------------- filtering (pure)


def is_stub(text: str) -> bool:
    """One non-empty line, under 80 characters, no code fence: the paper's "single-line stub"."""
    lines = [line for line in text.splitlines() if line.strip()]
    return len(lines) == 1 and len(lines[0]) < STUB_MAX_CHARS and "```" not in text


def filter_samples(rows: list[dict[str, Any]], shortest_percent: float) -> tuple[list[dict], list[dict]]:
    """Split sample rows (each with ``response``) into (kept, dropped); dropped rows get a ``reason``."""
    kept, dropped = [], []
    for row in rows:
        if not row["response"].strip():
            dropped.append({**row, "reason": "empty"})
        elif shortest_percent == 0 and is_stub(row["response"]):
            dropped.append({**row, "reason": "stub"})
        else:
            kept.append(row)
    if shortest_percent > 0 and kept:
        count = int(len(kept) * shortest_percent / 100)
        order = sorted(range(len(kept)), key=lambda i: (len(kept[i]["response"]), i))  # stable: prompt order
        shortest = set(order[:count])
        reason = f"shortest_{shortest_percent:g}pct"
        dropped += [{**kept[i], "reason": reason} for i in sorted(shortest)]
        kept = [row for i, row in enumerate(kept) if i not in shortest]
    return kept, dropped


def normalize_prompt(text: str) -> str:
    return " ".join(text.lower().split())


def prompt_fingerprint(text: str) -> str:
    """What compare matches evaluation prompts against (whitespace and case do not matter)."""
    return hashlib.sha256(normalize_prompt(text).encode("utf-8")).hexdigest()[:16]


# ---------------------------------------------------------------- the run


def read_provenance(directory: str | Path) -> dict[str, Any]:
    """The ``provenance.json`` of a finished ``ssd sample`` directory."""
    path = Path(directory) / PROVENANCE_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SampleError(
            f"{directory} is not a finished SSD dataset (no {PROVENANCE_FILE}); run `ssd sample` (again) to finish it"
        ) from None
    except json.JSONDecodeError as exc:
        raise SampleError(f"{path} is not valid JSON: {exc.msg}") from None


def _settings(cfg: SampleConfig, prompts: PromptSet, params: SamplingParams) -> dict[str, Any]:
    """Everything that changes the samples: a resume must match it exactly."""
    return {
        "model": cfg.model,
        "backend": cfg.backend,
        "prompts": prompts.describe(),
        "sampling": asdict(params),
        "chat_template": cfg.chat_template,
        "batch_size": cfg.batch_size,  # chunking fixes the transformers backend's seeding
    }


def _read_raw(path: Path, chunks: list[list[PromptItem]]) -> list[dict[str, Any]]:
    """The samples of complete chunks, in order; rewrites the file without a torn or partial tail."""
    if not path.exists():
        return []
    rows: dict[str, dict[str, Any]] = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                break  # a line torn by a kill: everything after it is re-sampled
            rows[row["prompt_id"]] = row
    done: list[dict[str, Any]] = []
    for chunk in chunks:
        if not all(item.id in rows for item in chunk):
            break
        done += [rows[item.id] for item in chunk]
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in done)
    os.replace(tmp, path)
    return done


def _raw_generate(backend: Any, texts: list[str], params: SamplingParams) -> list[str]:
    """Continue the raw prompt strings (no chat template), as the released pipeline does."""
    from pipeline.backends import BackendError

    # The Backend interface takes chat messages only; raw completion reaches into the two local backends.
    if backend.name == "llamacpp":
        outputs = []
        for text in texts:
            backend.llm.reset()  # same reason as LlamaCppBackend._one: a sample depends on its own inputs only
            response = backend.llm.create_completion(
                prompt=text,
                temperature=params.temperature,
                top_p=params.top_p,
                top_k=params.top_k,
                min_p=params.min_p,
                typical_p=1.0,
                repeat_penalty=1.0,
                presence_penalty=0.0,
                frequency_penalty=0.0,
                max_tokens=params.max_tokens,
                stop=list(params.stop),
                seed=params.seed,
            )
            usage = response.get("usage") or {}
            backend.usage.completion_tokens += int(usage.get("completion_tokens", 0))
            outputs.append(response["choices"][0].get("text") or "")
        return outputs
    if backend.name == "transformers":
        backend.torch.manual_seed(params.seed)
        return backend._chunk(texts, params)
    raise BackendError(f"sampling raw prompts (chat_template off) needs a local model, not {backend.name}")


def run_sample(
    cfg: SampleConfig, progress: Progress | None = None, buffer: Any = None, cancel: threading.Event | None = None
) -> SampleResult:
    """Sample, filter and write the dataset to ``cfg.out`` (see the module docstring); resumes a cut run."""
    from pipeline import provenance
    from pipeline.backends import open_backend

    if not cfg.out:
        raise SampleError("an output directory is needed (--out DIR)")
    report = progress or (lambda fraction, message: None)
    started = time.perf_counter()
    out = Path(cfg.out).expanduser()
    prompts = load_prompts(cfg.prompts, cfg.limit, buffer=buffer)
    params = cfg.params()
    settings = json.loads(json.dumps(_settings(cfg, prompts, params)))  # as it reads back (tuples -> lists)
    out.mkdir(parents=True, exist_ok=True)
    run_path = out / RUN_FILE
    if run_path.exists():
        previous = json.loads(run_path.read_text(encoding="utf-8"))
        if previous != settings:
            changed = sorted(k for k in settings if previous.get(k) != settings[k])
            raise SampleError(
                f"{out} holds a sampling run with other settings ({', '.join(changed)} differ); "
                "use another --out, or delete the directory to start over"
            )
    else:
        run_path.write_text(json.dumps(settings, indent=2), encoding="utf-8")

    chunks = [prompts.items[i : i + cfg.batch_size] for i in range(0, len(prompts.items), cfg.batch_size)]
    raw_path = out / RAW_FILE
    rows = _read_raw(raw_path, chunks)
    resumed_from = len(rows)
    model_info: dict[str, Any] = {"spec": cfg.model}
    tokens = 0
    if resumed_from < len(prompts.items):
        report(
            resumed_from / len(prompts.items),
            f"loading {cfg.model}" + (f" (resuming after {resumed_from} samples)" if resumed_from else ""),
        )
        backend = open_backend(
            cfg.model,
            backend=cfg.backend,
            n_threads=cfg.n_threads,
            n_ctx=max(4096, cfg.max_tokens + 2048),
            batch_size=cfg.batch_size,
        )
        try:
            model_info.update(backend.describe())
            with open(raw_path, "a", encoding="utf-8") as handle:
                for chunk in chunks[len(rows) // cfg.batch_size if rows else 0 :]:
                    if cancel is not None and cancel.is_set():
                        raise SampleCancelled(f"cancelled after {len(rows)} samples; run again to resume")
                    t0 = time.perf_counter()
                    if cfg.chat_template:
                        texts = [
                            outs[0]
                            for outs in backend.generate(
                                [[{"role": "user", "content": item.prompt}] for item in chunk], params
                            )
                        ]
                    else:
                        texts = _raw_generate(backend, [item.prompt for item in chunk], params)
                    share = round((time.perf_counter() - t0) / len(chunk), 3)
                    new = [
                        {"prompt_id": item.id, "prompt": item.prompt, "response": text.strip(), "gen_s": share}
                        for item, text in zip(chunk, texts, strict=True)
                    ]
                    handle.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in new)
                    handle.flush()
                    os.fsync(handle.fileno())
                    rows += new
                    report(len(rows) / len(prompts.items), f"sampled {len(rows)}/{len(prompts.items)}")
            tokens = backend.usage.completion_tokens
        finally:
            backend.close()
    else:
        from pipeline.backends import resolve_model

        model_info["path"] = str(resolve_model(cfg.model)) if not cfg.model.startswith("openai:") else None

    report(1.0, "filtering and writing the dataset")
    kept, dropped = filter_samples(rows, cfg.filter_shortest_percent)
    _write_dataset(out, kept, prompts.source)
    with open(out / DROPPED_FILE, "w", encoding="utf-8") as handle:
        for row in dropped:
            handle.write(
                json.dumps(
                    {
                        "prompt_id": row["prompt_id"],
                        "reason": row["reason"],
                        "chars": len(row["response"]),
                        "response": row["response"],
                    },
                    ensure_ascii=False,
                )
                + "\n"
            )
    drop_counts = dict(Counter(row["reason"] for row in dropped))
    path = model_info.get("path")
    record = {
        "kind": "ssd-sample",
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "model": {**model_info, "sha256": provenance.sha256_path(path) if path and Path(path).exists() else None},
        "prompts": prompts.describe(),
        "sampling": {k: v for k, v in asdict(params).items() if k != "n"},
        "preset": cfg.preset_values().to_dict(),
        "seed": cfg.seed,
        "chat_template": cfg.chat_template,
        "filter": {
            "filter_shortest_percent": cfg.filter_shortest_percent,
            "rule": "empty + shortest percent" if cfg.filter_shortest_percent else "empty + one-line stubs",
        },
        "counts": {"prompts": len(prompts.items), "sampled": len(rows), "kept": len(kept), "dropped": drop_counts},
        "prompt_ids": [row["prompt_id"] for row in rows],
        "prompt_fingerprints": [prompt_fingerprint(row["prompt"]) for row in rows],
        "completion_tokens_this_run": tokens,
        "resumed_from": resumed_from,
        "wall_s_this_run": round(time.perf_counter() - started, 3),
        "versions": provenance.package_versions(),
        "commit": provenance.git_commit(),
        "command": sample_command(cfg),
    }
    tmp = out / (PROVENANCE_FILE + ".tmp")
    tmp.write_text(json.dumps(record, indent=2, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, out / PROVENANCE_FILE)
    return SampleResult(out=out, provenance=record, kept=len(kept), dropped=drop_counts, resumed_from=resumed_from)


def _write_dataset(out: Path, kept: list[dict[str, Any]], source: str) -> None:
    import datasets

    table = {
        "messages": [
            [{"role": "user", "content": row["prompt"]}, {"role": "assistant", "content": row["response"]}]
            for row in kept
        ],
        "prompt_id": [row["prompt_id"] for row in kept],
        "source": [source] * len(kept),
    }
    features = datasets.Features(
        {
            "messages": [{"role": datasets.Value("string"), "content": datasets.Value("string")}],
            "prompt_id": datasets.Value("string"),
            "source": datasets.Value("string"),
        }
    )
    datasets.Dataset.from_dict(table, features=features).save_to_disk(str(out))


def sample_command(cfg: SampleConfig) -> str:
    """The ``ssd sample`` command line that reproduces ``cfg`` (preset values written out)."""
    params = cfg.params()
    args = [
        "ssd",
        "sample",
        "--prompts",
        cfg.prompts,
        "--model",
        cfg.model,
        "--out",
        str(cfg.out),
        "--t-train",
        f"{params.temperature:g}",
        "--top-p",
        f"{params.top_p:g}",
        "--top-k",
        str(params.top_k),
        "--min-p",
        f"{params.min_p:g}",
        "--max-tokens",
        str(cfg.max_tokens),
        "--seed",
        str(cfg.seed),
        "--filter-shortest-percent",
        f"{cfg.filter_shortest_percent:g}",
        "--batch-size",
        str(cfg.batch_size),
        "--chat-template" if cfg.chat_template else "--no-chat-template",
    ]
    if cfg.backend:
        args += ["--backend", cfg.backend]
    if cfg.limit:
        args += ["--limit", str(cfg.limit)]
    return shlex.join(args)


def default_dataset_dir(data_dir: Path, cfg: SampleConfig) -> Path:
    """Named by the sampling settings, so the same ``ssd train`` command resumes its own dataset."""
    key = hashlib.sha256(sample_command(dataclasses.replace(cfg, out="-")).encode()).hexdigest()[:12]
    return data_dir / "datasets" / f"ssd-{key}"
