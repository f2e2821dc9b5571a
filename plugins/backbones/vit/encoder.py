"""The torch part of the plugin in this folder (see its ``__init__``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from noprop_core import (
    BlockSpec,
    Dropout,
    NopropError,
    image_label_path,
    paper_block,
)

from . import ViTConfig


class TransformerLayer(nn.Module):
    def __init__(self, width: int, heads: int, mlp_ratio: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.attention_norm = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.attention_out = nn.Linear(width, width)
        self.mlp_norm = nn.LayerNorm(width)
        self.mlp = nn.Sequential(
            nn.Linear(width, mlp_ratio * width), nn.GELU(), Dropout(dropout), nn.Linear(mlp_ratio * width, width)
        )
        self.dropout = Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:  # (B, patches, width)
        batch, patches, width = x.shape
        q, k, v = self.qkv(self.attention_norm(x)).view(batch, patches, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        attended = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(batch, patches, width)
        x = x + self.dropout(self.attention_out(attended))
        return x + self.dropout(self.mlp(self.mlp_norm(x)))


class ViTEncoder(nn.Module):
    def __init__(self, image_shape: tuple[int, int, int], config: ViTConfig):
        super().__init__()
        channels, height, width = image_shape
        patch = config.patch_size
        if height % patch or width % patch:
            raise NopropError(
                f"model.backbone.patch_size: {patch} does not divide the {height}×{width} images; choose a divisor of both"
            )
        if config.width % config.heads:
            raise NopropError(f"model.backbone.heads: {config.heads} does not divide width = {config.width}")
        patches = (height // patch) * (width // patch)
        self.embed = nn.Conv2d(channels, config.width, kernel_size=patch, stride=patch)
        self.position = nn.Parameter(torch.randn(1, patches, config.width) * 0.02)
        self.layers = nn.Sequential(
            *(
                TransformerLayer(config.width, config.heads, config.mlp_ratio, config.dropout)
                for _ in range(config.depth)
            )
        )
        self.norm = nn.LayerNorm(config.width)

    def forward(self, images: Tensor) -> Tensor:
        x = self.embed(images).flatten(2).transpose(1, 2) + self.position  # (B, patches, width)
        return self.norm(self.layers(x)).mean(dim=1)


def build(config: ViTConfig, spec: BlockSpec) -> nn.Module:
    label_encoder, label_features = image_label_path(spec, config.dropout)
    return paper_block(spec, ViTEncoder(spec.image_shape, config), config.width, label_encoder, label_features)
