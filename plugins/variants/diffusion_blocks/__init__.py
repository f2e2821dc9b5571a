"""`diffusion_blocks`: DiffusionBlocks (Shing, Koyama & Akiba, arXiv:2506.14202) for classification.

B blocks, each a denoiser of the noisy label embedding z = u_y + σ ε (variance exploding) for its
own range of noise levels, trained alone (each block is a unit: no gradient crosses blocks).

- Partition (§3.3): the training distribution ln σ ~ N(P_mean, P_std²) on [σ_min, σ_max] is cut
  into B ranges of equal probability, block 1 the noisiest; ``overlap`` (the paper's γ, App. C)
  widens block b's range by α_b = (σ_{b−1}/σ_b)^γ on each side in log σ. σ is drawn from the
  log-normal restricted to the block's widened range.
- Denoiser (App. C, EDM preconditioning, σ_data = 0.5): the block sees (x, c_in·z, c_noise =
  ¼ ln σ) and returns h ∈ ℝ^d; D = c_skip·z + c_out·h is the denoised embedding, and the head
  reads the class logits off D.
- Loss (Eq. 5 with cross-entropy, App. B): ``weighted_ce`` = E[w(σ)·CE(head(D), y)],
  w(σ) = (σ² + σ_data²)/(σ σ_data)².
- Label embeddings are L2-normalised row by row (App. C, against embedding collapse); for
  one-hot rows this changes nothing.
- Inference: z ~ N(0, (1 + σ_max²) I); ``steps`` noise levels from σ_max to σ_min, equally
  spaced in probability (default: one per block, so one block call per block); at each level
  the block whose range holds it gives the logits, D = softmax(logits)·W_normalised, and an
  Euler step z ← z + (σ_{i+1} − σ_i)(z − D)/σ_i follows; the logits at σ_min are the prediction.

Deviations, where NoProp's framework has its own part: the head is NoProp's linear head (the
reference adds an adaLN time modulation before its classifier), and the block is the
continuous-time paper block with c_noise as its time input (Table 6 uses NoProp-DT's block with
NoProp-CT's time conditioning).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from noprop_core import (
    UPDATE_ORDERS,
    Inference,
    InvalidValue,
    VariantConfig,
    at_least,
    between,
    greater_than,
    hookimpl,
    one_of,
)

if TYPE_CHECKING:
    from noprop_core import VariantParts

SAMPLERS = ("euler",)  # the paper's; kept as a key so `noprop eval --sampler` reads the same everywhere


@attrs.frozen(kw_only=True)
class DiffusionBlocksConfig(VariantConfig):
    blocks: int = attrs.field(default=3, validator=between(1, 1000))  # the paper: B = 3
    overlap: float = attrs.field(default=0.05, validator=between(0.0, 10.0))  # γ, in log σ
    # Noise levels visited at inference, σ_max to σ_min; 0: one per block (the paper).
    steps: int = attrs.field(default=0, validator=at_least(0))
    sampler: str = attrs.field(default="euler", validator=one_of(*SAMPLERS))
    order: str = attrs.field(default="simultaneous", validator=one_of(*UPDATE_ORDERS))
    sigma_min: float = attrs.field(default=0.002, validator=greater_than(0))
    sigma_max: float = attrs.field(default=80.0, validator=greater_than(0))
    p_mean: float = -1.2
    p_std: float = attrs.field(default=1.2, validator=greater_than(0))
    sigma_data: float = attrs.field(default=0.5, validator=greater_than(0))

    def __attrs_post_init__(self):
        if self.sigma_min >= self.sigma_max:
            raise InvalidValue("sigma_min", f"expected less than sigma_max = {self.sigma_max}, got {self.sigma_min}")
        if self.steps == 1:
            raise InvalidValue("steps", "expected 0 (one per block) or at least 2 noise levels, got 1")
        if self.steps > 1_000_000:
            raise InvalidValue("steps", f"expected at most 1000000, got {self.steps}")

    @property
    def grid_points(self) -> int:
        return self.steps or max(2, self.blocks)

    def inference(self) -> Inference:
        return Inference(
            steps=self.grid_points, sampler=self.sampler, steps_key="steps", sampler_key="sampler", samplers=SAMPLERS
        )

    def paper_label(self) -> str:
        return f"DiffusionBlocks (B = {self.blocks}, γ = {self.overlap:g})"


def build(config: DiffusionBlocksConfig, parts: VariantParts):
    from .model import build as implementation  # torch: imported when the plugin is used

    return implementation(config, parts)


@hookimpl
def noprop_register_variants(registry) -> None:
    registry.add(
        "diffusion_blocks",
        build,
        config=DiffusionBlocksConfig,
        description="DiffusionBlocks: B blocks, equal-probability noise ranges (arXiv:2506.14202)",
    )
