"""Decoding defaults per model family for SSD: how to sample the training data (T_train + truncation) and
at which temperature to evaluate the tuned model (T_eval). Every value is a default: the configs that use a
preset (``SampleConfig``, ``CompareConfig``) take an explicit value over it.

Sources (``/work/shared/reference/SSD-PAPER.md`` §3):

- Qwen3-4B-Instruct-2507: T_train 1.6, top_p 0.8, top_k 20; T_eval 1.1 (Apple's model card
  ``apple/SimpleSD-4B-instruct``, the MLX port's "Table 3" comment, and the fallback of the released
  ``generate.py``). The released ``data_generation/config.yaml`` says 1.5; the maintainer: "There is no much
  difference on 1.5 vs 1.6" (apple/ml-ssd#8). We default to **1.6** because it is what the published
  checkpoint and its reported numbers were made with; pass ``--t-train 1.5`` for the config file's value.
- Qwen3-4B-Thinking-2507: T_train 1.1, top_p 0.95, top_k 20; T_eval 0.7 (``apple/SimpleSD-4B-thinking``).
- Qwen3-30B-A3B-Instruct-2507: T_train 1.6, top_p 0.8, top_k 20; T_eval 0.9 (``apple/SimpleSD-30B-instruct``).
- Everything else (Llama-3.1-8B, whose Table 3 row we could not read, SmolLM2, any local model): the
  **fallback** below, our inference, not a published setting: the instruct truncation (top_p 0.8, top_k 20),
  which is what keeps T_train 1.6 from producing gibberish (the paper's untruncated T=2.0 stress test lost
  62% of samples to text without code), T_train 1.6, and T_eval 1.0, the middle of the instruct models'
  0.9-1.1, so that the effective temperature T_train x T_eval (1.6) sits in the 1.44-1.76 band of the
  released instruct settings. ``ssd compare`` evaluates a small grid around T_eval anyway.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Preset:
    family: str
    t_train: float
    top_p: float
    top_k: int
    t_eval: float
    source: str  # where the values come from, shown in provenance and reports

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


QWEN3_4B_INSTRUCT = Preset(
    "qwen3-4b-instruct", 1.6, 0.8, 20, 1.1, "apple/SimpleSD-4B-instruct model card (released config.yaml: T_train 1.5)"
)
QWEN3_4B_THINKING = Preset("qwen3-4b-thinking", 1.1, 0.95, 20, 0.7, "apple/SimpleSD-4B-thinking model card")
QWEN3_30B_INSTRUCT = Preset("qwen3-30b-a3b-instruct", 1.6, 0.8, 20, 0.9, "apple/SimpleSD-30B-instruct model card")
FALLBACK = Preset(
    "fallback",
    1.6,
    0.8,
    20,
    1.0,
    "ssd-bot fallback (not published): instruct truncation, T_eff = 1.6 within the released band",
)

# First match wins, tested against the lower-cased model spec (alias, path or server model name).
_RULES: tuple[tuple[str, Preset], ...] = (
    (r"qwen3-30b-a3b(?!.*thinking)", QWEN3_30B_INSTRUCT),
    (r"qwen3-4b.*thinking", QWEN3_4B_THINKING),
    (r"qwen3-4b", QWEN3_4B_INSTRUCT),
)

PRESETS: dict[str, Preset] = {p.family: p for p in (QWEN3_4B_INSTRUCT, QWEN3_4B_THINKING, QWEN3_30B_INSTRUCT, FALLBACK)}


def preset_for(model: str, family: str | None = None) -> Preset:
    """The preset of ``model`` (or of the named ``family``, one of ``PRESETS``); ``FALLBACK`` when unknown."""
    if family is not None:
        try:
            return PRESETS[family]
        except KeyError:
            raise ValueError(f"unknown preset {family!r}; choose one of {', '.join(PRESETS)}") from None
    spec = model.lower()
    for pattern, preset in _RULES:
        if re.search(pattern, spec):
            return preset
    return FALLBACK
