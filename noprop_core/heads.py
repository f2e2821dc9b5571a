"""Output heads p̂_θout(y | z): ``softmax`` (paper Eq. 14) and ``radial`` (Eq. 15–16).

Both return logits (log-probabilities up to a constant), so cross-entropy and argmax work the
same for either.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from noprop_core.embedding import LabelEmbedding

HEADS = ("softmax", "radial")


class RadialHead(nn.Module):
    """ỹ = softmax(Linear(z)) · W_Embed;  log p(y | z) = −‖ỹ − u_y‖² / (2σ²) + const."""

    def __init__(self, embedding: LabelEmbedding, num_classes: int, sigma: float):
        super().__init__()
        self.linear = nn.Linear(embedding.dim, num_classes)
        self.sigma = sigma
        # A reference, not a submodule: W_Embed belongs to the variant (one copy in state_dict).
        object.__setattr__(self, "_embedding", embedding)

    def forward(self, z: Tensor) -> Tensor:
        weight = self._embedding.weight
        y_tilde = self.linear(z).softmax(-1) @ weight
        squared = torch.cdist(y_tilde, weight).pow(2)
        return -squared / (2 * self.sigma**2)


def make_head(name: str, embedding: LabelEmbedding, num_classes: int, sigma: float = 1.0) -> nn.Module:
    if name == "softmax":
        return nn.Linear(embedding.dim, num_classes)
    if name == "radial":
        return RadialHead(embedding, num_classes, sigma)
    raise ValueError(f"unknown head {name!r}; expected one of {', '.join(HEADS)}")
