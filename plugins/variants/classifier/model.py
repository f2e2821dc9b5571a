"""The torch part of the plugin in this folder (see its ``__init__``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from noprop_core import BlockSpec, Variant, VariantParts

from . import ClassifierConfig


class Classifier(Variant):
    units = ["model"]

    def __init__(self, config: ClassifierConfig, parts: VariantParts) -> None:
        super().__init__()
        self.embedding = parts.embedding
        spec = BlockSpec(
            image_shape=parts.image_shape, embedding_dim=parts.embedding.dim, num_classes=parts.num_classes
        )
        self.block = parts.make_block(spec)

    def unit_parameters(self, unit: str) -> list[nn.Parameter]:
        return list(self.block.parameters())

    def shared_parameters(self) -> list[nn.Parameter]:
        return []  # the embedding takes no part

    def block_modules(self) -> list[nn.Module]:
        return [self.block]

    def logits(self, images: Tensor) -> Tensor:
        return self.block(images, torch.zeros((len(images), self.embedding.dim), device=images.device))

    def losses(self, images: Tensor, labels: Tensor, unit: str) -> dict[str, Tensor]:
        return {"ce": F.cross_entropy(self.logits(images), labels)}

    def trajectory(self, images: Tensor, generator: torch.Generator | None = None) -> list[Tensor]:
        """Two states: before the block (no information: equal scores) and its logits."""
        logits = self.logits(images)
        return [torch.zeros_like(logits), logits]


def build(config: ClassifierConfig, parts: VariantParts) -> Classifier:
    return Classifier(config, parts)
