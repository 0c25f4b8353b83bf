"""The training child process: ``python -m pipeline.training.trainer_child JOB.json``.

``pipeline.training.finetune`` starts this in its own process group and reads the JSON lines it appends to
``job["events"]``::

    {"event": "start", "max_steps": 12, "resumed_from": 4 | null, "backend": "trl", ...}
    {"event": "step", "step": 5, "max_steps": 12, "fraction": 0.4167, "loss": 1.23}  (loss on logging steps)
    {"event": "checkpoint", "step": 6}
    {"event": "done", "adapter": DIR, "loss_curve": [...], "global_step": 12, ...}  | {"event": "error", ...}

Why a child: unsloth patches transformers on import, GPU memory is only surely freed when the process ends,
and a cancel must be able to kill the training at any point. Resume: the Trainer checkpoints (weights,
optimizer, scheduler, RNG) every ``save_steps`` into ``output_dir``; a new child continues from the newest
complete checkpoint and ends at the same total step count.

CPU loss (trl 1.15): ``SFTTrainer.compute_loss`` calls the model with ``fused_lm_head=True``, which goes
through ``_ChunkedLogProbFunction``, a Triton kernel (None without triton, a crash with triton but no GPU;
ML-STACK.md). ``TorchLossSFTTrainer`` overrides ``compute_loss`` with the same computation in plain torch:
run the backbone, project through the LM head only the positions whose next token is a label (assistant
tokens), cross-entropy summed and divided by the number of label tokens in the optimizer step. Everything
else of trl (data handling, padding-free collation, checkpoints, logging) is kept. On a CUDA GPU trl's own
loss (or unsloth's) is used.

CPU speed: padding-free rows with one causal attention call per example (``packed_sdpa_attention``), the LM
head on label positions only, and peft's LoRA layers computed as one autograd function each
(``pipeline.training.fused_lora``: no separate scaling and sum passes over the activations).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

IGNORE = -100


class EventWriter:
    """Appends one JSON object per line and flushes, so the supervisor sees each event at once."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def write(self, event: dict[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as out:
            out.write(json.dumps({"time": round(time.time(), 3), **event}) + "\n")


# -- data -----------------------------------------------------------------------------------------------------


def tokenize_conversation(tokenizer: Any, messages: list[dict[str, str]]) -> tuple[list[int], list[int]]:
    """Token ids of the chat-templated conversation and its labels: the token id on assistant tokens
    (their content and the end-of-turn marker after it), -100 everywhere else.

    Works with any chat template that renders each conversation prefix as a prefix of the whole (ChatML,
    SmolLM2's, Qwen's, Llama's): no ``{% generation %}`` markers needed. Assistant character spans come from
    rendering ``messages[:i]`` with the generation prompt and ``messages[:i+1]``; tokens are labelled by their
    character offsets in one tokenisation of the whole text, so no token boundary is changed by splitting.
    """
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    spans: list[tuple[int, int]] = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = tokenizer.apply_chat_template(messages[:i], tokenize=False, add_generation_prompt=True) if i else ""
        through = tokenizer.apply_chat_template(messages[: i + 1], tokenize=False)
        if not (full.startswith(through) and through.startswith(before)):
            raise ValueError(
                "the chat template does not render a conversation's prefix as a prefix of the "
                "whole; assistant tokens cannot be located"
            )
        spans.append((len(before), len(through)))
    if not spans:
        raise ValueError("the conversation has no assistant message")
    # The rendered text already holds the special tokens (BOS etc.); adding them again would double them.
    encoded = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
    input_ids = list(encoded["input_ids"])
    labels = []
    for token_id, (start, _end) in zip(input_ids, encoded["offset_mapping"], strict=False):
        inside = any(lo <= start < hi for lo, hi in spans)
        labels.append(token_id if inside else IGNORE)
    return input_ids, labels


