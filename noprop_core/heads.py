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


def start_at_nearest_embedding(head: nn.Module, embedding_weight: Tensor) -> None:
    """Set the head's linear layer so that its logits start as −‖z − u_k‖² / d̄² + const(z).

    d̄² is the mean squared distance between two different class embeddings, so the starting
    temperature does not depend on the embedding's scale (one-hot: −‖z − u_k‖² / 2, the log-density
    of N(u_k, I)). The head then starts out reading z the way NoProp does at inference: the nearest
    class embedding wins.
    """
    linear = head.linear if isinstance(head, RadialHead) else head
    weight = embedding_weight.detach()
    spread = torch.cdist(weight, weight).pow(2).sum() / (len(weight) * (len(weight) - 1))
    with torch.no_grad():
        linear.weight.copy_(2 * weight / spread)
        linear.bias.copy_(-weight.pow(2).sum(-1) / spread)


def make_head(name: str, embedding: LabelEmbedding, num_classes: int, sigma: float = 1.0) -> nn.Module:
    if name == "softmax":
        return nn.Linear(embedding.dim, num_classes)
    if name == "radial":
        return RadialHead(embedding, num_classes, sigma)
    raise ValueError(f"unknown head {name!r}; expected one of {', '.join(HEADS)}")
