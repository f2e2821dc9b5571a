"""`diffusion_blocks`: DiffusionBlocks (Shing, Koyama & Akiba, arXiv:2506.14202) on NoProp's labels.

B blocks, each a denoiser of the noisy label embedding z = u_y + σ ε for its own range of noise
levels, trained alone with its own optimizer (each block is a unit: no gradient crosses blocks).
The ranges cut the training noise distribution, ln σ ~ N(P_mean, P_std²) on [σ_min, σ_max],
into B pieces of *equal probability* (``noprop_core.LogNormalNoiseLevels``, t linear in its
cumulative probability; block 1 owns the noisiest levels); ``overlap`` widens each block's
range into its neighbours' by that fraction of its own length on each side.

A block sees (x, c_in·z, t) with c_in = 1/√(σ² + σ_data²) (EDM's input scaling) and t ∈ [0, 1]
the noise level's position in the partition, through the continuous-time paper block. Its
denoised embedding is D = softmax(logits)·W_Embed (``target = "embedding"``, as NoProp), or
D = z − σ ε̂ with ε̂ = logits·W_Embed (``target = "noise"``). Per block, terms:

- ``denoise``: E[λ(σ) ‖D − u_y‖²], σ drawn from the block's range of the log-normal, with EDM's
  weight λ(σ) = (σ² + σ_data²)/(σ σ_data)² (for the noise target the same term written in ε:
  (σ² + σ_data²)/σ_data² ‖ε̂ − ε‖²);
- ``ce`` (learned embeddings only): E[−log p̂(y | u_y + σ_min ε)], the anchor that keeps learned
  class embeddings apart, as NoProp-FM's;
- ``kl``: KL(N(u_y, σ_max² I) ‖ N(0, σ_max² I)) = ‖u_y‖²/(2σ_max²), the prior term of the VE
  process (it keeps a learned W_Embed bounded).

Inference starts from z ~ N(0, σ_max² I) and integrates the probability-flow ODE
dz/dσ = (z − D(z, σ))/σ from σ_max to σ_min, block 1's range first, ``steps`` steps per block
(equal steps in t), ``euler`` or ``heun``; the class whose embedding is nearest to each state is
its prediction (the denoised z at σ_min is an embedding, as in NoProp-FM).

Where the follow-up paper's text available here does not settle a choice, this plugin takes
EDM's values (P_mean = −1.2, P_std = 1.2, σ_min = 0.002, σ_max = 80, σ_data = 0.5, the weight
λ) and NoProp's (T = 10 blocks, the paper block, NoProp-FM's anchor and read-out).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from noprop_core import (
    ODE_SOLVERS,
    PREDICTION_TARGETS,
    UPDATE_ORDERS,
    Inference,
    InvalidValue,
    VariantConfig,
    between,
    greater_than,
    hookimpl,
    one_of,
)

if TYPE_CHECKING:
    from noprop_core import VariantParts


@attrs.frozen(kw_only=True)
class DiffusionBlocksConfig(VariantConfig):
    blocks: int = attrs.field(default=10, validator=between(1, 1000))
    overlap: float = attrs.field(default=0.0, validator=between(0.0, 1.0))
    steps: int = attrs.field(default=4, validator=between(1, 1_000_000))  # inference steps per block
    sampler: str = attrs.field(default="heun", validator=one_of(*ODE_SOLVERS))
    order: str = attrs.field(default="simultaneous", validator=one_of(*UPDATE_ORDERS))
    target: str = attrs.field(default="embedding", validator=one_of(*PREDICTION_TARGETS))
    sigma_min: float = attrs.field(default=0.002, validator=greater_than(0))
    sigma_max: float = attrs.field(default=80.0, validator=greater_than(0))
    p_mean: float = -1.2
    p_std: float = attrs.field(default=1.2, validator=greater_than(0))
    sigma_data: float = attrs.field(default=0.5, validator=greater_than(0))

    def __attrs_post_init__(self):
        if self.sigma_min >= self.sigma_max:
            raise InvalidValue("sigma_min", f"expected less than sigma_max = {self.sigma_max}, got {self.sigma_min}")

    def inference(self) -> Inference:
        return Inference(steps=self.steps, sampler=self.sampler, steps_key="steps", sampler_key="sampler",
                         samplers=ODE_SOLVERS)  # fmt: skip


def build(config: DiffusionBlocksConfig, parts: VariantParts):
    from .model import build as implementation  # torch: imported when the plugin is used

    return implementation(config, parts)


@hookimpl
def noprop_register_variants(registry):
    registry.add("diffusion_blocks", build, config=DiffusionBlocksConfig,
                 description="DiffusionBlocks: B blocks, equal-probability noise ranges (arXiv:2506.14202)")  # fmt: skip
