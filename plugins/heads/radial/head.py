"""The torch part of the plugin in this folder (see its ``__init__``)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from noprop_core import Head, LabelEmbedding

from . import RadialHeadConfig


class RadialHead(Head):
    def __init__(self, embedding: LabelEmbedding, num_classes: int, sigma: float) -> None:
        super().__init__()
        self.linear = nn.Linear(embedding.dim, num_classes)
        self.sigma = sigma
        # A reference, not a submodule: W_Embed belongs to the variant (one copy in state_dict).
        object.__setattr__(self, "_embedding", embedding)
        self._embedding: LabelEmbedding

    def linear_layer(self) -> nn.Linear:
        return self.linear

    def forward(self, z: Tensor) -> Tensor:
        weight = self._embedding.weight
        y_tilde = self.linear(z).softmax(-1) @ weight
        squared = torch.cdist(y_tilde, weight).pow(2)
        return -squared / (2 * self.sigma**2)


def build(config: RadialHeadConfig, *, embedding: LabelEmbedding, num_classes: int) -> RadialHead:
    return RadialHead(embedding, num_classes, config.sigma)
