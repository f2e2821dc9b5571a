"""The torch part of the plugin in this folder (see its ``__init__``)."""

from __future__ import annotations

from torch import nn

from noprop_core import Head, LabelEmbedding

from . import SoftmaxHeadConfig


class SoftmaxHead(nn.Linear, Head):
    """Logits W z + b. A plain linear layer, so its checkpoint keys are ``head.weight``, ``head.bias``."""

    def __init__(self, dim: int, num_classes: int) -> None:
        super().__init__(dim, num_classes)

    def linear_layer(self) -> nn.Linear:
        return self


def build(config: SoftmaxHeadConfig, *, embedding: LabelEmbedding, num_classes: int) -> SoftmaxHead:
    return SoftmaxHead(embedding.dim, num_classes)
