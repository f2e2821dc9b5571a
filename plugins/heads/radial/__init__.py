"""`radial`: the paper's radial head (Eq. 15–16), which reads class embeddings W_Embed.

ỹ = softmax(Linear(z)) · W_Embed;  log p̂(y | z) = −‖ỹ − u_y‖² / (2σ²) + const. The head holds a
reference to the variant's W_Embed, not a copy: the embedding is saved once, as the variant's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from noprop_core import HeadConfig, greater_than, hookimpl

if TYPE_CHECKING:
    from noprop_core import LabelEmbedding


@attrs.frozen(kw_only=True)
class RadialHeadConfig(HeadConfig):
    sigma: float = attrs.field(default=1.0, validator=greater_than(0))


def build(config: RadialHeadConfig, *, embedding: LabelEmbedding, num_classes: int):
    from .head import build as implementation  # torch: imported when the plugin is used

    return implementation(config, embedding=embedding, num_classes=num_classes)


@hookimpl
def noprop_register_heads(registry) -> None:
    registry.add(
        "radial", build, config=RadialHeadConfig, description="−‖softmax(Linear(z))·W_Embed − u_y‖²/2σ², Eq. 15–16"
    )
