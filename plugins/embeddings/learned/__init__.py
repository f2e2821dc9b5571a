"""`learned`: a trainable W_Embed of dimension ``dim`` (the paper's "dim-20" when dim = 20).

Inits (``noprop_core.initial_embedding_weight``): ``orthogonal`` gives orthonormal rows when
num_classes ≤ dim and, as the paper does where that is impossible (CIFAR-100 with dim 20), a
random start; ``random`` draws rows from N(0, I/dim). Either way rows have unit norm on average,
the signal scale of one-hot labels, so the schedule's SNR means the same thing for every embedding.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from noprop_core import LabelEmbeddingConfig, at_least, hookimpl, one_of

if TYPE_CHECKING:
    from noprop_core import TrainableEmbedding

INITS = ("orthogonal", "random")


@attrs.frozen(kw_only=True)
class LearnedConfig(LabelEmbeddingConfig):
    dim: int = attrs.field(default=20, validator=at_least(1))
    init: str = attrs.field(default="orthogonal", validator=one_of(*INITS))
    # Rows keep their starting norm, only directions learn (TrainableEmbedding); the noise
    # target's recipes need it against the rows' collapse.
    fixed_norms: bool = False

    def display_name(self) -> str:
        return f"{self.name} {self.dim}"

    def paper_label(self) -> str | None:
        # Table 1's learned embedding has dimension 20, its rows free to change their norms.
        return "dim=20" if self.dim == 20 and not self.fixed_norms else None


def build(config: LearnedConfig, *, num_classes: int, **_context) -> TrainableEmbedding:
    from noprop_core import TrainableEmbedding, initial_embedding_weight  # torch, when built

    return TrainableEmbedding(initial_embedding_weight(num_classes, config.dim, config.init), config.fixed_norms)


@hookimpl
def noprop_register_label_embeddings(registry) -> None:
    registry.add(
        "learned", build, config=LearnedConfig, description="trainable W_Embed, d from the recipe (default 20)"
    )
