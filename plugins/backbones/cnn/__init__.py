"""`cnn`: the paper's block (Figure 6) for 1- or 3-channel images (any channel count, ≥ 4 px).

Image encoder: the figure's conv path (``noprop_core.conv_encoder``); label path, time path and
fusion come from ``noprop_core.paper_block`` (DT flavour with batch norm, CT flavour with the
time path). When the embedding is an image (prototypes, d = C·H·W), the noisy label is reshaped
to an image and goes through its own copy of the conv path (``noprop_core.image_label_path``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from noprop_core import BackboneConfig, between, hookimpl

if TYPE_CHECKING:
    from torch import nn

    from noprop_core import BlockSpec


@attrs.frozen(kw_only=True)
class CnnConfig(BackboneConfig):
    dropout: float = attrs.field(default=0.2, validator=between(0.0, 0.9))

    def paper_label(self) -> str:
        return "CNN (Figure 6)"


def build(config: CnnConfig, spec: BlockSpec) -> nn.Module:
    from noprop_core import conv_encoder, conv_feature_size, image_label_path, paper_block  # torch, when built

    label_encoder, label_features = image_label_path(spec, config.dropout)
    image_encoder = conv_encoder(spec.image_shape[0], config.dropout)
    return paper_block(spec, image_encoder, conv_feature_size(spec.image_shape), label_encoder, label_features)


@hookimpl
def noprop_register_backbones(registry) -> None:
    registry.add("cnn", build, config=CnnConfig, description="the paper's Figure 6 block (DT and CT flavours)")
