"""The torch part of the plugin in this folder (see its ``__init__``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from noprop_core import (
    TIME_EMBEDDING,
    TIME_SCALE,
    AdaLNZero,
    BlockSpec,
    Dropout,
    NopropError,
    TimeEmbedder,
    image_label_path,
    modulate,
    paper_block,
    refer_to,
    sinusoidal_embedding,
)

from . import ViTConfig


class TransformerLayer(nn.Module):
    """Pre-norm: multi-head self-attention (``scaled_dot_product_attention``, dropout on its
    weights) then an MLP, each around a residual connection."""

    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        width, hidden = config.width, config.mlp_ratio * config.width
        self.heads, self.attention_dropout = config.heads, config.attention_dropout
        self.attention_norm = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.attention_out = nn.Linear(width, width)
        self.mlp_norm = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), Dropout(config.dropout), nn.Linear(hidden, width))
        self.dropout = Dropout(config.dropout)

    def attend(self, x: Tensor) -> Tensor:  # (B, tokens, width)
        batch, tokens, width = x.shape
        q, k, v = self.qkv(x).view(batch, tokens, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        dropout = self.attention_dropout if self.training else 0.0
        attended = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout)
        return self.attention_out(attended.transpose(1, 2).reshape(batch, tokens, width))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.dropout(self.attend(self.attention_norm(x)))
        return x + self.dropout(self.mlp(self.mlp_norm(x)))


class DiTLayer(TransformerLayer):
    """A transformer layer conditioned on c by adaLN-Zero (DiT): shift and scale after each
    norm, a gate on each residual branch, all six from SiLU(Linear(c)) starting at zero, so
    the layer starts as the identity."""

    def __init__(self, config: ViTConfig, conditioning: int) -> None:
        super().__init__(config)
        self.modulation = AdaLNZero(conditioning, config.width, parts=6)

    def forward(self, x: Tensor, conditioning: Tensor) -> Tensor:  # type: ignore[override]
        shift_a, scale_a, gate_a, shift_m, scale_m, gate_m = self.modulation(conditioning)
        attended = self.attend(modulate(self.attention_norm(x), shift_a, scale_a))
        x = x + gate_a[:, None] * self.dropout(attended)
        return x + gate_m[:, None] * self.dropout(self.mlp(modulate(self.mlp_norm(x), shift_m, scale_m)))


def patch_count(image_shape: tuple[int, int, int], config: ViTConfig) -> int:
    _, height, width = image_shape
    patch = config.patch_size
    if height % patch or width % patch:
        raise NopropError(
            f"model.backbone.patch_size: {patch} does not divide the {height}×{width} images; choose a divisor of both"
        )
    if config.width % config.heads:
        raise NopropError(f"model.backbone.heads: {config.heads} does not divide width = {config.width}")
    return (height // patch) * (width // patch)


class ViTEncoder(nn.Module):
    def __init__(self, image_shape: tuple[int, int, int], config: ViTConfig, extra_tokens: int = 0) -> None:
        super().__init__()
        patches = patch_count(image_shape, config)
        self.embed = nn.Conv2d(image_shape[0], config.width, kernel_size=config.patch_size, stride=config.patch_size)
        # extra tokens ([CLS], the label) are placed before the patches and have positions too
        self.position = nn.Parameter(torch.randn(1, extra_tokens + patches, config.width) * 0.02)
        self.layers = nn.Sequential(*(TransformerLayer(config) for _ in range(config.depth)))
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


class DiTStem(nn.Module):
    """What DiffusionBlocks' reference ViT shares across its blocks: the patch and position
    embeddings, the time embedder, the final norm, and (when d ≠ width) the maps of z into the
    [CLS] slot and of [CLS] out to the block's outputs."""

    def __init__(self, spec: BlockSpec, config: ViTConfig) -> None:
        super().__init__()
        patches = patch_count(spec.image_shape, config)
        self.embed = nn.Conv2d(
            spec.image_shape[0], config.width, kernel_size=config.patch_size, stride=config.patch_size
        )
        self.position = nn.Parameter(torch.randn(1, 1 + patches, config.width) * 0.02)
        self.dropout = Dropout(config.dropout)
        conditioning = max(1, config.width // 6)  # the reference's cond_hidden_size
        # Under the variant's shared time embedder when there is one: its head's modulation reads it too.
        make_time = lambda: TimeEmbedder(conditioning)  # noqa: E731
        if spec.shared is not None:
            refer_to(self, "time", spec.shared.get_or_make(spec.shared.TIME, make_time))
        else:
            self.time = make_time()
        self.norm = nn.LayerNorm(config.width)
        same = spec.embedding_dim == config.width
        self.label_in = nn.Identity() if same else nn.Linear(spec.embedding_dim, config.width)
        self.label_out = nn.Identity() if spec.outputs == config.width else nn.Linear(config.width, spec.outputs)

    def tokens(self, images: Tensor, z: Tensor) -> Tensor:
        patches = self.embed(images).flatten(2).transpose(1, 2)
        return self.dropout(torch.cat([self.label_in(z)[:, None], patches], dim=1) + self.position)


class DiTBlock(nn.Module):
    """DiffusionBlocks' reference ViT block: its own adaLN-Zero layers between the shared stem's
    embeddings and final norm; the output is [CLS]'s final state (mapped to the outputs if needed)."""

    def __init__(self, spec: BlockSpec, config: ViTConfig) -> None:
        super().__init__()
        if not spec.time_conditioned:
            raise NopropError(
                "model.backbone.label_input: 'cls' conditions every layer on the time; the variant gives none"
            )
        if spec.shared is not None:
            refer_to(self, "stem", spec.shared.get_or_make("vit_stem", lambda: DiTStem(spec, config)))
        else:
            self.stem = DiTStem(spec, config)
        self.layers = nn.ModuleList(DiTLayer(config, self.stem.time.width) for _ in range(config.depth))

    def forward(self, images: Tensor, z: Tensor, t: Tensor | None = None) -> Tensor:
        assert t is not None  # time-conditioned, checked at construction
        t = t.expand(len(z)) if t.dim() == 0 else t
        conditioning = self.stem.time(TIME_SCALE * t)
        x = self.stem.tokens(images, z)
        for layer in self.layers:
            x = layer(x, conditioning)
        return self.stem.label_out(self.stem.norm(x)[:, 0])


def build(config: ViTConfig, spec: BlockSpec) -> nn.Module:
    if config.label_input == "token":
        return LabelTokenViT(spec, config)
    if config.label_input == "cls":
        return DiTBlock(spec, config)
    label_encoder, label_features = image_label_path(spec, config.dropout)
    return paper_block(spec, ViTEncoder(spec.image_shape, config), config.width, label_encoder, label_features)
