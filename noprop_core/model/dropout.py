"""Dropout whose mask costs what drawing uniform numbers costs.

On a CPU, ``torch.nn.Dropout`` draws its mask with ``bernoulli_``, which is several times
slower than drawing the same count of uniform numbers (benchmarks/dropout.py); in a DT block
step the masks were a large share of the time. ``Dropout`` keeps an element when a uniform
draw U ~ U[0, 1) is at least p, which happens with probability 1 − p (to float32's 2⁻²⁴), and
scales kept elements by 1 / (1 − p): the same distribution as ``nn.Dropout``, a different
random stream. On other devices it is ``nn.Dropout`` (CUDA's fused kernel is already cheap).

It subclasses ``nn.Dropout``, so code that recognises dropout layers (the grouped network of
stacked blocks) still does, and each call under ``vmap(randomness="different")`` draws its own
mask per block.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def keep_scale(uniform: Tensor, p: float) -> Tensor:
    """Dropout's multiplier from uniform draws U ~ U[0, 1), in place: 1 / (1 − p) where U ≥ p, else 0."""
    if p >= 1.0:
        return uniform.zero_()
    return uniform.ge_(p).mul_(1.0 / (1.0 - p))


class Dropout(nn.Dropout):
    def forward(self, inputs: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return inputs
        if inputs.device.type != "cpu" or self.inplace:
            return super().forward(inputs)
        return inputs * keep_scale(torch.rand_like(inputs), self.p)
