"""2×2 max-pooling with ``nn.MaxPool2d(2)``'s values and gradients, fast on a CPU.

PyTorch's CPU kernel for max-pooling a contiguous (N, C, H, W) tensor is slower than the same
maximum taken over the four strided quarters of each 2×2 window (benchmarks/max_pool.py). The
gradient goes, as PyTorch's does, to the first maximum of each window in row-major order.
Other devices, and traced exports, keep PyTorch's kernel.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn


def _quarters(x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Each 2×2 window's top-left, top-right, bottom-left and bottom-right value (an odd last
    row or column dropped, as max-pooling without padding drops it)."""
    x = x[..., : x.shape[-2] // 2 * 2, : x.shape[-1] // 2 * 2]
    return x[..., 0::2, 0::2], x[..., 0::2, 1::2], x[..., 1::2, 0::2], x[..., 1::2, 1::2]


def max_of_quarters(x: Tensor) -> Tensor:
    """The 2×2 max-pool of ``x``'s last two dimensions, without a gradient of its own."""
    top_left, top_right, bottom_left, bottom_right = _quarters(x)
    return torch.maximum(torch.maximum(top_left, top_right), torch.maximum(bottom_left, bottom_right))


class _MaxPool2x2(torch.autograd.Function):
    generate_vmap_rule = True  # the blocks may run under torch.func.vmap (speed/stacked.py)

    @staticmethod
    def forward(x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        top_left, top_right, bottom_left, bottom_right = _quarters(x)
        top = torch.maximum(top_left, top_right)
        bottom = torch.maximum(bottom_left, bottom_right)
        # Strict comparisons: on a tie the earlier position of the window wins, as in PyTorch.
        return torch.maximum(top, bottom), top_right > top_left, bottom_right > bottom_left, bottom > top

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Tensor], output: tuple[Tensor, ...]) -> None:
        (x,) = inputs
        _, right_of_top, right_of_bottom, from_bottom = output
        ctx.mark_non_differentiable(right_of_top, right_of_bottom, from_bottom)
        ctx.save_for_backward(right_of_top, right_of_bottom, from_bottom)
        ctx.input_shape = x.shape

    @staticmethod
    def backward(ctx: Any, grad: Tensor, *_: Any) -> Tensor:
        right_of_top, right_of_bottom, from_bottom = ctx.saved_tensors
        to_bottom = grad * from_bottom
        to_top = grad - to_bottom
        to_top_right = to_top * right_of_top
        to_bottom_right = to_bottom * right_of_bottom
        grad_input = grad.new_zeros(ctx.input_shape)
        top_left, top_right, bottom_left, bottom_right = _quarters(grad_input)
        with torch.no_grad():  # written in place (the fastest way to interleave); first order only
            top_left.copy_(to_top - to_top_right)
            top_right.copy_(to_top_right)
            bottom_left.copy_(to_bottom - to_bottom_right)
            bottom_right.copy_(to_bottom_right)
        return grad_input


class MaxPool2x2(nn.MaxPool2d):
    """``nn.MaxPool2d(2)``, computed from the four quarters of each window on a CPU."""

    def __init__(self) -> None:
        super().__init__(2)

    def forward(self, x: Tensor) -> Tensor:
        if x.device.type != "cpu" or x.dim() not in (3, 4) or torch.jit.is_tracing():
            return super().forward(x)  # exports keep the one MaxPool operation
        if torch.is_grad_enabled() and x.requires_grad:
            return _MaxPool2x2.apply(x)[0]
        return max_of_quarters(x)
