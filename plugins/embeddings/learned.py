"""`learned`: a trainable W_Embed of dimension ``dim`` (the paper's "dim-20" when dim = 20).

Inits: ``orthogonal`` gives orthonormal rows when num_classes ≤ dim; with more classes than
dimensions rows cannot be orthogonal, and the init is the tight frame torch's orthogonal init
gives (orthonormal columns), scaled so that rows have unit norm on average. ``random`` draws
rows from N(0, I/dim) (norm ≈ 1). Unit-norm rows keep the signal scale of one-hot labels, so
the schedule's SNR means the same thing for every embedding.
"""

from __future__ import annotations

import math

import attrs
import torch
from torch import nn

from noprop_core.config import LabelEmbeddingConfig, at_least, one_of
from noprop_core.embedding import LabelEmbedding
from noprop_core.hookspecs import hookimpl

INITS = ("orthogonal", "random")


@attrs.frozen(kw_only=True)
class LearnedConfig(LabelEmbeddingConfig):
    dim: int = attrs.field(default=20, validator=at_least(1))
    init: str = attrs.field(default="orthogonal", validator=one_of(*INITS))


def initial_weight(num_classes: int, dim: int, init: str) -> torch.Tensor:
    weight = torch.empty(num_classes, dim)
    if init == "random":
        return nn.init.normal_(weight, std=1.0 / math.sqrt(dim))
    nn.init.orthogonal_(weight)
    if num_classes > dim:
        weight *= math.sqrt(num_classes / dim)
    return weight


class TrainableEmbedding(LabelEmbedding):
    def __init__(self, weight: torch.Tensor):
        super().__init__()
        self.weight = nn.Parameter(weight)


def build(config: LearnedConfig, *, num_classes: int, **_context) -> TrainableEmbedding:
    return TrainableEmbedding(initial_weight(num_classes, config.dim, config.init))


@hookimpl
def noprop_register_label_embeddings(registry):
    registry.add(
        "learned", build, config=LearnedConfig, description="trainable W_Embed, d from the recipe (default 20)"
    )
