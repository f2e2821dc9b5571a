"""`diffusion_blocks`: DiffusionBlocks (Shing, Koyama & Akiba, arXiv:2506.14202) for classification.

B blocks, each a denoiser of the noisy label embedding z = u_y + σ ε (variance exploding) for its
own range of noise levels, trained alone (each block is a unit: no gradient crosses blocks).

- Partition (§3.3): the training distribution ln σ ~ N(P_mean, P_std²) on [σ_min, σ_max] is cut
  into B ranges of equal probability, block 1 the noisiest; ``overlap`` (the paper's γ, App. C)
  widens block b's range by α_b = (σ_{b−1}/σ_b)^γ on each side in log σ. σ is drawn from the
  log-normal restricted to the block's widened range.
- Denoiser (App. C, EDM preconditioning, σ_data = 0.5): the block sees (x, c_in·z, c_noise =
  ¼ ln σ) and returns h ∈ ℝ^d; D = c_skip·z + c_out·h is the denoised embedding, and the head
  reads the class logits off D (after an adaLN-Zero modulation by σ as the reference's
  classifier, with ``head_conditioning = "adaln"``). The block's time input embeds c_noise
  itself, as the reference does (``c_noise_scale``).
- Loss (Eq. 5 with cross-entropy, App. B): ``weighted_ce``, CE(head(D), y) weighted by
  w(σ) = (σ² + σ_data²)/(σ σ_data)²: mean(w)·mean(CE) per minibatch as the reference code
  computes it, or per example as Eq. 5 writes it (``weighting``).
- Label embeddings are L2-normalised row by row (App. C, against embedding collapse); for
  one-hot rows this changes nothing.
- Inference: z ~ N(0, (1 + σ_max²) I); ``steps`` noise levels from σ_max to σ_min, equally
  spaced in probability (default: one per block, so one block call per block); at each level
  the block whose range holds it gives the logits, D = softmax(logits)·W_normalised, and an
  Euler step z ← z + (σ_{i+1} − σ_i)(z − D)/σ_i follows; the logits at σ_min are the prediction.

The head (a linear layer, or ``model.head``'s) starts at the nearest normalised class
embedding (``head_init``; the paper does not say how it starts): with a random start it is the
part that lags after a short budget (docs/methods.md). Deviations, where NoProp's framework has
its own part: with the paper block (Table 6: NoProp-DT's block with NoProp-CT's time
conditioning) the block and the head's modulation embed c_noise each on their own; with the
reference ViT (``model.backbone.structure = "dit"``) the blocks share it. The reference's
inference reads D off the raw label-embedding weights while training on normalised ones; noprop
uses the normalised ones for both, as App. C describes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from noprop_core import (
    UPDATE_ORDERS,
    WEIGHTINGS,
    Inference,
    InvalidValue,
    VariantConfig,
    at_least,
    between,
    greater_than,
    head_init_field,
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
    # How w(σ) weights the cross-entropy: per example (Eq. 5) or mean(w)·mean(CE) per minibatch,
    # what the reference code computes and what produced the paper's numbers.
    weighting: str = attrs.field(default="batch_mean", validator=one_of(*WEIGHTINGS))
    # The block's time input is c_noise · c_noise_scale as a sinusoid's argument: the reference
    # embeds c_noise = ¼ ln σ itself (1); 1000 is what noprop's blocks did with t ∈ [0, 1].
    c_noise_scale: float = attrs.field(default=1.0, validator=greater_than(0))
    # The head reads D itself ("none"), or after an adaLN-Zero modulation by σ as the reference's
    # classifier does ("adaln", the identity at the start; the ViT recipes). "none" by measurement
    # with the paper's block (docs/methods.md: digits at 16 epochs 96.72 ± 0.14 % against
    # 96.22 ± 0.12 %, MNIST at 1 epoch 88.38 ± 0.79 % against 85.85 ± 1.75 %).
    head_conditioning: str = attrs.field(default="none", validator=one_of("adaln", "none"))
    head_init: str = head_init_field()  # how the head starts (noprop_core.HEAD_INITS), at the normalised embeddings

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

    def model_parts(self) -> frozenset[str]:
        return frozenset({"backbone", "label_embedding", "head"})  # no noise schedule

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