def build_training_rows(dataset: Any, tokenizer: Any, max_length: int) -> tuple[Any, dict[str, int]]:
    """The ``messages`` dataset as ``input_ids``/``labels`` rows; examples left without an assistant token
    (a prompt alone filling ``max_length``) are dropped and counted."""
    from datasets import Dataset

    if "messages" not in dataset.column_names:
        raise ValueError(f"the dataset has no 'messages' column (columns: {', '.join(dataset.column_names)})")
    rows: dict[str, list] = {"input_ids": [], "labels": []}
    counts = {
        "examples": len(dataset),
        "truncated": 0,
        "dropped_no_assistant_tokens": 0,
        "tokens": 0,
        "label_tokens": 0,
    }
    for messages in dataset["messages"]:
        input_ids, labels = tokenize_conversation(tokenizer, messages)
        if len(input_ids) > max_length:  # keep the start: the prompt and the beginning of the answer
            counts["truncated"] += 1
            input_ids, labels = input_ids[:max_length], labels[:max_length]
        n_labels = sum(1 for label in labels[1:] if label != IGNORE)  # position 0 is never a target
        if n_labels == 0:
            counts["dropped_no_assistant_tokens"] += 1
            continue
        rows["input_ids"].append(input_ids)
        rows["labels"].append(labels)
        counts["tokens"] += len(input_ids)
        counts["label_tokens"] += n_labels
    if not rows["input_ids"]:
        raise ValueError("no example has an assistant token left within max_length")
    return Dataset.from_dict(rows), counts


# -- model ----------------------------------------------------------------------------------------------------


def choose_backend(requested: str) -> str:
    """``trl`` or ``unsloth``. unsloth is imported only with CUDA present (it patches transformers and trl on
    import, so this runs before either is imported)."""
    import importlib.util

    import torch

    if requested == "trl":
        return "trl"
    cuda = torch.cuda.is_available()
    if requested == "unsloth" and not cuda:
        raise RuntimeError("backend 'unsloth' needs a CUDA GPU; use backend 'trl' (or 'auto') on CPU")
    if cuda and importlib.util.find_spec("unsloth") is not None:
        try:
            import unsloth  # noqa: F401

            return "unsloth"
        except (ImportError, NotImplementedError, RuntimeError):
            if requested == "unsloth":
                raise
    elif requested == "unsloth":
        raise RuntimeError("backend 'unsloth' was asked for but unsloth is not installed (pip install unsloth)")
    return "trl"


def gguf_special_tokens(gguf_file: Path) -> dict[str, int]:
    """eos/pad/bos ids from the GGUF metadata: transformers' GGUF tokenizer conversion gets eos wrong for
    SmolLM2 (says <|im_start|>) and sets no pad (ML-STACK.md)."""
    from gguf import GGUFReader

    reader = GGUFReader(str(gguf_file))
    ids = {}
    for name in ("eos", "padding", "bos"):
        field = reader.fields.get(f"tokenizer.ggml.{name}_token_id")
        if field is not None:
            ids[name] = int(field.parts[field.data[0]][0])
    return ids


