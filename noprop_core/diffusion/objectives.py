"""The NoProp objectives: discrete time (Eq. 8), continuous time (Eq. 9), flow matching (Eq. 10–13)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from noprop_core.diffusion.choices import NOISE_FORMS, PREDICTION_TARGETS, TIME_SAMPLING
from noprop_core.diffusion.gaussian import kl_to_standard_normal, noise_from_embedding, sample_marginal
from noprop_core.diffusion.schedule import DiscreteSchedule, NoiseSchedule


def convex_denoise(logits: Tensor, embedding_weight: Tensor) -> Tensor:
    """û = softmax(logits) · W_Embed: a convex combination of class embeddings (DT and CT)."""
    return logits.softmax(-1) @ embedding_weight


def _check_noise_form(form: str) -> None:
    if form not in NOISE_FORMS:
        raise ValueError(f"unknown noise form {form!r}; expected one of {NOISE_FORMS}")


def noise_output_dim(form: str, num_classes: int, dim: int) -> int:
    """How many values a noise-target block returns: d (``free``) or m + d (``posterior``)."""
    _check_noise_form(form)
    return dim if form == "free" else num_classes + dim


def predicted_noise(output: Tensor, z: Tensor, embedding_weight: Tensor, alpha_bar: Tensor, form: str) -> Tensor:
    """ε̂ from a noise-target block's ``output`` at z (ᾱ broadcast against z):

    - ``free``: the output itself, ε̂ ∈ ℝ^d;
    - ``posterior``: the output is m class logits then r̂ ∈ ℝ^d, and
      ε̂ = (z − √ᾱ softmax(logits) · W_Embed) / √(1 − ᾱ) + r̂ — the form E[ε | z] has when the
      logits are the class posterior (u_y lies among W's rows), so r̂ = 0 is the embedding target
      and ε̂ still reaches every direction of ℝ^d (through z and r̂)."""
    if form == "free":  # called every training step: the common form returns before any check
        return output
    _check_noise_form(form)
    classes = embedding_weight.shape[0]
    logits, residual = output[..., :classes], output[..., classes:]
    return noise_from_embedding(z, convex_denoise(logits, embedding_weight), alpha_bar) + residual


def dt_noisy_inputs(
    embedding_weight: Tensor, labels: Tensor, chain: DiscreteSchedule, t: Tensor, eps_prev: Tensor
) -> Tensor:
    """z_{t−1} = √ᾱ_{t−1} u_y + √(1 − ᾱ_{t−1}) ε for K blocks (t a (K,) tensor in 1..T): (K, B, d),
    what block t sees in training."""
    u = embedding_weight[labels]
    alpha_prev = chain.alpha_bar[t - 1].view(-1, 1, 1)  # ᾱ_{t−1}
    return alpha_prev.sqrt() * u + (1 - alpha_prev).sqrt() * eps_prev


def dt_loss(
    *,
    denoiser: Callable[[Tensor], Tensor],
    head: nn.Module,
    embedding_weight: Tensor,
    labels: Tensor,
    chain: DiscreteSchedule,
    t: Tensor,
    eta: float,
    noise: tuple[Tensor, Tensor] | None = None,
) -> dict[str, Tensor]:
    """L_t (Eq. 8) for K blocks at once, t a (K,) tensor of block indices in 1..T; each term is (K,):

    - ``ce``: E[−log p̂(y | z_T)] with z_T ~ q(z_T | y), fresh, never a block output;
    - ``kl``: KL(q(z_0 | y) ‖ N(0, I));
    - ``denoise``: (T/2) η (SNR(t) − SNR(t−1)) E‖û_θt(z_{t−1}, x) − u_y‖², z_{t−1} ~ q(z_{t−1} | y).

    ``denoiser`` maps z_{t−1} (K, B, d) to the K blocks' logits (K, B, m) on the batch's images:
    one block (K = 1) or stacked blocks. ``noise`` gives the standard normal draws for z_{t−1} and
    z_T, each (K, B, d); without it they are drawn, z_T's after the blocks ran (the order a single
    block's training has always used). Squared norms sum over embedding dimensions; expectations
    are batch means.
    """
    u = embedding_weight[labels]
    blocks = len(t)
    shape = (blocks, *u.shape)
    eps_prev = noise[0] if noise is not None else torch.randn(shape, device=u.device, dtype=u.dtype)
    z_prev = dt_noisy_inputs(embedding_weight, labels, chain, t, eps_prev)
    u_hat = convex_denoise(denoiser(z_prev), embedding_weight)  # (K, B, d)
    squared_error = (u_hat - u).pow(2).sum(-1).mean(-1)  # (K,)
    eps_last = noise[1] if noise is not None else torch.randn(shape, device=u.device, dtype=u.dtype)
    alpha_last = chain.alpha_bar[-1]
    z_last = alpha_last.sqrt() * u + (1 - alpha_last).sqrt() * eps_last
    if blocks == 1:  # one block: the batch-mean cross-entropy kernel, as its training always used
        ce = F.cross_entropy(head(z_last[0]), labels).unsqueeze(0)
    else:
        ce = F.cross_entropy(head(z_last).flatten(0, 1), labels.repeat(blocks), reduction="none")
        ce = ce.view(blocks, -1).mean(-1)
    kl = kl_to_standard_normal(u, chain.alpha_bar[0]).mean().expand(blocks)
    denoise = 0.5 * chain.steps * eta * chain.snr_weight[t - 1] * squared_error
    return {"ce": ce, "kl": kl, "denoise": denoise}


def ct_times(
    schedule: NoiseSchedule, count: int, device: torch.device, sampling: str = "uniform", target: str = "embedding"
) -> tuple[Tensor, Tensor | None]:
    """t for ``count`` examples and its density p(t) (None: uniform, p = 1).

    ``importance`` draws t with density proportional to the target's weight on the schedule as
    it is now, so that weight / p(t) is a constant:
    - ``embedding`` (weight SNR′): p(t) = SNR′(t) / (SNR(1) − SNR(0)), SNR(t) uniform;
    - ``noise`` (weight SNR′/SNR): p(t) = (SNR′/SNR)(t) / (log SNR(1) − log SNR(0)), log SNR(t)
      uniform.
    t comes from inverting SNR (``time_of_snr``). Both are constants of the step (no gradient):
    dividing the weight by p(t) keeps the objective and its gradient in the schedule's parameters
    equal, in expectation, to uniform t's.
    """
    if sampling == "uniform":
        return torch.rand(count, device=device), None
    if sampling != "importance":
        raise ValueError(f"unknown time sampling {sampling!r}; expected one of {TIME_SAMPLING}")
    if target not in PREDICTION_TARGETS:
        raise ValueError(f"unknown prediction target {target!r}; expected one of {PREDICTION_TARGETS}")
    with torch.no_grad():
        ends = schedule.snr(torch.tensor([0.0, 1.0], device=device))
        v = torch.rand(count, device=device)
        if target == "embedding":
            t = schedule.time_of_snr(ends[0] + v * (ends[1] - ends[0]))
            density = schedule.snr_derivative(t) / (ends[1] - ends[0])
        else:
            log_ends = ends.log()
            t = schedule.time_of_snr((log_ends[0] + v * (log_ends[1] - log_ends[0])).exp())
            density = schedule.snr_derivative(t) / schedule.snr(t) / (log_ends[1] - log_ends[0])
    return t, density


def ct_loss(
    *,
    logits_fn: Callable[[Tensor, Tensor], Tensor],
    head: nn.Module,
    embedding_weight: Tensor,
    labels: Tensor,
    schedule: NoiseSchedule,
    eta: float,
    target: str = "embedding",
    time_sampling: str = "uniform",
    denoise_trains_embedding: bool = True,
    noise_form: str = "free",
) -> dict[str, Tensor]:
    """NoProp-CT (Eq. 9, Algorithm 2), t ~ U(0, 1) per example (or by importance, ``ct_times``):

    - ``ce``: E[−log p̂(y | z_1)], z_1 ~ q(z_1 | y);
    - ``kl``: KL(q(z_0 | y) ‖ N(0, I));
    - ``denoise`` with ``target = "embedding"`` (the paper): (η/2) E[SNR′(t) ‖û_θ(z_t, x, t) − u_y‖²],
      û = softmax(logits) · W_Embed, z_t = √ᾱ u_y + √(1 − ᾱ) ε;
    - ``denoise`` with ``target = "noise"``: ε̂ ∈ ℝ^d from the block's output (``predicted_noise``:
      noise off W_Embed's row space must be predictable too) and the term is
      (η/2) E[(SNR′(t)/SNR(t)) ‖ε̂ − ε‖²]: the same objective, since the û implied by ε̂
      (``embedding_from_noise``) has ‖û − u_y‖² = ‖ε̂ − ε‖² / SNR(t).
    With importance sampling each weight is divided by p(t) (the posterior form of the noise
    target is drawn as the embedding target: its term equals SNR′‖û − u_y‖²). ``logits_fn(z, t)`` is the block
    applied to the batch's images. ``denoise_trains_embedding = False``: W_Embed gets no gradient
    from the denoising term (z_t is built from a detached u_y); it learns from ``ce`` and ``kl``.
    """
    u = embedding_weight[labels]
    # The posterior form's error is SNR(t) × its û's: its term is SNR′‖û − u_y‖², the embedding
    # target's, so it is drawn by SNR′ as that one is.
    density_of = "embedding" if target == "noise" and noise_form == "posterior" else target
    t, density = ct_times(schedule, len(labels), u.device, time_sampling, density_of)
    noise = torch.randn(u.shape, device=u.device, dtype=u.dtype)
    denoise_weight = embedding_weight if denoise_trains_embedding else embedding_weight.detach()
    u_denoise = u if denoise_trains_embedding else u.detach()
    alpha_bar = schedule.alpha_bar(t)[:, None]
    z_t = sample_marginal(u_denoise, alpha_bar, noise=noise)
    output = logits_fn(z_t, t)
    slope = schedule.snr_derivative(t) if density is None else schedule.snr_derivative(t) / density
    if target == "embedding":
        weight, error = slope, (convex_denoise(output, denoise_weight) - u_denoise).pow(2).sum(-1)
    elif target == "noise":
        eps_hat = predicted_noise(output, z_t, denoise_weight, alpha_bar, noise_form)
        weight, error = slope / schedule.snr(t), (eps_hat - noise).pow(2).sum(-1)
    else:
        raise ValueError(f"unknown prediction target {target!r}; expected one of {PREDICTION_TARGETS}")
    ends = schedule.alpha_bar(torch.tensor([0.0, 1.0], device=u.device))
    z_1 = sample_marginal(u, ends[1])
    return {
        "ce": F.cross_entropy(head(z_1), labels),
        "kl": kl_to_standard_normal(u, ends[0]).mean(),
        "denoise": 0.5 * eta * (weight * error).mean(),
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
