"""Noise schedules and the discrete-time quantities derived from them.

Conventions (reversed with respect to DDPM): t runs from 0 (pure noise) to 1 (clean label);
ᾱ(t) increases with t, SNR(t) = ᾱ/(1 − ᾱ) too. A discrete chain of T steps reads the schedule
at t_k = k/T, k = 0..T, with ᾱ_k = ∏_{s=k..T} α_s, hence α_{k−1} = ᾱ_{k−1}/ᾱ_k and α_T = ᾱ_T.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
import torch
from torch import Tensor, nn


class NoiseSchedule(nn.Module):
    """ᾱ(t) on [0, 1], strictly increasing, with 0 ≤ ᾱ < 1 so SNR stays finite.

    Subclasses implement ``alpha_bar``; SNR, its derivative and the discrete chain follow.
    A schedule with trainable parameters is ``learnable`` and is re-discretised every step.
    """

    # The learning rate of a learnable schedule's parameters, when it differs from the recipe's
    # train.lr (None: the same); the trainer gives them their own parameter group.
    learning_rate: float | None = None

    @property
    def learnable(self) -> bool:
        return any(p.requires_grad for p in self.parameters())

    def alpha_bar(self, t: Tensor) -> Tensor:
        raise NotImplementedError

    def snr(self, t: Tensor) -> Tensor:
        alpha_bar = self.alpha_bar(t)
        return alpha_bar / (1 - alpha_bar)

    def snr_derivative(self, t: Tensor) -> Tensor:
        """dSNR/dt, exact (autograd); differentiable in the schedule's parameters while training."""
        return time_derivative(self.snr, t)

    @torch.no_grad()
    def time_of_snr(self, snr: Tensor, iterations: int = 40) -> Tensor:
        """The t with SNR(t) = ``snr`` (elementwise, clamped to [0, 1]), by bisection: SNR is
        increasing in t for every schedule, learned or not, so no closed form is needed."""
        low, high = torch.zeros_like(snr), torch.ones_like(snr)
        for _ in range(iterations):
            middle = 0.5 * (low + high)
            below = self.snr(middle) < snr
            low, high = torch.where(below, middle, low), torch.where(below, high, middle)
        return 0.5 * (low + high)

    def discretize(self, steps: int) -> DiscreteSchedule:
        # Differences of ᾱ near 1 lose precision in float32: compute in float64, keep float32.
        grid = torch.linspace(0.0, 1.0, steps + 1, dtype=torch.float64, device=_device_of(self))
        return DiscreteSchedule.from_alpha_bar(self.alpha_bar(grid))


def time_derivative(function: Callable[[Tensor], Tensor], t: Tensor) -> Tensor:
    """d function(t) / dt for elementwise functions of t, by autograd.

    When gradients are enabled the result stays differentiable (for parameters inside
    ``function``); under ``torch.no_grad`` it is a plain tensor.
    """
    keep_graph = torch.is_grad_enabled()
    with torch.enable_grad():
        t = t.detach().requires_grad_(True)
        (derivative,) = torch.autograd.grad(function(t).sum(), t, create_graph=keep_graph)
    return derivative if keep_graph else derivative.detach()


def _device_of(module: nn.Module) -> torch.device:
    for tensor in (*module.parameters(), *module.buffers()):
        return tensor.device
    return torch.device("cpu")


@attrs.frozen
class DiscreteSchedule:
    """The T-step chain of a schedule. Per-step tensors are indexed by t − 1 for t = 1..T.

    - ``alpha_bar[k]``, ``snr[k]`` for k = 0..T;
    - ``snr_weight[t-1]`` = SNR(t) − SNR(t−1) > 0, the weight of block t's denoising loss;
    - ``a``, ``b``, ``c``: q(z_t | z_{t−1}, y) = N(a_t u_y + b_t z_{t−1}, c_t I), with
      a_t = √ᾱ_t (1 − α_{t−1})/(1 − ᾱ_{t−1}), b_t = √α_{t−1} (1 − ᾱ_t)/(1 − ᾱ_{t−1}),
      c_t = (1 − ᾱ_t)(1 − α_{t−1})/(1 − ᾱ_{t−1}).
    """

    alpha_bar: Tensor
    snr: Tensor
    snr_weight: Tensor
    a: Tensor
    b: Tensor
    c: Tensor

    @property
    def steps(self) -> int:
        return self.alpha_bar.shape[0] - 1

    @classmethod
    def from_alpha_bar(cls, alpha_bar: Tensor, dtype: torch.dtype = torch.float32) -> DiscreteSchedule:
        ab = alpha_bar.to(torch.float64)
        snr = ab / (1 - ab)
        prev, cur = ab[:-1], ab[1:]  # ᾱ_{t−1}, ᾱ_t for t = 1..T
        alpha_prev = prev / cur  # α_{t−1}
        a = cur.sqrt() * (1 - alpha_prev) / (1 - prev)
        b = alpha_prev.sqrt() * (1 - cur) / (1 - prev)
        c = (1 - cur) * (1 - alpha_prev) / (1 - prev)
        return cls(*(x.to(dtype) for x in (ab, snr, snr[1:] - snr[:-1], a, b, c)))

    def to(self, device: torch.device | str) -> DiscreteSchedule:
        return DiscreteSchedule(*(getattr(self, f.name).to(device) for f in attrs.fields(type(self))))
