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
        # The noise target's block returns ε̂ ∈ ℝ^d itself.
        output_dim = parts.embedding.dim if config.target == "noise" else 0
        super().__init__(parts, steps=config.steps, sampler=config.sampler, output_dim=output_dim)
        self.eta = config.eta
        self.target = config.target
        self.time_sampling = config.time_sampling
        self.denoise_trains_embedding = config.denoise_trains_embedding

    def losses(self, images: Tensor, labels: Tensor, unit: str) -> dict[str, Tensor]:
        return ct_loss(
            logits_fn=lambda z, t: self.block(images, z, t),
            head=self.head,
            embedding_weight=self.embedding.weight,
            labels=labels,
            schedule=self.schedule,
            eta=self.eta,
            target=self.target,
            time_sampling=self.time_sampling,
            denoise_trains_embedding=self.denoise_trains_embedding,
        )

    def trajectory(self, images: Tensor, generator: torch.Generator | None = None) -> list[Tensor]:
        logits = ImageConditioned(self.block, images)
        weight = self.embedding.weight

        def denoise(z: Tensor, t: Tensor) -> Tensor:
            if self.target == "noise":
                alpha_bar = self.schedule.alpha_bar(t).to(z.dtype)[:, None]
                return embedding_from_noise(z, logits(z, t), alpha_bar)
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

    def blind_scores(self, images: Tensor, generator: torch.Generator | None = None) -> list[Tensor]:
        """The block at t = 0 with z_0 ~ N(0, I): its logits, or for the noise target the class
        nearest to the û its ε̂ implies."""
        z = self.initial_noise(images, generator)
        t = torch.zeros(len(images), device=images.device)
        output = self.block(images, z, t)
        if self.target == "noise":
            alpha_bar = self.schedule.alpha_bar(t).to(z.dtype)[:, None]
            return [self.nearest_embedding_scores(embedding_from_noise(z, output, alpha_bar))]
        return [output]


def build(config: CTConfig, parts: VariantParts) -> NoPropCT:
    return NoPropCT(config, parts)
