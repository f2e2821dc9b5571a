"""The torch part of the plugin in this folder (see its ``__init__``)."""

from __future__ import annotations

import torch
from torch import Tensor

from noprop_core import (
    ImageConditioned,
    SingleBlockVariant,
    VariantParts,
    convex_denoise,
    ct_loss,
    dt_chain,
    embedding_from_noise,
    integrate,
    probability_flow,
)

from . import CTConfig


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
