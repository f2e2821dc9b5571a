"""`radial`: the paper's radial head (Eq. 15–16), which reads class embeddings W_Embed.

ỹ = softmax(Linear(z)) · W_Embed;  log p̂(y | z) = −‖ỹ − u_y‖² / (2σ²) + const. The head holds a
reference to the variant's W_Embed, not a copy: the embedding is saved once, as the variant's.
"""

from __future__ import annotations

import attrs
import torch
from torch import Tensor, nn

from noprop_core import Head, HeadConfig, LabelEmbedding, greater_than, hookimpl


@attrs.frozen(kw_only=True)
class RadialHeadConfig(HeadConfig):
    sigma: float = attrs.field(default=1.0, validator=greater_than(0))


class RadialHead(Head):
    def __init__(self, embedding: LabelEmbedding, num_classes: int, sigma: float):
        super().__init__()
        self.linear = nn.Linear(embedding.dim, num_classes)
        self.sigma = sigma
        # A reference, not a submodule: W_Embed belongs to the variant (one copy in state_dict).
        object.__setattr__(self, "_embedding", embedding)

    def linear_layer(self) -> nn.Linear:
        return self.linear

    def forward(self, z: Tensor) -> Tensor:
        weight = self._embedding.weight
        y_tilde = self.linear(z).softmax(-1) @ weight
        squared = torch.cdist(y_tilde, weight).pow(2)
        return -squared / (2 * self.sigma**2)


def build(config: RadialHeadConfig, *, embedding: LabelEmbedding, num_classes: int) -> RadialHead:
    return RadialHead(embedding, num_classes, config.sigma)


@hookimpl
def noprop_register_heads(registry):
    registry.add(
        "radial", build, config=RadialHeadConfig, description="−‖softmax(Linear(z))·W_Embed − u_y‖²/2σ², Eq. 15–16"
    )
