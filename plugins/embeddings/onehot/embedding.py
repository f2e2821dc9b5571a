"""The torch part of the plugin in this folder (see its ``__init__``)."""

from __future__ import annotations

import torch

from noprop_core import LabelEmbedding

from . import OneHotConfig


class OneHotEmbedding(LabelEmbedding):
    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.register_buffer("weight", torch.eye(num_classes))


def build(config: OneHotConfig, *, num_classes: int, **_context) -> OneHotEmbedding:
    return OneHotEmbedding(num_classes)
