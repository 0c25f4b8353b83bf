"""A LoRA linear layer as one autograd function, for CPU training.

peft computes ``base(x) + lora_B(lora_A(dropout(x))) * scaling`` as separate torch ops. Each of them reads and
writes a whole ``tokens x out_features`` activation, and autograd mirrors them in the backward pass (the scaling
multiply again, a separate sum of the two input gradients). On a CPU these passes are memory-bound and cost about
as much as the small rank-r matmuls themselves. ``LoraLinearFunction`` computes the same values with the scaling
folded into the accumulating matmuls (``addmm_``), so the LoRA term is added in place and the input gradient is
accumulated in place; it saves the same tensors autograd would (``x`` and ``x @ A^T``).

``fuse_lora_layers(model)`` switches every peft ``lora.Linear`` it can handle (dropout 0, one active adapter,
plain LoRA, not merged, frozen base weight) to it; the adapter's parameters and saved files stay peft's.
"""

from __future__ import annotations

from typing import Any

import torch


class LoraLinearFunction(torch.autograd.Function):
    """``x @ W^T (+ b) + scaling * (x @ A^T) @ B^T`` with ``W``/``b`` frozen and ``A``, ``B`` trainable."""

    @staticmethod
    def forward(
        ctx: Any,
        x: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        lora_a: torch.Tensor,
        lora_b: torch.Tensor,
        scaling: float,
    ) -> torch.Tensor:
        rows = x.reshape(-1, x.shape[-1])
        down = rows @ lora_a.t()  # tokens x r
        out = torch.addmm(bias, rows, weight.t()) if bias is not None else rows @ weight.t()
        out.addmm_(down, lora_b.t(), alpha=scaling)
        ctx.save_for_backward(rows, down, weight, lora_a, lora_b)
        ctx.scaling = scaling
        ctx.x_shape = x.shape
        return out.view(*x.shape[:-1], out.shape[-1])

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        rows, down, weight, lora_a, lora_b = ctx.saved_tensors
        scaling = ctx.scaling
        grad = grad_out.reshape(-1, grad_out.shape[-1])
        grad_down = grad @ lora_b  # tokens x r, before scaling
        grad_x = None
        if ctx.needs_input_grad[0]:
            grad_x = grad @ weight
            grad_x.addmm_(grad_down, lora_a, alpha=scaling)
            grad_x = grad_x.view(ctx.x_shape)
        grad_a = torch.mm(grad_down.t(), rows).mul_(scaling) if ctx.needs_input_grad[3] else None
        grad_b = torch.mm(grad.t(), down).mul_(scaling) if ctx.needs_input_grad[4] else None
        return grad_x, None, None, grad_a, grad_b, None


def _fused_forward(layer: Any) -> Any:
    """A ``forward`` for one peft ``lora.Linear``: the fused function while training with its one adapter,
    peft's own forward otherwise (adapters disabled or merged, inference, other dtypes)."""
    peft_forward = layer.forward
    adapter = layer.active_adapters[0]

    def forward(x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        base = layer.get_base_layer()
        lora_a, lora_b = layer.lora_A[adapter].weight, layer.lora_B[adapter].weight
        if (
            args
            or kwargs
            or layer.disable_adapters
            or layer.merged
            or not torch.is_grad_enabled()
            or list(layer.active_adapters) != [adapter]
            or x.dtype != lora_a.dtype
            or base.weight.dtype != x.dtype
        ):
            return peft_forward(x, *args, **kwargs)
        return LoraLinearFunction.apply(x, base.weight, base.bias, lora_a, lora_b, layer.scaling[adapter])

    return forward


def fuse_lora_layers(model: Any) -> int:
    """Route the forward of every eligible peft ``lora.Linear`` in ``model`` through ``LoraLinearFunction``;
    returns how many were switched. Not eligible (left to peft): LoRA dropout, DoRA and other variants, LoRA
    bias, several adapters, fan_in_fan_out weights, a trainable base weight or bias."""
    from peft.tuners.lora import Linear as LoraLinear

    fused = 0
    for module in model.modules():
        if type(module) is not LoraLinear or len(module.active_adapters) != 1:
            continue
        adapter = module.active_adapters[0]
        base = module.get_base_layer()
        if (
            adapter not in module.lora_A
            or adapter in module.lora_variant
            or not isinstance(module.lora_dropout[adapter], torch.nn.Identity)
            or module.lora_bias.get(adapter, False)
            or module.fan_in_fan_out
            or base.weight.requires_grad
            or (base.bias is not None and base.bias.requires_grad)
        ):
            continue
        if not getattr(module, "_ssd_fused", False):
            module.forward = _fused_forward(module)
            module._ssd_fused = True
        fused += 1
    return fused