def load_gguf_as_hf(gguf_file: Path) -> tuple[Any, Any]:
    """(fp32 model, tokenizer) from a GGUF through transformers, made trainable and saveable, eos/pad fixed."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf_file.parent), gguf_file=gguf_file.name, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(str(gguf_file.parent), gguf_file=gguf_file.name, local_files_only=True)
    special = gguf_special_tokens(gguf_file)
    vocab = tokenizer.convert_ids_to_tokens
    if "eos" in special:
        tokenizer.eos_token = vocab(special["eos"])
        model.config.eos_token_id = model.generation_config.eos_token_id = special["eos"]
    tokenizer.pad_token = vocab(special.get("padding", special.get("eos", tokenizer.eos_token_id)))
    model.config.pad_token_id = model.generation_config.pad_token_id = tokenizer.pad_token_id
    # The weights are plain fp32 after loading, but the GGUF quantizer stays attached and makes the model
    # both unsaveable and "not trainable" (ML-STACK.md): detach it.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    return model, tokenizer


def hf_copy_of_gguf(gguf_file: Path, cache_dir: Path) -> Path:
    """A Hugging Face directory (fp32 safetensors + fixed tokenizer) made once from a GGUF: loading a GGUF
    through transformers costs ~20-40 s per process, the copy 3 s. Written to a temp dir, then renamed."""
    import shutil
    import tempfile

    target = cache_dir / "model"
    if (target / "config.json").is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    model, tokenizer = load_gguf_as_hf(gguf_file)
    staging = Path(tempfile.mkdtemp(prefix=".convert-", dir=cache_dir))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def load_base(model_dir: Path, backend: str, config: Any) -> tuple[Any, Any, bool]:
    """(model, tokenizer, peft_applied). For trl the LoRA config is handed to SFTTrainer instead."""
    import torch

    cuda = torch.cuda.is_available()
    bf16 = config.bf16 if config.bf16 is not None else (cuda and torch.cuda.is_bf16_supported())
    if backend == "unsloth":
        from unsloth import FastLanguageModel

        model, tokenizer = FastLanguageModel.from_pretrained(
            model_name=str(model_dir),
            max_seq_length=config.max_length,
            dtype=torch.bfloat16 if bf16 else torch.float16,
            load_in_4bit=False,
        )
        model = FastLanguageModel.get_peft_model(
            model,
            r=config.lora_r,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            target_modules=_targets(config.target_modules),
            bias="none",
            random_state=config.seed,
            use_gradient_checkpointing="unsloth" if config.gradient_checkpointing else False,
        )
        return model, tokenizer, True

    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(
        str(model_dir), local_files_only=True, dtype=torch.bfloat16 if bf16 else torch.float32
    )
    if getattr(model.config.get_text_config(), "final_logit_softcapping", None):
        raise ValueError("models with logit soft-capping (Gemma 2) are not supported by the CPU loss")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer, False


def _targets(modules: list[str]) -> str | list[str]:
    return "all-linear" if modules == ["all-linear"] else list(modules)


def lora_config(config: Any) -> Any:
    from peft import LoraConfig

    return LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=_targets(config.target_modules),
        bias="none",
        task_type="CAUSAL_LM",
    )


# -- trainer --------------------------------------------------------------------------------------------------


def assistant_token_loss(model: Any, inputs: dict[str, Any], num_items_in_batch: Any = None) -> Any:
    """Mean cross-entropy over label tokens, in plain torch (see the module docstring). Only label positions
    go through the LM head: for a small model with a 49k vocabulary that head is a large share of the work."""
    import torch.nn.functional as F

    inputs = dict(inputs)
    labels = inputs.pop("labels")
    causal_lm = model.get_base_model() if hasattr(model, "get_base_model") else model
    backbone = getattr(causal_lm, causal_lm.base_model_prefix)
    hidden = backbone(**inputs, use_cache=False).last_hidden_state[:, :-1]
    targets = labels[:, 1:]
    mask = targets != IGNORE
    logits = causal_lm.get_output_embeddings()(hidden[mask]).float()
    loss_sum = F.cross_entropy(logits, targets[mask], reduction="sum")
    denominator = mask.sum() if num_items_in_batch is None else num_items_in_batch
    return loss_sum / max(int(denominator), 1)


PACKED_ATTENTION = "ssd_packed_sdpa"


def packed_sdpa_attention(
    module: Any,
    query: Any,
    key: Any,
    value: Any,
    attention_mask: Any,
    dropout: float = 0.0,
    scaling: float | None = None,
    position_ids: Any = None,
    **kwargs: Any,
) -> tuple[Any, None]:
    """Causal attention inside each example of a padding-free row, found from ``position_ids`` restarting
    at 0 -- what flash-attention's varlen kernel does on a GPU. transformers' sdpa path instead builds a
    (row x row) block-diagonal mask and attends over the whole row: quadratic in the row, not the example.
    Each example here is one ``scaled_dot_product_attention(is_causal=True)`` call, no mask tensor at all.
    """
    import torch
    import torch.nn.functional as F

    if attention_mask is not None or query.shape[0] != 1:
        raise ValueError("packed attention takes one padding-free row without an attention mask")
    if position_ids is None:
        bounds = [0, query.shape[2]]
    else:
        starts = (position_ids[0] == 0).nonzero().flatten().tolist()
        bounds = sorted(set([0, *starts, query.shape[2]]))
    lengths = [hi - lo for lo, hi in zip(bounds, bounds[1:], strict=False)]
    gqa = key.shape[1] != query.shape[1]
    # split, not slicing: the backward of a split is one concatenation of the pieces' gradients, while each
    # slice's backward would allocate a zero tensor of the whole row and add it up.
    outputs = [
        F.scaled_dot_product_attention(
            q, k, v, is_causal=True, dropout_p=dropout, scale=scaling, enable_gqa=gqa
        ).transpose(1, 2)
        for q, k, v in zip(
            query.split(lengths, dim=2), key.split(lengths, dim=2), value.split(lengths, dim=2), strict=True
        )
    ]
    return torch.cat(outputs, dim=1), None  # (batch, tokens, heads, head_dim), contiguous


def use_packed_attention(model: Any) -> None:
    """Switch ``model`` (a transformers model) to ``packed_sdpa_attention`` for padding-free training.
    Without an entry in the mask interface, transformers builds no mask for it (nothing to build)."""
    from transformers import AttentionInterface

    AttentionInterface.register(PACKED_ATTENTION, packed_sdpa_attention)
    model.set_attn_implementation(PACKED_ATTENTION)


def torch_loss_trainer_class() -> type:
    from trl import SFTTrainer

    class TorchLossSFTTrainer(SFTTrainer):
        """trl's SFTTrainer with the Triton-only fused loss replaced by ``assistant_token_loss``."""

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if return_outputs:
                raise NotImplementedError("evaluation with logits is not used here")
            return assistant_token_loss(model, inputs, num_items_in_batch)

    return TorchLossSFTTrainer


