"""Noise levels of a variance-exploding diffusion, z = u + σ ε, as DiffusionBlocks uses them
(Shing, Koyama & Akiba, arXiv:2506.14202, after Karras et al.'s EDM).

Training draws σ from a log-normal, ln σ ~ N(P_mean, P_std²), restricted to [σ_min, σ_max].
Time t ∈ [0, 1] runs in NoProp's direction (t = 0 pure noise, t = 1 clean) and is linear in
that distribution's cumulative probability: t = (Φ_max − Φ(σ)) / (Φ_max − Φ_min), so equal
lengths of t hold equal probability mass. Cutting [0, 1] into B equal pieces is the paper's
equi-probability partition (§3.3) of the noise levels among B blocks, block 1 the noisiest.
"""

from __future__ import annotations

import math
from fractions import Fraction

import attrs
import torch
from torch import Tensor
from torch.distributions import Normal

from noprop_core.diffusion.choices import WEIGHTINGS

STANDARD_NORMAL = Normal(torch.zeros((), dtype=torch.float64), torch.ones((), dtype=torch.float64))


@attrs.frozen
class LogNormalNoiseLevels:
    p_mean: float = -1.2
    p_std: float = 1.2
    sigma_min: float = 0.002
    sigma_max: float = 80.0

    def _cdf(self, sigma: float) -> float:
        return 0.5 * (1 + math.erf((math.log(sigma) - self.p_mean) / (self.p_std * math.sqrt(2))))

    @property
    def cdf_range(self) -> tuple[float, float]:
        """(Φ_min, Φ_max): the log-normal's cumulative probability at σ_min and σ_max."""
        return self._cdf(self.sigma_min), self._cdf(self.sigma_max)

    def sigma(self, t: Tensor) -> Tensor:
        """σ(t): σ_max at t = 0, σ_min at t = 1, the log-normal's quantile in between."""
        low, high = self.cdf_range
        cdf = high - t.double() * (high - low)  # in [Φ_min, Φ_max] ⊂ (0, 1) for t in [0, 1]
        sigma = torch.exp(self.p_mean + self.p_std * STANDARD_NORMAL.icdf(cdf))
        return sigma.clamp(self.sigma_min, self.sigma_max).to(t.dtype if t.is_floating_point() else torch.float32)

    def t_of(self, sigma: Tensor) -> Tensor:
        """The inverse of ``sigma``: t ∈ [0, 1] of a noise level."""
        low, high = self.cdf_range
        cdf = STANDARD_NORMAL.cdf((sigma.double().log() - self.p_mean) / self.p_std)
        return ((high - cdf) / (high - low)).to(sigma.dtype)

    def block_range(self, block: int, blocks: int, overlap: float = 0.0) -> tuple[float, float]:
        """(σ_low, σ_high) that block ``block`` ∈ 1..B trains on. Its own range is
        [σ_b, σ_{b−1}] of the equi-probability partition; ``overlap`` (the paper's γ, App. C)
        widens it to [σ_b / α_b, α_b σ_{b−1}] with α_b = (σ_{b−1}/σ_b)^γ — γ times its own
        width in log σ on each side — clipped to [σ_min, σ_max]."""
        high, low = (
            float(self.sigma(torch.tensor(float(t), dtype=torch.float64)))
            for t in (Fraction(block - 1, blocks), Fraction(block, blocks))
        )
        alpha = (high / low) ** overlap
        return max(self.sigma_min, low / alpha), min(self.sigma_max, high * alpha)

    def draw(
        self,
        sigma_low: float,
        sigma_high: float,
        count: int,
        device: torch.device | str = "cpu",
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """``count`` σ from the log-normal restricted to [σ_low, σ_high] (uniform in its
        cumulative probability, then the quantile), float32."""
        t_low, t_high = (float(self.t_of(torch.tensor(s, dtype=torch.float64))) for s in (sigma_high, sigma_low))
        t = t_low + (t_high - t_low) * torch.rand(count, device=device, generator=generator, dtype=torch.float64)
        return self.sigma(t).float()

    def inference_grid(self, points: int) -> Tensor:
        """``points`` noise levels from σ_max down to σ_min, equally spaced in cumulative
        probability (the reference code's ``get_discrete_sigmas(dblock=True)``), float64."""
        if points < 2:
            raise ValueError(f"an inference grid needs at least 2 noise levels, got {points}")
        return self.sigma(torch.linspace(0, 1, points, dtype=torch.float64))


def grid_blocks(points: int, blocks: int) -> list[int]:
    """Which block (1..B) denoises at each of ``points`` grid levels (equal steps of t from 0 to
    1): the one whose range holds it; a level on a boundary goes to the noisier of the two
    blocks, as the reference code's bucketing does. Exact in rational arithmetic."""
    return [max(1, math.ceil(Fraction(i * blocks, points - 1))) for i in range(points)]


def edm_preconditioning(sigma: Tensor, sigma_data: float) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """EDM's (c_in, c_skip, c_out, c_noise) at σ: the block sees c_in·z and c_noise, and its
    output h gives the denoised D = c_skip·z + c_out·h.
    c_in = 1/√(σ² + σ_d²), c_skip = σ_d²/(σ² + σ_d²), c_out = σ σ_d/√(σ² + σ_d²), c_noise = ¼ ln σ."""
    total = sigma.pow(2) + sigma_data**2
    return total.rsqrt(), sigma_data**2 / total, sigma * sigma_data / total.sqrt(), 0.25 * sigma.log()


def edm_weight(sigma: Tensor, sigma_data: float) -> Tensor:
    """λ(σ) = (σ² + σ_d²)/(σ σ_d)², the per-example weight of the loss (EDM, DiffusionBlocks Eq. 5)."""
    return (sigma.pow(2) + sigma_data**2) / (sigma * sigma_data).pow(2)


def edm_weighted(losses: Tensor, weight: Tensor, weighting: str) -> Tensor:
    """The minibatch's loss from per-example ``losses`` (B,) and weights w(σ_i) (B,): "example"
    mean(w_i · loss_i); "batch_mean" mean(w) · mean(loss), what the DiffusionBlocks reference code
    computes (``(loss * w[:, None]).mean()`` with loss of shape (B,) broadcasts to B × B)."""
    if weighting == "example":
        return (weight * losses).mean()
    if weighting == "batch_mean":
        return weight.mean() * losses.mean()
    raise ValueError(f"unknown weighting {weighting!r}; expected one of {WEIGHTINGS}")
