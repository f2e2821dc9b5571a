"""`softmax`: p̂_θout(y | z) = softmax(W z + b) (paper Eq. 14), the default head."""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from noprop_core import HeadConfig, hookimpl

if TYPE_CHECKING:
    from noprop_core import LabelEmbedding


@attrs.frozen(kw_only=True)
class SoftmaxHeadConfig(HeadConfig):
    pass

    def paper_label(self) -> str:
        return "linear + softmax"


def build(config: SoftmaxHeadConfig, *, embedding: LabelEmbedding, num_classes: int):
    from .head import build as implementation  # torch: imported when the plugin is used

    return implementation(config, embedding=embedding, num_classes=num_classes)


@hookimpl
def noprop_register_heads(registry) -> None:
    registry.add("softmax", build, config=SoftmaxHeadConfig, description="softmax(Linear(z)), paper Eq. 14")
