"""The torch part of the plugin in this folder (see its ``__init__``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from noprop_core import (
    TIME_EMBEDDING,
    BlockSpec,
    Dropout,
    NopropError,
    image_label_path,
    paper_block,
    sinusoidal_embedding,
)

from . import ViTConfig


class TransformerLayer(nn.Module):
    def __init__(self, width: int, heads: int, mlp_ratio: int, dropout: float) -> None:
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
    def __init__(self, image_shape: tuple[int, int, int], config: ViTConfig, extra_tokens: int = 0) -> None:
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
        # extra tokens ([CLS], the label) are placed before the patches and have positions too
        self.position = nn.Parameter(torch.randn(1, extra_tokens + patches, config.width) * 0.02)
        self.layers = nn.Sequential(
            *(
                TransformerLayer(config.width, config.heads, config.mlp_ratio, config.dropout)
                for _ in range(config.depth)
            )
        )
        self.norm = nn.LayerNorm(config.width)

    def tokens(self, images: Tensor, extra: Tensor | None = None) -> Tensor:
        """The final layer norm's output for every token: ``extra`` (B, k, width) then the patches."""
        x = self.embed(images).flatten(2).transpose(1, 2)  # (B, patches, width)
        if extra is not None:
            x = torch.cat([extra, x], dim=1)
        return self.norm(self.layers(x + self.position))

    def forward(self, images: Tensor) -> Tensor:
        return self.tokens(images).mean(dim=1)


class LabelTokenViT(nn.Module):
    """The ViT as the whole block: [CLS], the noisy label's token (plus t's embedding) and the
    patches; the block's output is a linear map of [CLS]'s final state. Not a ``Block``: the
    image's tokens attend to the label's, so the image cannot be encoded once for many z."""

    def __init__(self, spec: BlockSpec, config: ViTConfig) -> None:
        super().__init__()
        self.encoder = ViTEncoder(spec.image_shape, config, extra_tokens=2)
        self.cls = nn.Parameter(torch.zeros(1, 1, config.width))
        self.label = nn.Linear(spec.embedding_dim, config.width)
        self.time = nn.Linear(TIME_EMBEDDING, config.width) if spec.time_conditioned else None
        self.out = nn.Linear(config.width, spec.outputs)

    def forward(self, images: Tensor, z: Tensor, t: Tensor | None = None) -> Tensor:
        label = self.label(z)
        if self.time is not None:
            if t is None:
                raise ValueError("a continuous-time block needs the time t")
            t = t.expand(len(z)) if t.dim() == 0 else t
            label = label + self.time(sinusoidal_embedding(t))
        extra = torch.cat([self.cls.expand(len(z), -1, -1), label[:, None]], dim=1)
        return self.out(self.encoder.tokens(images, extra)[:, 0])


def build(config: ViTConfig, spec: BlockSpec) -> nn.Module:
    if config.label_token:
        return LabelTokenViT(spec, config)
    label_encoder, label_features = image_label_path(spec, config.dropout)
    return paper_block(spec, ViTEncoder(spec.image_shape, config), config.width, label_encoder, label_features)
