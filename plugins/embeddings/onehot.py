"""`onehot`: W_Embed = I (num_classes × num_classes), fixed."""

from __future__ import annotations

import attrs
import torch

from noprop_core import LabelEmbedding, LabelEmbeddingConfig, hookimpl


@attrs.frozen(kw_only=True)
class OneHotConfig(LabelEmbeddingConfig):
    pass


class OneHotEmbedding(LabelEmbedding):
    def __init__(self, num_classes: int):
        super().__init__()
        self.register_buffer("weight", torch.eye(num_classes))


def build(config: OneHotConfig, *, num_classes: int, **_context) -> OneHotEmbedding:
    return OneHotEmbedding(num_classes)


@hookimpl
def noprop_register_label_embeddings(registry):
    registry.add("onehot", build, config=OneHotConfig, description="fixed identity, d = number of classes")
