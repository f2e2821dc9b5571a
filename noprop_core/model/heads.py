"""The output head p̂_θout(y | z): the contract, and the start shared by the heads.

A head plugin (``[model.head]``: ``softmax``, Eq. 14, or ``radial``, Eq. 15–16) returns a
``Head``: ``forward(z)`` gives logits (log-probabilities up to a constant), so cross-entropy and
argmax work the same for every head.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from noprop_core.model.choices import HEAD_INITS


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


def start_head(head: nn.Module, embedding_weight: Tensor, how: str) -> None:
    """Start ``head`` (a ``Head``) as ``how`` says (``HEAD_INITS``): "embedding" at the nearest
    class embedding of ``embedding_weight``, "default" as PyTorch made it."""
    if how == "embedding":
        if not isinstance(head, Head):
            raise ValueError(f"head_init = 'embedding' needs a Head with a linear layer, not {type(head).__name__}")
        start_at_nearest_embedding(head, embedding_weight)
    elif how != "default":
        raise ValueError(f"unknown head start {how!r}; expected one of {HEAD_INITS}")


def nearest_embedding_scores(z: Tensor, embedding_weight: Tensor) -> Tensor:
    """−‖z − u_c‖² for every class c (B, num_classes): the argmax is the nearest class embedding."""
    return -torch.cdist(z, embedding_weight).pow(2)
