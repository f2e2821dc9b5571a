"""The Gaussian identities of the NoProp objective (closed forms, no sampling tricks hidden)."""

from __future__ import annotations

import torch
from torch import Tensor


def sample_marginal(
    u: Tensor, alpha_bar: Tensor, generator: torch.Generator | None = None, noise: Tensor | None = None
) -> Tensor:
    """z ~ q(z_t | y) = N(√ᾱ_t u_y, (1 − ᾱ_t) I), reparameterised (gradients reach u); ``noise``
    gives the standard normal draw ε (drawn here when absent)."""
    if noise is None:
        noise = torch.randn(u.shape, generator=generator, device=u.device, dtype=u.dtype)
    return alpha_bar.sqrt() * u + (1 - alpha_bar).sqrt() * noise


def embedding_from_noise(z: Tensor, noise: Tensor, alpha_bar: Tensor) -> Tensor:
    """The u for which z = √ᾱ u + √(1 − ᾱ) ε: û = (z − √(1 − ᾱ) ε̂) / √ᾱ (noise prediction → embedding).

    Where ᾱ = 0 (a cosine schedule at t = 0) z holds nothing of u; ᾱ is floored at 1e-6 there."""
    alpha_bar = alpha_bar.clamp_min(1e-6)
    return (z - (1 - alpha_bar).sqrt() * noise) / alpha_bar.sqrt()


def noise_from_embedding(z: Tensor, u_hat: Tensor, alpha_bar: Tensor) -> Tensor:
    """The ε for which z = √ᾱ û + √(1 − ᾱ) ε: ε̂ = (z − √ᾱ û) / √(1 − ᾱ) (the inverse of
    ``embedding_from_noise``); 1 − ᾱ is floored at 1e-6 where z is u itself."""
    return (z - alpha_bar.sqrt() * u_hat) / (1 - alpha_bar).clamp_min(1e-6).sqrt()


def posterior_step(
    mean_target: Tensor, z_prev: Tensor, a: Tensor, b: Tensor, c: Tensor, generator: torch.Generator | None = None
) -> Tensor:
    """z_t ~ N(a_t û + b_t z_{t−1}, c_t I): one step of the chain (û replaces u_y at inference)."""
    noise = torch.randn(z_prev.shape, generator=generator, device=z_prev.device, dtype=z_prev.dtype)
    return a * mean_target + b * z_prev + c.sqrt() * noise


def kl_to_standard_normal(u: Tensor, alpha_bar: Tensor) -> Tensor:
    """KL(q(z_0 | y) ‖ N(0, I)) per example = ½(ᾱ_0 ‖u‖² − d ᾱ_0 − d log(1 − ᾱ_0))."""
    dim = u.shape[-1]
    return 0.5 * (alpha_bar * u.pow(2).sum(-1) - dim * alpha_bar - dim * torch.log1p(-alpha_bar))
