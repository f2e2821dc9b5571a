"""Label embeddings: the class embedding matrix W_Embed (num_classes × dim), and the trainable
kind's starting values."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrize

EMBEDDING_INITS = ("orthogonal", "random")


class LabelEmbedding(nn.Module):
    """Holds W_Embed. ``weight`` is the (m, d) matrix; ``forward(y)`` returns rows u_y.

    Subclasses register ``weight`` as an nn.Parameter when learnable, else as a buffer.
    """

    weight: Tensor

    @property
    def num_classes(self) -> int:
        return self.weight.shape[0]

    @property
    def dim(self) -> int:
        return self.weight.shape[1]

    @property
    def learnable(self) -> bool:
        return any(p.requires_grad for p in self.parameters())

    def forward(self, labels: Tensor) -> Tensor:
        return self.weight[labels]


class TrainableEmbedding(LabelEmbedding):
    """W_Embed as a parameter, trained with the head (a shared parameter of the variant).

    ``fixed_norms``: each row keeps its starting norm and only its direction is learned (a torch
    parametrization; ``weight`` reads the rescaled rows). Without it an objective whose
    gradient into W_Embed only pulls u_y towards the block's prediction — the noise target's —
    can shrink the rows until the classes are lost in the noise.
    """

    def __init__(self, weight: Tensor, fixed_norms: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight)
        if fixed_norms:
            parametrize.register_parametrization(self, "weight", FixedRowNorms(weight.detach().norm(dim=-1)))


class FixedRowNorms(nn.Module):
    """Rows rescaled to the given norms (kept in the state dict as a buffer)."""

    def __init__(self, norms: Tensor) -> None:
        super().__init__()
        self.norms: Tensor
        self.register_buffer("norms", norms.clone())

    def forward(self, weight: Tensor) -> Tensor:
        return F.normalize(weight, dim=-1) * self.norms[:, None]


def initial_embedding_weight(num_classes: int, dim: int, init: str) -> Tensor:
    """A (num_classes, dim) start with rows of unit norm on average (the signal scale of one-hot
    labels, so the schedule's SNR means the same for every embedding).

    ``orthogonal``: orthonormal rows where possible (num_classes ≤ dim), otherwise random, as the
    paper does (§2.2.1: "orthogonal … when possible, or randomly otherwise"). ``random``: rows
    from N(0, I/dim).
    """
    if init not in EMBEDDING_INITS:
        raise ValueError(f"unknown embedding init {init!r}; expected one of {', '.join(EMBEDDING_INITS)}")
    weight = torch.empty(num_classes, dim)
    if init == "orthogonal" and num_classes <= dim:
        return nn.init.orthogonal_(weight)
    return nn.init.normal_(weight, std=1.0 / math.sqrt(dim))
