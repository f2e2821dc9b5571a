"""The torch part of the plugin in this folder (see its ``__init__``)."""

from __future__ import annotations

import torch
from torch import Tensor

from noprop_core import (
    ImageConditioned,
    SingleBlockVariant,
    VariantParts,
    fm_loss,
    integrate,
    start_head,
)

from . import FMConfig


class NoPropFM(SingleBlockVariant):
    def __init__(self, config: FMConfig, parts: VariantParts) -> None:
        super().__init__(parts, steps=config.steps, sampler=config.sampler)
        self.sigma = config.sigma
        start_head(self.head, self.embedding.weight, config.head_init)

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
        states = integrate(
            lambda z, t: logits(z, t.expand(len(z))) @ weight,
            self.initial_noise(images, generator),
            self.steps,
            self.sampler,
        )
        return [self.nearest_embedding_scores(z) for z in states]

    def blind_scores(self, images: Tensor, generator: torch.Generator | None = None) -> list[Tensor]:
        """The class nearest to z_0 + v(z_0, x, 0): one Euler step from noise, z_0 ~ N(0, I)."""
        z = self.initial_noise(images, generator)
        velocity = self.block(images, z, torch.zeros(len(images), device=images.device)) @ self.embedding.weight
        return [self.nearest_embedding_scores(z + velocity)]


def build(config: FMConfig, parts: VariantParts) -> NoPropFM:
    return NoPropFM(config, parts)