def latest_checkpoint(output_dir: Path) -> Path | None:
    """The newest checkpoint whose trainer_state.json (written last by the Trainer) is complete JSON."""
    candidates = []
    for path in Path(output_dir).glob("checkpoint-*"):
        try:
            step = int(path.name.removeprefix("checkpoint-"))
            json.loads((path / "trainer_state.json").read_text(encoding="utf-8"))
        except (ValueError, OSError):
            continue
        candidates.append((step, path))
    return max(candidates)[1] if candidates else None


def progress_callback(events: EventWriter, parent_pid: int | None) -> Any:
    from transformers import TrainerCallback

    class Progress(TrainerCallback):
        # One "step" event per optimizer step, with the loss on logging steps. DefaultFlowCallback runs first
        # and sets control.should_log; on_log follows on_step_end in the same step.
        def _step(self, state, **extra):
            events.write(
                {
                    "event": "step",
                    "step": state.global_step,
                    "max_steps": state.max_steps,
                    "fraction": round(state.global_step / max(state.max_steps, 1), 4),
                    **extra,
                }
            )

        def on_step_end(self, args, state, control, **kwargs):
            if not control.should_log:
                self._step(state)
            if parent_pid is not None and os.getppid() != parent_pid:
                control.should_training_stop = True  # the supervisor died: nobody will read the result

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                self._step(state, loss=float(logs["loss"]))

        def on_save(self, args, state, control, **kwargs):
            events.write({"event": "checkpoint", "step": state.global_step})

    return Progress()


def training_args(config: Any, output_dir: Path, backend: str) -> Any:
    import torch
    from trl import SFTConfig

    cuda = torch.cuda.is_available()
    bf16 = config.bf16 if config.bf16 is not None else (cuda and torch.cuda.is_bf16_supported())
    return SFTConfig(
        output_dir=str(output_dir),
        max_steps=config.max_steps,
        num_train_epochs=config.epochs,
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum,
        learning_rate=config.learning_rate,
        lr_scheduler_type=config.lr_scheduler,
        warmup_steps=config.warmup_ratio,
        weight_decay=config.weight_decay,
        seed=config.seed,
        data_seed=config.seed,
        bf16=bool(bf16),
        fp16=bool(cuda and not bf16 and backend == "unsloth"),
        use_cpu=not cuda,
        gradient_checkpointing=config.gradient_checkpointing and backend != "unsloth",
        max_length=None,  # build_training_rows already cut every example to config.max_length
        padding_free=config.packing,
        packing=False,  # padding-free batches of whole examples (the number of steps does not depend on it)
        logging_steps=config.logging_steps,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=2,
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
        remove_unused_columns=False,
    )


