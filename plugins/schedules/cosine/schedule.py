"""The torch part of the plugin in this folder (see its ``__init__``)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from noprop_core import NoiseSchedule

from . import CosineConfig


class CosineSchedule(NoiseSchedule):
    def __init__(self, *, offset: float = 0.008, max_alpha_bar: float = 0.9999) -> None:
        super().__init__()
        self.offset = offset
        self.max_alpha_bar = max_alpha_bar

    def _f(self, tau: Tensor) -> Tensor:
        return torch.cos(0.5 * math.pi * (tau + self.offset) / (1 + self.offset)).pow(2)

    def alpha_bar(self, t: Tensor) -> Tensor:
        t64 = t.to(torch.float64)
        value = self.max_alpha_bar * self._f(1 - t64) / self._f(torch.zeros_like(t64))
        return value.to(t.dtype)


def build(config: CosineConfig) -> CosineSchedule:
    return CosineSchedule(offset=config.offset, max_alpha_bar=config.max_alpha_bar)
