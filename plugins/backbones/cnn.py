"""`cnn`: the paper's block (Figure 6) for 1- or 3-channel images (any channel count, ≥ 4 px).

Image encoder: conv32–ReLU–maxpool–drop, conv64–ReLU–drop, conv128–ReLU–maxpool–drop, flatten;
label path, time path and fusion come from ``noprop_core.fusion.paper_block`` (DT flavour with
batch norm, CT flavour with the time path). Convolutions are 3×3 with padding 1 (the figure gives
no padding; this keeps 28 px → 7 px). When the embedding is an image (prototypes, d = C·H·W), the
noisy label is reshaped to an image and goes through its own copy of the conv path.
"""

from __future__ import annotations

import attrs
from torch import nn

from noprop_core.blocks import BlockSpec
from noprop_core.config import BackboneConfig, between
from noprop_core.errors import NopropError
from noprop_core.fusion import ReshapeToImage, is_image_embedding, paper_block
from noprop_core.hookspecs import hookimpl


@attrs.frozen(kw_only=True)
class CnnConfig(BackboneConfig):
    dropout: float = attrs.field(default=0.2, validator=between(0.0, 0.9))


def conv_features(channels: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(channels, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(dropout),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.Dropout(dropout),
        nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(dropout),
        nn.Flatten(),
    )  # fmt: skip


def conv_feature_size(image_shape: tuple[int, int, int]) -> int:
    _, height, width = image_shape
    if height < 4 or width < 4:
        raise NopropError(f"the cnn backbone needs images of at least 4×4 pixels, got {height}×{width}")
    return 128 * (height // 4) * (width // 4)


def image_label_path(spec: BlockSpec, dropout: float) -> tuple[nn.Module | None, int | None]:
    """A conv path for image-shaped embeddings (prototypes), else (None, None)."""
    if not is_image_embedding(spec):
        return None, None
    encoder = nn.Sequential(ReshapeToImage(spec.image_shape), conv_features(spec.image_shape[0], dropout))
    return encoder, conv_feature_size(spec.image_shape)


def build(config: CnnConfig, spec: BlockSpec) -> nn.Module:
    features = conv_feature_size(spec.image_shape)
    label_encoder, label_features = image_label_path(spec, config.dropout)
    return paper_block(
        spec, conv_features(spec.image_shape[0], config.dropout), features, label_encoder, label_features
    )


@hookimpl
def noprop_register_backbones(registry):
    registry.add("cnn", build, config=CnnConfig, description="the paper's Figure 6 block (DT and CT flavours)")
