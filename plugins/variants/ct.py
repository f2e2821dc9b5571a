"""`ct`: NoProp-CT (paper Eq. 9, Algorithm 2; continuous time, usually with `learnable_gamma`).

``target = "noise"`` (not in the paper) makes the block predict the noise ε instead of the clean
embedding, with the loss weight transformed so that the objective is the same (``ct_loss``);
several NoProp reimplementations report that it trains more easily.

One block û_θ(z_t, x, t); the schedule's parameters ψ are shared parameters, trained with the
head and the embedding. Inference: ``ancestral`` applies the DT update on a grid of ``steps``
with ᾱ read off the (learned) schedule; ``euler`` / ``heun`` integrate the probability-flow ODE.
"""

from __future__ import annotations

import attrs
import torch
from torch import Tensor

from noprop_core import (
    CT_SAMPLERS,
    PREDICTION_TARGETS,
    ImageConditioned,
    Inference,
    SingleBlockVariant,
    VariantConfig,
    VariantParts,
    at_least,
    convex_denoise,
    ct_loss,
    dt_chain,
    embedding_from_noise,
    greater_than,
    hookimpl,
    integrate,
    one_of,
    probability_flow,
)


@attrs.frozen(kw_only=True)
class CTConfig(VariantConfig):
    eta: float = attrs.field(default=1.0, validator=greater_than(0))
    steps: int = attrs.field(default=1000, validator=at_least(1))  # inference steps
    sampler: str = attrs.field(default="ancestral", validator=one_of(*CT_SAMPLERS))
    # What the block predicts: the clean embedding u_y (the paper) or the noise ε (see ct_loss).
    target: str = attrs.field(default="embedding", validator=one_of(*PREDICTION_TARGETS))

    def inference(self) -> Inference:
        return Inference(steps=self.steps, sampler=self.sampler, steps_key="steps", sampler_key="sampler",
                         samplers=CT_SAMPLERS)  # fmt: skip


class NoPropCT(SingleBlockVariant):
    def __init__(self, config: CTConfig, parts: VariantParts):
        super().__init__(parts, steps=config.steps, sampler=config.sampler)
        self.eta = config.eta
        self.target = config.target

    def losses(self, images: Tensor, labels: Tensor, unit: str) -> dict[str, Tensor]:
        return ct_loss(
            logits_fn=lambda z, t: self.block(images, z, t),
            head=self.head,
            embedding_weight=self.embedding.weight,
            labels=labels,
            schedule=self.schedule,
            eta=self.eta,
            target=self.target,
        )

    def trajectory(self, images: Tensor, generator: torch.Generator | None = None) -> list[Tensor]:
        logits = ImageConditioned(self.block, images)
        weight = self.embedding.weight

        def denoise(z: Tensor, t: Tensor) -> Tensor:
            if self.target == "noise":
                alpha_bar = self.schedule.alpha_bar(t).to(z.dtype)[:, None]
                return embedding_from_noise(z, logits(z, t) @ weight, alpha_bar)
            return convex_denoise(logits(z, t), weight)

        if self.sampler == "ancestral":
            chain = self.schedule.discretize(self.steps).to(images.device)
            grid = torch.linspace(0, 1, self.steps + 1, device=images.device)
            states = dt_chain(
                lambda k, z: denoise(z, grid[k - 1].expand(len(z))),
                chain, len(images), weight.shape[1], device=images.device, generator=generator,
            )  # fmt: skip
        else:
            z_0 = self.initial_noise(images, generator)
            states = integrate(probability_flow(denoise, self.schedule), z_0, self.steps, self.sampler)
        return [self.head(z) for z in states]


def build(config: CTConfig, parts: VariantParts) -> NoPropCT:
    return NoPropCT(config, parts)


@hookimpl
def noprop_register_variants(registry):
    registry.add("ct", build, config=CTConfig, description="NoProp-CT: one block, continuous time (Algorithm 2)")
