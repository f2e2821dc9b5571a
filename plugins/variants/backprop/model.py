"""The torch part of the plugin in this folder (see its ``__init__``)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from noprop_core import (
    BlockSpec,
    Variant,
    VariantParts,
    convex_denoise,
    start_head,
)

from . import BackpropConfig


class BackpropChain(Variant):
    units = ["model"]  # one optimizer over everything: this is ordinary end-to-end training

    def __init__(self, config: BackpropConfig, parts: VariantParts) -> None:
        super().__init__()
        self.embedding = parts.embedding
        spec = BlockSpec(
            image_shape=parts.image_shape, embedding_dim=parts.embedding.dim, num_classes=parts.num_classes
        )
        self.blocks = nn.ModuleList(parts.make_block(spec) for _ in range(config.timesteps))
        self.mixing = nn.Parameter(torch.full((config.timesteps,), math.atanh(config.alpha_init)))
        self.head = parts.make_head()
        start_head(self.head, self.embedding.weight, config.head_init)

    def unit_parameters(self, unit: str) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    def block_passes(self, units: list[str]) -> int:
        """Every step chains all T blocks, forward and backward."""
        return len(self.blocks)

    def block_modules(self) -> list[nn.Module]:
        return list(self.blocks)

    def chain(self, images: Tensor, generator: torch.Generator | None = None) -> list[Tensor]:
        """z_0 ~ N(0, I), then z_t = (1 − α_t) z_{t−1} + α_t û_θt(z_{t−1}, x): every state."""
        weight = self.embedding.weight
        states = [torch.randn((len(images), weight.shape[1]), generator=generator, device=images.device)]
        for block, w in zip(self.blocks, self.mixing):
            alpha = torch.tanh(w)
            states.append((1 - alpha) * states[-1] + alpha * convex_denoise(block(images, states[-1]), weight))
        return states

    def losses(self, images: Tensor, labels: Tensor, unit: str) -> dict[str, Tensor]:
        return {"ce": F.cross_entropy(self.head(self.chain(images)[-1]), labels)}

    def diagnostics(self) -> dict[str, list[float]]:
        """α_1 … α_T: how much of each state the blocks overwrite."""
        return {"mixing_alpha": torch.tanh(self.mixing.detach()).tolist()}

    def trajectory(self, images: Tensor, generator: torch.Generator | None = None) -> list[Tensor]:
        return [self.head(z) for z in self.chain(images, generator)]


def build(config: BackpropConfig, parts: VariantParts) -> BackpropChain:
    return BackpropChain(config, parts)
