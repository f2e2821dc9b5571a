"""σ-conditioning by adaptive layer norm, zero-initialised (adaLN-Zero, Peebles & Xie 2023), as
DiffusionBlocks' reference code conditions its ViT layers and its classifier on the noise level.

A ``TimeEmbedder`` turns the noise input (c_noise) into a conditioning vector; an ``AdaLNZero``
maps that vector to shifts, scales and gates, each starting at exactly zero, so that a layer
modulated by them starts as the identity (gates multiply residual branches: a gated branch
starts switched off)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

FREQUENCY_EMBEDDING = 256  # sinusoid width of the reference's time embedder
HEAD_CONDITIONING = 64  # width of the conditioning a head's modulation reads (the reference: ViT width / 6)


def timestep_sinusoid(t: Tensor, dim: int = FREQUENCY_EMBEDDING, max_period: float = 10_000.0) -> Tensor:
    """[cos(t ω_k), sin(t ω_k)], ω_k = max_period^(−k/half), k < half = dim/2: of t itself, unscaled."""
    half = dim // 2
    frequencies = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = t.float()[:, None] * frequencies[None, :]
    return torch.cat([angles.cos(), angles.sin()], dim=-1)


class TimeEmbedder(nn.Module):
    """c = SiLU(MLP(sinusoid(t))): the conditioning every adaLN of a model reads."""

    def __init__(self, width: int, frequencies: int = FREQUENCY_EMBEDDING) -> None:
        super().__init__()
        self.width, self.frequencies = width, frequencies
        first, second = nn.Linear(frequencies, width), nn.Linear(width, width)
        for layer in (first, second):
            nn.init.normal_(layer.weight, std=0.02)
        self.mlp = nn.Sequential(first, nn.SiLU(), second)

    def forward(self, t: Tensor) -> Tensor:
        sinusoid = timestep_sinusoid(t, self.frequencies).to(next(self.parameters()).dtype)
        return F.silu(self.mlp(sinusoid))


class AdaLNZero(nn.Module):
    """``parts`` modulation vectors of ``width`` from a conditioning c: SiLU(Linear(c)), the
    linear layer zero-initialised (every vector starts at 0)."""

    def __init__(self, conditioning: int, width: int, parts: int) -> None:
        super().__init__()
        self.parts = parts
        self.linear = nn.Linear(conditioning, parts * width)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, conditioning: Tensor) -> tuple[Tensor, ...]:
        return tuple(F.silu(self.linear(conditioning)).chunk(self.parts, dim=-1))


def modulate(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    """x (1 + scale) + shift, the vectors broadcast over x's token axis when it has one."""
    if x.dim() == 3:
        shift, scale = shift[:, None], scale[:, None]
    return x * (1 + scale) + shift


class NoiseModulation(nn.Module):
    """x (1 + scale(c)) + shift(c), c = ``TimeEmbedder(c_noise)``, shift and scale from an
    ``AdaLNZero``: a state modulated by the noise level before a head reads it; the identity at
    the start."""

    def __init__(self, dim: int, conditioning: int, time: TimeEmbedder | None = None) -> None:
        """``time``: a time embedder shared with the blocks (held by reference), else its own."""
        super().__init__()
        if time is None:
            self.time = TimeEmbedder(conditioning)
        else:
            object.__setattr__(self, "time", time)  # a reference: its owner registers it
        self.modulation = AdaLNZero(self.time.width, dim, parts=2)

    def forward(self, x: Tensor, c_noise: Tensor) -> Tensor:
        shift, scale = self.modulation(self.time(c_noise))
        return modulate(x, shift, scale)
