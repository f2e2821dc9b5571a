"""The output head p̂_θout(y | z): the contract, and the start shared by the heads.

A head plugin (``[model.head]``: ``softmax``, Eq. 14, or ``radial``, Eq. 15–16) returns a
``Head``: ``forward(z)`` gives logits (log-probabilities up to a constant), so cross-entropy and
argmax work the same for every head.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class Head(nn.Module):
    """p̂_θout(y | z) returning logits (B, num_classes)."""

    def linear_layer(self) -> nn.Linear:
        """The linear map z → class scores inside the head (what ``start_at_nearest_embedding`` sets)."""
        raise NotImplementedError(f"{type(self).__name__} has no linear layer to start from")


def start_at_nearest_embedding(head: Head, embedding_weight: Tensor) -> None:
    """Set the head's linear layer so that its logits start as −‖z − u_k‖² / d̄² + const(z).

    d̄² is the mean squared distance between two different class embeddings, so the starting
    temperature does not depend on the embedding's scale (one-hot: −‖z − u_k‖² / 2, the log-density
    of N(u_k, I)). The head then starts out reading z the way NoProp does at inference: the nearest
    class embedding wins.
    """
    linear = head.linear_layer()
    weight = embedding_weight.detach()
    spread = torch.cdist(weight, weight).pow(2).sum() / (len(weight) * (len(weight) - 1))
    with torch.no_grad():
        linear.weight.copy_(2 * weight / spread)
        linear.bias.copy_(-weight.pow(2).sum(-1) / spread)
