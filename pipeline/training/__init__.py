"""Simple Self-Distillation (arXiv 2604.01193): sample at T_train -> dataset -> LoRA SFT -> adapters -> compare.

Nothing here imports bot, webhooks, flask, rq or Settings: callers pass explicit config dataclasses.
"""
