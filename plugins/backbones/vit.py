"""`vit`: a small vision transformer (Dosovitskiy et al. 2021) as the image encoder of a NoProp block.

The image is cut into square patches of ``patch_size`` pixels, each embedded linearly to
``width`` features, plus a learned position embedding; ``depth`` pre-norm transformer layers
(multi-head self-attention with ``heads`` heads, then an MLP of ``mlp_ratio`` × width with
GELU, each around a residual connection) follow, and the final layer norm's output is averaged
over the patches. The rest of the block — label path, time path, fusion, logits — is the
paper's Figure 6 block (``noprop_core.paper_block``), so every variant can use it.

Attention is written out with ``scaled_dot_product_attention`` rather than through
``nn.TransformerEncoderLayer``, whose inference fast path cannot run under ``vmap`` (stacked
DT training vmaps whole blocks). Under vmap on CPU, PyTorch runs the attention kernel block by
block (it warns so): the same result, without the batching speed-up.
"""

from __future__ import annotations

import attrs
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from noprop_core import (
    BackboneConfig,
    BlockSpec,
    Dropout,
    NopropError,
    at_least,
    between,
    hookimpl,
    image_label_path,
    paper_block,
)


@attrs.frozen(kw_only=True)
class ViTConfig(BackboneConfig):
    patch_size: int = attrs.field(default=4, validator=at_least(1))
    width: int = attrs.field(default=128, validator=at_least(1))
    depth: int = attrs.field(default=4, validator=at_least(1))
    heads: int = attrs.field(default=4, validator=at_least(1))
    mlp_ratio: int = attrs.field(default=2, validator=at_least(1))
    dropout: float = attrs.field(default=0.1, validator=between(0.0, 0.9))


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


@hookimpl
def noprop_register_backbones(registry):
    registry.add(
        "vit", build, config=ViTConfig, description="small vision transformer image encoder in the paper's block"
    )
