"""`cnn`: the paper's block (Figure 6) for any channel count and image size (≥ 4 px).

Discrete time (left of Figure 6): image path conv32–ReLU–maxpool–drop, conv64–ReLU–drop,
conv128–ReLU–maxpool–drop, flatten, FC256–BN; label path FC256–BN–ReLU plus a residual
[FC256–BN–ReLU–FC256–BN]; concat → FC256–BN–ReLU → FC128–BN–ReLU → FC(classes).
Continuous time (right): the same convs, image path ends FC256–ReLU, label path FC256–ReLU,
time path sinusoidal embedding (64) → FC256–ReLU; no batch norm anywhere.
Convolutions are 3×3 with padding 1 (the figure gives no padding; this keeps 28 px → 7 px).
"""

from __future__ import annotations

import math

import attrs
import torch
from torch import Tensor, nn

from noprop_core.blocks import Block, BlockSpec
from noprop_core.config import BackboneConfig, between
from noprop_core.hookspecs import hookimpl
from noprop_core.errors import NopropError

HIDDEN = 256
TIME_EMBEDDING = 64


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


def sinusoidal_embedding(t: Tensor, dim: int = TIME_EMBEDDING) -> Tensor:
    """Transformer-style positional embedding of t ∈ [0, 1] (scaled to [0, 1000])."""
    half = dim // 2
    frequencies = torch.exp(-math.log(10_000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = 1000.0 * t.float()[:, None] * frequencies[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


class DiscreteTimeBlock(Block):
    def __init__(self, spec: BlockSpec, dropout: float):
        super().__init__()
        self.image_path = nn.Sequential(
            conv_features(spec.image_shape[0], dropout),
            nn.Linear(conv_feature_size(spec.image_shape), HIDDEN), nn.BatchNorm1d(HIDDEN),
        )  # fmt: skip
        self.label_in = nn.Sequential(nn.Linear(spec.embedding_dim, HIDDEN), nn.BatchNorm1d(HIDDEN), nn.ReLU())
        self.label_residual = nn.Sequential(
            nn.Linear(HIDDEN, HIDDEN), nn.BatchNorm1d(HIDDEN), nn.ReLU(),
            nn.Linear(HIDDEN, HIDDEN), nn.BatchNorm1d(HIDDEN),
        )  # fmt: skip
        self.fusion = nn.Sequential(
            nn.Linear(2 * HIDDEN, 256), nn.BatchNorm1d(256), nn.ReLU(),
            nn.Linear(256, 128), nn.BatchNorm1d(128), nn.ReLU(),
            nn.Linear(128, spec.num_classes),
        )  # fmt: skip

    def encode_image(self, images: Tensor) -> Tensor:
        return self.image_path(images)

    def from_features(self, features: Tensor, z: Tensor, t: Tensor | None = None) -> Tensor:
        label = self.label_in(z)
        label = label + self.label_residual(label)
        return self.fusion(torch.cat([features, label], dim=-1))


class ContinuousTimeBlock(Block):
    def __init__(self, spec: BlockSpec, dropout: float):
        super().__init__()
        self.image_path = nn.Sequential(
            conv_features(spec.image_shape[0], dropout), nn.Linear(conv_feature_size(spec.image_shape), HIDDEN), nn.ReLU()
        )
        self.label_path = nn.Sequential(nn.Linear(spec.embedding_dim, HIDDEN), nn.ReLU())
        self.time_path = nn.Sequential(nn.Linear(TIME_EMBEDDING, HIDDEN), nn.ReLU())
        self.fusion = nn.Sequential(
            nn.Linear(3 * HIDDEN, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, spec.num_classes)
        )

    def encode_image(self, images: Tensor) -> Tensor:
        return self.image_path(images)

    def from_features(self, features: Tensor, z: Tensor, t: Tensor | None = None) -> Tensor:
        if t is None:
            raise ValueError("a continuous-time block needs the time t")
        t = t.expand(len(z)) if t.dim() == 0 else t
        parts = [features, self.label_path(z), self.time_path(sinusoidal_embedding(t))]
        return self.fusion(torch.cat(parts, dim=-1))


def build(config: CnnConfig, spec: BlockSpec) -> nn.Module:
    block_class = ContinuousTimeBlock if spec.time_conditioned else DiscreteTimeBlock
    return block_class(spec, config.dropout)


@hookimpl
def noprop_register_backbones(registry):
    registry.add("cnn", build, config=CnnConfig, description="the paper's Figure 6 block (DT and CT flavours)")
