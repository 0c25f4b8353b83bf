"""``FinetuneConfig``: one LoRA SFT config for the CPU (trl + peft) and the GPU (unsloth) paths.

Fields carry their help (trl's ``SFTConfig`` pattern), so ``pipeline.options`` turns them into CLI
flags. The defaults suit a small model (SmolLM2-135M) on a few CPU cores; ``FinetuneConfig.preset("4b-gpu")``
is a starting point for a 4B model (e.g. Qwen3-4B-Instruct) on one 80 GB GPU.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

BACKENDS = ("auto", "trl", "unsloth")


@dataclass
class FinetuneConfig:
    # LoRA
    lora_r: int = field(default=16, metadata={"help": "LoRA rank"})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha (the update is scaled by alpha / r)"})
    lora_dropout: float = field(
        default=0.0,
        metadata={"help": "dropout on the LoRA input; 0 trains ~20% faster on CPU and SSD data is the model's own"},
    )
    target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        metadata={"help": "modules that get LoRA weights ('all-linear' = every linear layer but the output)"},
    )
    # optimisation
    learning_rate: float = field(default=2e-4, metadata={"help": "peak learning rate (AdamW)"})
    lr_scheduler: str = field(
        default="constant", metadata={"help": "learning-rate schedule", "choices": ("constant", "linear", "cosine")}
    )
    warmup_ratio: float = field(default=0.0, metadata={"help": "fraction of the steps spent warming up"})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay"})
    epochs: float = field(default=1.0, metadata={"help": "passes over the dataset (ignored when max_steps > 0)"})
    max_steps: int = field(default=-1, metadata={"help": "optimizer steps to run; -1 = derive from epochs"})
    batch_size: int = field(default=4, metadata={"help": "examples per micro-batch"})
    grad_accum: int = field(default=1, metadata={"help": "micro-batches per optimizer step"})
    max_length: int = field(
        default=1024,
        metadata={"help": "tokens per example; longer examples are cut at the end (their assistant tail is lost)"},
    )
    packing: bool = field(
        default=True,
        metadata={
            "help": "padding-free batches: a micro-batch is one row of concatenated examples with position ids "
            "restarting per example, so no compute is spent on padding and examples never attend "
            "to each other"
        },
    )
    seed: int = field(default=0, metadata={"help": "seed for LoRA init, data order and dropout"})
    threads: int = field(default=0, metadata={"help": "torch CPU threads; 0 = all cores"})
    # bookkeeping
    save_steps: int = field(default=20, metadata={"help": "checkpoint every N optimizer steps (resume point)"})
    logging_steps: int = field(default=1, metadata={"help": "report the loss every N optimizer steps"})
    backend: str = field(
        default="auto",
        metadata={"help": "auto: unsloth on a CUDA GPU when installed, else trl + peft", "choices": BACKENDS},
    )
    bf16: bool | None = field(
        default=None, metadata={"help": "train in bfloat16; none = on a GPU that supports it, never on CPU"}
    )
    gradient_checkpointing: bool = field(
        default=False,
        metadata={"help": "recompute activations in the backward pass: less memory, ~30% slower; for big models"},
    )

    def __post_init__(self) -> None:
        if self.lora_r < 1 or self.lora_alpha < 1:
            raise ValueError("lora_r and lora_alpha must be >= 1")
        if not 0 <= self.lora_dropout < 1:
            raise ValueError("lora_dropout must be in [0, 1)")
        if self.batch_size < 1 or self.grad_accum < 1 or self.max_length < 8:
            raise ValueError("batch_size and grad_accum must be >= 1, max_length >= 8")
        if self.max_steps == 0 or self.max_steps < -1:
            raise ValueError("max_steps must be > 0, or -1 to use epochs")
        if self.max_steps == -1 and self.epochs <= 0:
            raise ValueError("epochs must be > 0 when max_steps is -1")
        if self.save_steps < 1 or self.logging_steps < 1:
            raise ValueError("save_steps and logging_steps must be >= 1")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError("warmup_ratio must be in [0, 1)")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}")
        if not self.target_modules:
            raise ValueError("target_modules is empty")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FinetuneConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown finetune settings: {', '.join(sorted(unknown))}")
        return cls(**data)

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> FinetuneConfig:
        """Named starting points (``PRESETS``); ``overrides`` win."""
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})


# "small-cpu": the field defaults (SmolLM2-135M on 2 cores: r 16 on all projections, lr 2e-4, batch 4).
# "4b-gpu": a 4B instruct model on one 80 GB GPU with unsloth, bf16. The SSD paper fine-tunes fully (lr 5e-6,
# global batch 32, cosine, ~8 epochs); LoRA wants a ~20-40x higher lr, rank 32 keeps capacity for code.
PRESETS: dict[str, dict[str, Any]] = {
    "small-cpu": {},
    "4b-gpu": {
        "lora_r": 32,
        "lora_alpha": 64,
        "learning_rate": 1e-4,
        "lr_scheduler": "cosine",
        "warmup_ratio": 0.05,
        "weight_decay": 0.01,
        "epochs": 2.0,
        "batch_size": 8,
        "grad_accum": 4,
        "max_length": 4096,
        "backend": "auto",
        "gradient_checkpointing": True,
        "save_steps": 50,
        "logging_steps": 5,
    },
}
