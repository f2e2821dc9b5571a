"""The NoProp objectives (paper Eq. 8 / Algorithm 1 for discrete time)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from noprop_core.gaussian import kl_to_standard_normal, sample_marginal
from noprop_core.schedule import DiscreteSchedule


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
