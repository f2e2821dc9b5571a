"""Noise levels of a variance-exploding diffusion, z = u + σ ε, as DiffusionBlocks uses them
(Shing, Koyama & Akiba, arXiv:2506.14202, after Karras et al.'s EDM).

Training draws σ from a log-normal, ln σ ~ N(P_mean, P_std²), restricted to [σ_min, σ_max].
Time t ∈ [0, 1] runs in NoProp's direction (t = 0 pure noise, t = 1 clean) and is linear in
that distribution's cumulative probability: t = (Φ_max − Φ(σ)) / (Φ_max − Φ_min), so equal
lengths of t hold equal probability mass. Cutting [0, 1] into B equal pieces is the
equal-probability partition of the noise levels among B blocks.
"""

from __future__ import annotations

import math

import attrs
import torch
from torch import Tensor
from torch.distributions import Normal

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
        cdf = (high - t.double() * (high - low)).clamp(1e-15, 1 - 1e-15)
        sigma = torch.exp(self.p_mean + self.p_std * STANDARD_NORMAL.icdf(cdf))
        return sigma.clamp(self.sigma_min, self.sigma_max).to(t.dtype if t.is_floating_point() else torch.float32)

    def t_of(self, sigma: Tensor) -> Tensor:
        """The inverse of ``sigma``: t ∈ [0, 1] of a noise level."""
        low, high = self.cdf_range
        cdf = STANDARD_NORMAL.cdf((sigma.double().log() - self.p_mean) / self.p_std)
        return ((high - cdf) / (high - low)).to(sigma.dtype)


def block_interval(block: int, blocks: int, overlap: float = 0.0) -> tuple[float, float]:
    """The t-interval of block ``block`` ∈ 1..B: [(b − 1)/B, b/B], widened on each side by
    ``overlap`` times its own length (clipped to [0, 1]). Block 1 owns the noisiest levels."""
    width = 1.0 / blocks
    return max(0.0, (block - 1 - overlap) * width), min(1.0, (block + overlap) * width)
