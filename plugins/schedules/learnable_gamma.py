"""`learnable_gamma`: the trainable noise schedule of NoProp-CT (paper Appendix B).

SNR(t) = exp(−γ(t)), ᾱ(t) = σ(−γ(t)), with γ decreasing in t:

    γ̄(t) = (γ̃(t) − γ̃(0)) / (γ̃(1) − γ̃(0)),     γ(t) = γ_0 + (γ_1 − γ_0)(1 − γ̄(t)),

so γ(0) = γ_1 and γ(1) = γ_0 exactly. γ̃ is a two-layer network with positive weights
(Kingma et al. 2021 keep them positive with abs(); here softplus, which is never 0, so γ̃ is
*strictly* increasing for any parameter values):

    γ̃(t) = softplus(a)·t + Σ_j softplus(v_j) · sigmoid(softplus(w_j)·t + b_j).

Choices (the paper gives none):
- hidden width 64: a monotone function of one variable needs few units, and the network is
  evaluated on a batch of scalars, so its cost is nil next to the block;
- initial endpoints γ_1 = 7, γ_0 = −7: ᾱ(0) = σ(−7) ≈ 9e-4 (z_0 is almost pure noise, small
  KL) and ᾱ(1) = σ(7) ≈ 0.999 (z_1 almost clean, SNR(1) ≈ 1 100, the same order as the cosine
  cap). The trainable endpoints keep γ_1 > γ_0 by γ_1 = γ_0 + softplus(δ).
"""

from __future__ import annotations

import attrs
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from noprop_core import NoiseSchedule, ScheduleConfig, at_least, hookimpl


def _inverse_softplus(value: float) -> float:
    return float(torch.log(torch.expm1(torch.tensor(value, dtype=torch.float64))))


@attrs.frozen(kw_only=True)
class LearnableGammaConfig(ScheduleConfig):
    gamma_0: float = -7.0  # γ at t = 1 (clean end)
    gamma_1: float = 7.0  # γ at t = 0 (noisy end); must exceed gamma_0
    hidden: int = attrs.field(default=64, validator=at_least(1))


class MonotoneNetwork(nn.Module):
    """γ̃: strictly increasing in t for every value of its parameters."""

    def __init__(self, hidden: int):
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
    def __init__(self, *, gamma_0: float = -7.0, gamma_1: float = 7.0, hidden: int = 64):
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
    return LearnableGammaSchedule(gamma_0=config.gamma_0, gamma_1=config.gamma_1, hidden=config.hidden)


@hookimpl
def noprop_register_schedules(registry):
    registry.add(
        "learnable_gamma", build, config=LearnableGammaConfig, description="trainable monotone γ(t) (Appendix B)"
    )
