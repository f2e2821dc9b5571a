"""The NoProp objectives: discrete time (Eq. 8), continuous time (Eq. 9), flow matching (Eq. 10–13)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from noprop_core.gaussian import kl_to_standard_normal, sample_marginal
from noprop_core.schedule import DiscreteSchedule, NoiseSchedule


def convex_denoise(logits: Tensor, embedding_weight: Tensor) -> Tensor:
    """û = softmax(logits) · W_Embed: a convex combination of class embeddings (DT and CT)."""
    return logits.softmax(-1) @ embedding_weight


def dt_block_loss(
    *,
    block: nn.Module,
    head: nn.Module,
    embedding_weight: Tensor,
    images: Tensor,
    labels: Tensor,
    chain: DiscreteSchedule,
    t: int,
    eta: float,
) -> dict[str, Tensor]:
    """L_t for block t ∈ 1..T, returned as its three terms (their sum is the objective):

    - ``ce``: E[−log p̂(y | z_T)] with z_T ~ q(z_T | y), fresh, never a block output;
    - ``kl``: KL(q(z_0 | y) ‖ N(0, I));
    - ``denoise``: (T/2) η (SNR(t) − SNR(t−1)) E‖û_θt(z_{t−1}, x) − u_y‖², z_{t−1} ~ q(z_{t−1} | y).
    Squared norms sum over embedding dimensions; expectations are batch means.
    """
    u = embedding_weight[labels]
    z_prev = sample_marginal(u, chain.alpha_bar[t - 1])
    u_hat = convex_denoise(block(images, z_prev), embedding_weight)
    squared_error = (u_hat - u).pow(2).sum(-1).mean()
    z_last = sample_marginal(u, chain.alpha_bar[-1])
    return {
        "ce": F.cross_entropy(head(z_last), labels),
        "kl": kl_to_standard_normal(u, chain.alpha_bar[0]).mean(),
        "denoise": 0.5 * chain.steps * eta * chain.snr_weight[t - 1] * squared_error,
    }


def ct_loss(
    *,
    logits_fn: Callable[[Tensor, Tensor], Tensor],
    head: nn.Module,
    embedding_weight: Tensor,
    labels: Tensor,
    schedule: NoiseSchedule,
    eta: float,
) -> dict[str, Tensor]:
    """NoProp-CT (Eq. 9, Algorithm 2), t ~ U(0, 1) per example:

    - ``ce``: E[−log p̂(y | z_1)], z_1 ~ q(z_1 | y);
    - ``kl``: KL(q(z_0 | y) ‖ N(0, I));
    - ``denoise``: (η/2) E[SNR′(t) ‖û_θ(z_t, x, t) − u_y‖²], z_t ~ q(z_t | y).
    ``logits_fn(z, t)`` is the block applied to the batch's images.
    """
    u = embedding_weight[labels]
    t = torch.rand(len(labels), device=u.device)
    z_t = sample_marginal(u, schedule.alpha_bar(t)[:, None])
    u_hat = convex_denoise(logits_fn(z_t, t), embedding_weight)
    weight = schedule.snr_derivative(t)
    ends = schedule.alpha_bar(torch.tensor([0.0, 1.0], device=u.device))
    z_1 = sample_marginal(u, ends[1])
    return {
        "ce": F.cross_entropy(head(z_1), labels),
        "kl": kl_to_standard_normal(u, ends[0]).mean(),
        "denoise": 0.5 * eta * (weight * (u_hat - u).pow(2).sum(-1)).mean(),
    }


def fm_loss(
    *,
    logits_fn: Callable[[Tensor, Tensor], Tensor],
    head: nn.Module,
    embedding_weight: Tensor,
    labels: Tensor,
    sigma: float,
    anchor: bool,
) -> dict[str, Tensor]:
    """NoProp-FM (Eq. 10–13): z_1 = u_y, z_0 ~ N(0, I), t ~ U(0, 1),
    z_t ~ N(t z_1 + (1 − t) z_0, σ²), v = logits · W_Embed (unconstrained weights).

    - ``flow``: E‖v_θ(z_t, x, t) − (z_1 − z_0)‖²;
    - ``anchor`` (only when the embedding is learned): E[−log p̂(y | z̃_1)], z̃_1 = z_t + (1 − t) v.
    """
    z_1 = embedding_weight[labels]
    z_0 = torch.randn_like(z_1)
    t = torch.rand(len(labels), device=z_1.device)[:, None]
    z_t = t * z_1 + (1 - t) * z_0 + sigma * torch.randn_like(z_1)
    velocity = logits_fn(z_t, t[:, 0]) @ embedding_weight
    terms = {"flow": (velocity - (z_1 - z_0)).pow(2).sum(-1).mean()}
    if anchor:
        terms["anchor"] = F.cross_entropy(head(z_t + (1 - t) * velocity), labels)
    return terms