def run_job(job: dict[str, Any], events: EventWriter) -> dict[str, Any]:
    from pipeline.training.config import FinetuneConfig

    config = FinetuneConfig.from_dict(job["config"])
    output_dir = Path(job["output_dir"])
    import torch

    torch.set_num_threads(config.threads or os.cpu_count() or 1)
    backend = choose_backend(config.backend)  # before transformers/trl are imported (unsloth patches them)
    from datasets import load_from_disk
    from transformers import set_seed

    set_seed(config.seed)
    model_path = Path(job["model_path"])
    if model_path.suffix == ".gguf":  # trained (by either backend) from its dequantized HF copy
        model_path = hf_copy_of_gguf(model_path, Path(job["gguf_cache"]))
    model, tokenizer, peft_applied = load_base(model_path, backend, config)
    if config.packing and backend == "trl":
        use_packed_attention(model)
    rows, counts = build_training_rows(load_from_disk(job["data_dir"]), tokenizer, config.max_length)

    cuda = torch.cuda.is_available()
    if cuda:
        from trl import SFTTrainer as trainer_cls  # trl's own loss (unsloth's when it patched trl)
    else:
        trainer_cls = torch_loss_trainer_class()
    trainer = trainer_cls(
        model=model,
        args=training_args(config, output_dir, backend),
        train_dataset=rows,
        processing_class=tokenizer,
        peft_config=None if peft_applied else lora_config(config),
        callbacks=[progress_callback(events, job.get("parent_pid"))],
    )
    if not cuda:
        from pipeline.training.fused_lora import fuse_lora_layers

        fuse_lora_layers(trainer.model)  # after SFTTrainer applied peft; the adapter files stay peft's
    resume = latest_checkpoint(output_dir)
    steps_per_epoch = math.ceil(len(rows) / (config.batch_size * config.grad_accum))
    max_steps = config.max_steps if config.max_steps > 0 else math.ceil(steps_per_epoch * config.epochs)
    events.write(
        {
            "event": "start",
            "backend": backend,
            "device": "cuda" if cuda else "cpu",
            "threads": torch.get_num_threads(),
            "max_steps": max_steps,
            "resumed_from": int(resume.name.split("-")[-1]) if resume else None,
            "data": counts,
        }
    )
    started, started_cpu = time.monotonic(), time.process_time()
    result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    runtime, cpu = time.monotonic() - started, time.process_time() - started_cpu
    adapter_dir = output_dir / "adapter"
    trainer.save_model(str(adapter_dir))
    loss_curve = [
        {"step": int(entry["step"]), "loss": float(entry["loss"])}
        for entry in trainer.state.log_history
        if "loss" in entry
    ]
    return {
        "adapter": str(adapter_dir),
        "backend": backend,
        "global_step": int(trainer.state.global_step),
        "max_steps": int(trainer.state.max_steps),
        "loss_curve": loss_curve,
        "train_loss": float(result.training_loss),
        "runtime_s": round(runtime, 2),
        "cpu_s": round(cpu, 2),
        "data": counts,
        "resumed_from": int(resume.name.split("-")[-1]) if resume else None,
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m pipeline.training.trainer_child JOB.json", file=sys.stderr)
        return 2
    job = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    events = EventWriter(Path(job["events"]))
    try:
        result = run_job(job, events)
    except Exception as exc:  # reported to the supervisor; the traceback goes to the child's log
        traceback.print_exc()
        events.write({"event": "error", "type": type(exc).__name__, "message": str(exc)})
        return 1
    events.write({"event": "done", **result})
    return 0


if __name__ == "__main__":
    sys.exit(main())
