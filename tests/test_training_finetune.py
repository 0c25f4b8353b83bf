"""LoRA SFT: assistant-only labels, the plain-torch loss that replaces trl 1.15's Triton kernel, and the
supervised child process (progress, kill, resume, cancel) on a tiny random Llama with SmolLM2's tokenizer."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from pipeline.training.config import PRESETS, FinetuneConfig
from tests.tiny_model import write_dataset

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_model_dir))


# -- config ---------------------------------------------------------------------------------------------------


def test_config_defaults_presets_and_validation():
    cfg = FinetuneConfig()
    assert cfg.lora_dropout == 0.0 and cfg.packing and cfg.max_steps == -1
    assert FinetuneConfig.from_dict(cfg.to_dict()) == cfg
    big = FinetuneConfig.preset("4b-gpu", max_steps=10)
    assert big.lora_r == PRESETS["4b-gpu"]["lora_r"] and big.max_steps == 10 and big.gradient_checkpointing
    with pytest.raises(ValueError, match="unknown finetune settings"):
        FinetuneConfig.from_dict({"lora_rank": 8})
    for bad in (
        {"max_steps": 0},
        {"lora_dropout": 1.0},
        {"batch_size": 0},
        {"backend": "vllm"},
        {"target_modules": []},
        {"warmup_ratio": 1.0},
    ):
        with pytest.raises(ValueError):
            FinetuneConfig(**bad)


def test_config_flags_come_from_the_fields():
    import argparse

    from pipeline.options import add_dataclass_arguments, dataclass_from_args

    parser = argparse.ArgumentParser()
    add_dataclass_arguments(parser, FinetuneConfig)
    args = parser.parse_args(["--max-steps", "7", "--no-packing", "--target-modules", "q_proj,v_proj"])
    cfg = dataclass_from_args(FinetuneConfig, args)
    assert (cfg.max_steps, cfg.packing, cfg.target_modules) == (7, False, ["q_proj", "v_proj"])


# -- labels ---------------------------------------------------------------------------------------------------


def test_only_assistant_tokens_are_labels(tokenizer):
    from pipeline.training.trainer_child import IGNORE, tokenize_conversation

    messages = [
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "first answer"},
        {"role": "user", "content": "second question"},
        {"role": "assistant", "content": "def f():\n    return 2"},
    ]
    input_ids, labels = tokenize_conversation(tokenizer, messages)
    assert len(input_ids) == len(labels)
    labelled = [t for t, lab in zip(input_ids, labels, strict=True) if lab != IGNORE]
    assert all(lab in (IGNORE, t) for t, lab in zip(input_ids, labels, strict=True))
    assert tokenizer.decode(labelled) == "first answer<|im_end|>\ndef f():\n    return 2<|im_end|>\n"
    # every user/system token is masked: the unlabelled text is exactly the template around the answers
    unlabelled = tokenizer.decode([t for t, lab in zip(input_ids, labels, strict=True) if lab == IGNORE])
    assert "question" in unlabelled and "answer" not in unlabelled and "return" not in unlabelled
    first_user = tokenizer("first question", add_special_tokens=False)["input_ids"]
    start = next(i for i in range(len(input_ids)) if input_ids[i : i + len(first_user)] == first_user)
    assert labels[start : start + len(first_user)] == [IGNORE] * len(first_user)


def test_template_without_prefix_property_is_refused(tokenizer):
    from pipeline.training.trainer_child import tokenize_conversation

    tokenizer = type(tokenizer).from_pretrained(tokenizer.name_or_path)
    # renders only the last message: a prefix of the conversation is not a prefix of the whole text
    tokenizer.chat_template = "{{ messages[-1]['content'] }}{% if add_generation_prompt %}>>{% endif %}"
    with pytest.raises(ValueError, match="prefix"):
        tokenize_conversation(tokenizer, [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}])


def test_rows_are_cut_to_max_length_and_prompt_only_rows_dropped(tmp_path, tokenizer):
    from datasets import load_from_disk

    from pipeline.training.trainer_child import IGNORE, build_training_rows, tokenize_conversation

    data = load_from_disk(str(write_dataset(tmp_path / "data", n=4)))
    ids, labels = tokenize_conversation(tokenizer, data[0]["messages"])
    prompt_len = labels.index(next(lab for lab in labels if lab != IGNORE))
    rows, counts = build_training_rows(data, tokenizer, max_length=prompt_len + 1)
    assert counts["truncated"] == 4 and counts["dropped_no_assistant_tokens"] == 0
    assert all(len(r) == prompt_len + 1 and r[-1] != IGNORE for r in rows["labels"])
    with pytest.raises(ValueError, match="no example has an assistant token"):
        build_training_rows(data, tokenizer, max_length=prompt_len)
    rows, counts = build_training_rows(data, tokenizer, max_length=4096)
    assert counts["truncated"] == 0 and len(rows) == 4 and rows["input_ids"][0] == ids


# -- the plain-torch loss ---------------------------------------------------------------------------------


def test_padding_free_loss_equals_the_mean_over_separate_examples(tiny_model_dir, tokenizer):
    """The CPU path's loss on one padding-free row (trl's own collator) is the token-weighted mean of each
    example's own loss: examples in a row do not attend to each other, and only assistant tokens count."""
    import torch
    from transformers import AutoModelForCausalLM
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    from pipeline.training.trainer_child import (
        IGNORE,
        assistant_token_loss,
        tokenize_conversation,
        use_packed_attention,
    )

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir)).eval()
    conversations = [
        [{"role": "user", "content": "add one"}, {"role": "assistant", "content": "x + 1"}],
        [
            {"role": "user", "content": "Write a loop."},
            {"role": "assistant", "content": "for i in range(3):\n    print(i)"},
        ],
        [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello there, how can I help?"}],
    ]
    examples = [
        dict(zip(("input_ids", "labels"), tokenize_conversation(tokenizer, c), strict=True)) for c in conversations
    ]
    batch = DataCollatorForLanguageModeling(pad_token_id=tokenizer.pad_token_id, padding_free=True)(examples)
    assert batch["input_ids"].shape[0] == 1 and "attention_mask" not in batch
    with torch.no_grad():
        packed = assistant_token_loss(model, batch)
        total, count = 0.0, 0
        for ex in examples:
            ids, labels = torch.tensor([ex["input_ids"]]), torch.tensor([ex["labels"]])
            n = int((labels[:, 1:] != IGNORE).sum())
            total += float(model(input_ids=ids, labels=labels).loss) * n
            count += n
        assert float(packed) == pytest.approx(total / count, rel=1e-5)  # sdpa with a block-diagonal mask
        use_packed_attention(model)  # what training uses: one causal attention call per example
        assert float(assistant_token_loss(model, batch)) == pytest.approx(total / count, rel=1e-5)
        assert float(model(input_ids=ids, labels=labels).loss) > 0  # a plain single row still works
        # the same row with positions running on (examples attending to each other) gives another loss
        model.set_attn_implementation("sdpa")
        leaky = dict(batch, position_ids=torch.arange(batch["input_ids"].shape[1])[None])
        assert float(assistant_token_loss(model, leaky)) != pytest.approx(total / count, rel=1e-4)


def test_fused_lora_layers_give_peft_losses_and_gradients(tiny_model_dir):  # noqa: F811
    """The CPU path's one-function LoRA layers compute what peft's separate ops compute: the same loss and the
    same gradient for every LoRA weight; layers it cannot handle (LoRA dropout) are left to peft."""
    import torch
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM

    from pipeline.training.fused_lora import fuse_lora_layers
    from pipeline.training.trainer_child import lora_config

    def loss_and_grads(fused: bool, dropout: float = 0.0) -> tuple[float, dict, int, float]:
        torch.manual_seed(0)
        base = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
        model = get_peft_model(base, lora_config(FinetuneConfig(lora_dropout=dropout))).train()
        with torch.no_grad():  # lora_B starts at zero: give it values so the LoRA term and its gradients count
            for name, param in model.named_parameters():
                if "lora_B" in name:
                    param.normal_(std=0.05)
        switched = fuse_lora_layers(model) if fused else 0
        ids = torch.randint(3, 1000, (2, 16))
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        with torch.no_grad():  # inference goes through peft's own forward
            eval_loss = float(model(input_ids=ids, labels=ids).loss)
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
        return loss.item(), grads, switched, eval_loss

    peft_loss, peft_grads, _, peft_eval = loss_and_grads(fused=False)
    fused_loss, fused_grads, switched, fused_eval = loss_and_grads(fused=True)
    assert switched == 2 * 7  # 2 layers x the 7 projections of the default target_modules
    assert fused_loss == pytest.approx(peft_loss, rel=1e-6) and fused_eval == pytest.approx(peft_eval, rel=1e-6)
    assert fused_grads.keys() == peft_grads.keys() and len(peft_grads) == 2 * 2 * 7
    for name, grad in peft_grads.items():
        assert grad.abs().max() > 0, name
        torch.testing.assert_close(fused_grads[name], grad, rtol=1e-4, atol=1e-6, msg=name)
    assert loss_and_grads(fused=True, dropout=0.1)[2] == 0


# -- the supervised child process -----------------------------------------------------------------------------


def _training_children() -> list:
    import psutil

    return [
        p
        for p in psutil.Process().children(recursive=True)
        if "pipeline.training.trainer_child" in " ".join(p.cmdline())
    ]


def test_finetune_survives_sigkill_and_cancel_and_resumes_to_the_same_step_count(tmp_path, tiny_model_dir):
    from pipeline.training.adapters import AdapterRegistry
    from pipeline.training.finetune import FinetuneCancelled, FinetuneError, TrainingRun, finetune

    data = write_dataset(tmp_path / "data", n=12)
    registry = AdapterRegistry(tmp_path / "adapters")
    config = FinetuneConfig(max_steps=8, save_steps=2, batch_size=2, learning_rate=1e-3, seed=3)
    run_dir = TrainingRun(data, str(tiny_model_dir), config, registry).dir
    seen: list[tuple[float, str]] = []

    # 1. the child dies by SIGKILL after its checkpoint at step 2 (a crash, an OOM kill)
    def kill_after_step_3(fraction: float, message: str) -> None:
        seen.append((fraction, message))
        if message.startswith("step 3/"):
            for child in _training_children():
                os.kill(child.pid, signal.SIGKILL)

    with pytest.raises(FinetuneError, match="killed by signal 9"):
        finetune(data, str(tiny_model_dir), config, registry, progress=kill_after_step_3)
    assert any(m.startswith("step 1/8, loss ") for _, m in seen)
    assert (run_dir / "output" / "checkpoint-2").is_dir() and registry.list() == []

    # 2. resumed, then cancelled: the whole process group is killed
    cancel = threading.Event()
    messages: list[str] = []

    def cancel_after_a_step(fraction: float, message: str) -> None:
        messages.append(message)
        if message.startswith("step "):
            cancel.set()

    with pytest.raises(FinetuneCancelled):
        finetune(data, str(tiny_model_dir), config, registry, progress=cancel_after_a_step, cancel=cancel)
    assert any("resuming at step" in m for m in messages)
    assert _training_children() == []

    # 3. resumed again: it ends at the same total step count with the whole loss curve
    record = finetune(data, str(tiny_model_dir), config, registry)
    train = record.metrics["train"]
    assert train["steps"] == 8 and train["resumed_from"] >= 2 and train["backend"] == "trl"
    assert [p["step"] for p in record.loss_curve] == list(range(1, 9))
    assert record.loss_curve[-1]["loss"] < record.loss_curve[0]["loss"]  # lr 1e-3 on 12 examples: it learns
    assert (record.path / "adapter_model.safetensors").is_file() and record.base_model == str(tiny_model_dir)
    assert record.dataset["base_model"] == "tiny" and record.config["max_steps"] == 8
    assert registry.list() == [record] and not run_dir.exists()


def test_finetune_reports_a_bad_dataset_without_starting(tmp_path, tiny_model_dir):
    from pipeline.training.adapters import AdapterRegistry
    from pipeline.training.finetune import FinetuneError, finetune

    (tmp_path / "empty").mkdir()
    with pytest.raises(FinetuneError, match="not a dataset directory"):
        finetune(tmp_path / "empty", str(tiny_model_dir), FinetuneConfig(), AdapterRegistry(tmp_path / "a"))
    with pytest.raises(FinetuneError, match="does not exist"):
        finetune(tmp_path / "nope", str(tiny_model_dir), FinetuneConfig(), AdapterRegistry(tmp_path / "a"))
