"""The torch part of the plugin in this folder (see its ``__init__``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from noprop_core import NoiseSchedule

from . import LearnableGammaConfig


def _inverse_softplus(value: float) -> float:
    return float(torch.log(torch.expm1(torch.tensor(value, dtype=torch.float64))))


class MonotoneNetwork(nn.Module):
    """γ̃: strictly increasing in t for every value of its parameters."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.linear_weight = nn.Parameter(torch.zeros(()))
        self.input_weight = nn.Parameter(torch.randn(hidden))
        self.input_bias = nn.Parameter(torch.randn(hidden))
        self.output_weight = nn.Parameter(torch.randn(hidden) * 0.1)

    def forward(self, t: Tensor) -> Tensor:
        x = t[..., None]
        hidden = torch.sigmoid(F.softplus(self.input_weight) * x + self.input_bias)
        return F.softplus(self.linear_weight) * t + (F.softplus(self.output_weight) * hidden).sum(-1)


class LearnableGammaSchedule(NoiseSchedule):
    def __init__(self, *, gamma_0: float = -3.0, gamma_1: float = 3.0, hidden: int = 64) -> None:
        super().__init__()
        if not gamma_1 > gamma_0:
            raise ValueError(f"gamma_1 ({gamma_1}) must exceed gamma_0 ({gamma_0}) so that γ decreases")
        self.gamma_0 = nn.Parameter(torch.tensor(float(gamma_0)))
        self.gap = nn.Parameter(torch.tensor(_inverse_softplus(gamma_1 - gamma_0), dtype=torch.float32))
        self.network = MonotoneNetwork(hidden)

    @property
    def gamma_1(self) -> Tensor:
        return self.gamma_0 + F.softplus(self.gap)

    def gamma(self, t: Tensor) -> Tensor:
        ends = self.network(torch.stack([torch.zeros_like(t.flatten()[:1]), torch.ones_like(t.flatten()[:1])]))
        normalised = (self.network(t) - ends[0]) / (ends[1] - ends[0])
        return self.gamma_0 + (self.gamma_1 - self.gamma_0) * (1 - normalised)

    def alpha_bar(self, t: Tensor) -> Tensor:
        return torch.sigmoid(-self.gamma(t))

    def snr(self, t: Tensor) -> Tensor:
        return torch.exp(-self.gamma(t))  # exact; avoids ᾱ/(1 − ᾱ) cancellation near t = 1


def build(config: LearnableGammaConfig) -> LearnableGammaSchedule:
    if not config.gamma_1 > config.gamma_0:
        from noprop_core import NopropError

        raise NopropError(f"model.schedule: gamma_1 ({config.gamma_1}) must exceed gamma_0 ({config.gamma_0})")
    schedule = LearnableGammaSchedule(gamma_0=config.gamma_0, gamma_1=config.gamma_1, hidden=config.hidden)
    schedule.learning_rate = config.lr or None
    return schedule
