"""`fm`: NoProp-FM (paper Eq. 10–13, Algorithm 3): flow matching in label-embedding space.

v_θ(z_t, x, t) = logits · W_Embed (unconstrained weights). Inference integrates dz/dt = v from
z_0 ~ N(0, I) over [0, 1] and predicts the class whose embedding is nearest to z_1.
``sigma`` is the width of the probability path N(t z_1 + (1 − t) z_0, σ²); the paper gives no
value, and 0 (the straight conditional path) is the default.
"""

from __future__ import annotations

import attrs
import torch
from torch import Tensor

from noprop_core import (
    ODE_SOLVERS,
    ImageConditioned,
    Inference,
    SingleBlockVariant,
    VariantConfig,
    VariantParts,
    at_least,
    fm_loss,
    hookimpl,
    integrate,
    one_of,
)


@attrs.frozen(kw_only=True)
class FMConfig(VariantConfig):
    sigma: float = attrs.field(default=0.0, validator=at_least(0))
    steps: int = attrs.field(default=1000, validator=at_least(1))
    sampler: str = attrs.field(default="euler", validator=one_of(*ODE_SOLVERS))

    def inference(self) -> Inference:
        return Inference(steps=self.steps, sampler=self.sampler, steps_key="steps", sampler_key="sampler",
                         samplers=ODE_SOLVERS)  # fmt: skip


class NoPropFM(SingleBlockVariant):
    def __init__(self, config: FMConfig, parts: VariantParts):
        super().__init__(parts, steps=config.steps, sampler=config.sampler)
        self.sigma = config.sigma

    def losses(self, images: Tensor, labels: Tensor, unit: str) -> dict[str, Tensor]:
        return fm_loss(
            logits_fn=lambda z, t: self.block(images, z, t),
            head=self.head,
            embedding_weight=self.embedding.weight,
            labels=labels,
            sigma=self.sigma,
            anchor=self.embedding.learnable,  # the anchor keeps learned embeddings apart (Eq. 13)
        )

    def trajectory(self, images: Tensor, generator: torch.Generator | None = None) -> list[Tensor]:
        logits = ImageConditioned(self.block, images)
        weight = self.embedding.weight
        states = integrate(lambda z, t: logits(z, t.expand(len(z))) @ weight, self.initial_noise(images, generator),
                           self.steps, self.sampler)  # fmt: skip
        return [self.nearest_embedding_scores(z) for z in states]


def build(config: FMConfig, parts: VariantParts) -> NoPropFM:
    return NoPropFM(config, parts)


@hookimpl
def noprop_register_variants(registry):
    registry.add("fm", build, config=FMConfig, description="NoProp-FM: flow matching in embedding space")
