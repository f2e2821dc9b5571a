"""`softmax`: p̂_θout(y | z) = softmax(W z + b) (paper Eq. 14), the default head."""

from __future__ import annotations

import attrs
from torch import nn

from noprop_core import Head, HeadConfig, LabelEmbedding, hookimpl


@attrs.frozen(kw_only=True)
class SoftmaxHeadConfig(HeadConfig):
    pass


class SoftmaxHead(nn.Linear, Head):
    """Logits W z + b. A plain linear layer, so its checkpoint keys are ``head.weight``, ``head.bias``."""

    def __init__(self, dim: int, num_classes: int):
        super().__init__(dim, num_classes)

    def linear_layer(self) -> nn.Linear:
        return self


def build(config: SoftmaxHeadConfig, *, embedding: LabelEmbedding, num_classes: int) -> SoftmaxHead:
    return SoftmaxHead(embedding.dim, num_classes)


@hookimpl
def noprop_register_heads(registry):
    registry.add("softmax", build, config=SoftmaxHeadConfig, description="softmax(Linear(z)), paper Eq. 14")
