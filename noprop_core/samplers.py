"""Inference samplers: run the chain of blocks from noise to a label embedding."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from noprop_core.gaussian import posterior_step
from noprop_core.schedule import DiscreteSchedule


def dt_chain(
    denoise: Callable[[int, Tensor], Tensor],
    chain: DiscreteSchedule,
    batch: int,
    dim: int,
    *,
    device: torch.device,
    generator: torch.Generator | None = None,
) -> list[Tensor]:
    """z_0 ~ N(0, I); z_t = a_t û_t(z_{t−1}) + b_t z_{t−1} + √c_t ε for t = 1..T.

    ``denoise(t, z_prev)`` returns û for step t. Returns [z_0, z_1, ..., z_T].
    """
    z = torch.randn((batch, dim), generator=generator, device=device)
    states = [z]
    for t in range(1, chain.steps + 1):
        z = posterior_step(denoise(t, z), z, chain.a[t - 1], chain.b[t - 1], chain.c[t - 1], generator)
        states.append(z)
    return states
