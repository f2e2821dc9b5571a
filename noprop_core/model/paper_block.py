"""The paper's block around any image encoder (Figure 6): label path, time path, fusion, logits.

A backbone plugin supplies the *image encoder* (images → features) and, optionally, a *label
encoder* for embeddings that are images themselves (prototypes); ``paper_block`` adds the
rest exactly as in Figure 6, in the discrete-time flavour (batch norm, residual label path) or
the continuous-time one (time path, no batch norm). Backbones built this way share one
definition of everything but the encoder, so their results differ only where the encoders do.

``conv_encoder`` is the figure's convolutional image path; ``image_label_path`` gives the
same path for image-shaped label embeddings, as any backbone may use for prototypes.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from noprop_core.errors import NopropError
from noprop_core.model.blocks import Block, BlockSpec
from noprop_core.model.dropout import Dropout
from noprop_core.model.max_pool import MaxPool2x2

HIDDEN = 256
TIME_EMBEDDING = 64
TIME_SCALE = 1000.0  # t ∈ [0, 1] enters the sinusoid as TIME_SCALE · t


def sinusoidal_embedding(t: Tensor, dim: int = TIME_EMBEDDING) -> Tensor:
    """Transformer-style positional embedding of t ∈ [0, 1] (scaled to [0, 1000])."""
    half = dim // 2
    frequencies = torch.exp(-math.log(10_000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = TIME_SCALE * t.float()[:, None] * frequencies[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


def is_image_embedding(spec: BlockSpec) -> bool:
    """Prototype embeddings live in pixel space: d = C·H·W (Figure 6 caption)."""
    return spec.embedding_dim == math.prod(spec.image_shape)


class ReshapeToImage(nn.Module):
    """(B, C·H·W) → (B, C, H, W), so an image-shaped label can go through convolutions."""

    def __init__(self, image_shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.image_shape = tuple(image_shape)

    def forward(self, z: Tensor) -> Tensor:
        return z.reshape(len(z), *self.image_shape)


def conv_encoder(channels: int, dropout: float) -> nn.Sequential:
    """Figure 6's image path: conv32–ReLU–maxpool–drop, conv64–ReLU–drop, conv128–ReLU–maxpool–drop,
    flatten. Convolutions are 3×3 with padding 1 (the figure gives no padding; this keeps 28 px → 7 px)."""
    return nn.Sequential(
        nn.Conv2d(channels, 32, 3, padding=1),
        nn.ReLU(),
        MaxPool2x2(),
        Dropout(dropout),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.ReLU(),
        Dropout(dropout),
        nn.Conv2d(64, 128, 3, padding=1),
        nn.ReLU(),
        MaxPool2x2(),
        Dropout(dropout),
        nn.Flatten(),
    )


def conv_feature_size(image_shape: tuple[int, int, int]) -> int:
    """How many features ``conv_encoder`` gives for images of this shape (at least 4×4 pixels)."""
    _, height, width = image_shape
    if height < 4 or width < 4:
        raise NopropError(f"the paper's conv encoder needs images of at least 4×4 pixels, got {height}×{width}")
    return 128 * (height // 4) * (width // 4)


def image_label_path(spec: BlockSpec, dropout: float) -> tuple[nn.Module | None, int | None]:
    """A conv path for image-shaped embeddings (prototypes): the label reshaped to an image
    and encoded by its own ``conv_encoder``; (None, None) for other embeddings."""
    if not is_image_embedding(spec):
        return None, None
    encoder = nn.Sequential(ReshapeToImage(spec.image_shape), conv_encoder(spec.image_shape[0], dropout))
    return encoder, conv_feature_size(spec.image_shape)


class DiscreteTimeBlock(Block):
    """Figure 6 left. Image path: encoder → FC256–BN. Label path: FC256–BN–ReLU plus the residual
    [FC256–BN–ReLU–FC256–BN]; an image-shaped label (with a label encoder) instead goes the image's
    way, encoder → FC256–BN (the caption: "processed in the same way"). Concat → FC256–BN–ReLU →
    FC128–BN–ReLU → FC(m) (FC(d) for a block of ``spec.output_dim``)."""

    def __init__(
        self,
        spec: BlockSpec,
        image_encoder: nn.Module,
        image_features: int,
        label_encoder: nn.Module | None = None,
        label_features: int | None = None,
    ) -> None:
        super().__init__()
        self.image_path = nn.Sequential(image_encoder, nn.Linear(image_features, HIDDEN), nn.BatchNorm1d(HIDDEN))
        self.label_residual: nn.Module | None
        if label_encoder is not None:
            self.label_in = nn.Sequential(
                label_encoder, nn.Linear(label_features or spec.embedding_dim, HIDDEN), nn.BatchNorm1d(HIDDEN)
            )
            self.label_residual = None
        else:
            self.label_in = nn.Sequential(nn.Linear(spec.embedding_dim, HIDDEN), nn.BatchNorm1d(HIDDEN), nn.ReLU())
            self.label_residual = nn.Sequential(
                nn.Linear(HIDDEN, HIDDEN),
                nn.BatchNorm1d(HIDDEN),
                nn.ReLU(),
                nn.Linear(HIDDEN, HIDDEN),
                nn.BatchNorm1d(HIDDEN),
            )
        self.fusion = nn.Sequential(
            nn.Linear(2 * HIDDEN, 256),
            nn.BatchNorm1d(256),
            nn.ReLU(),
            nn.Linear(256, 128),
            nn.BatchNorm1d(128),
            nn.ReLU(),
            nn.Linear(128, spec.outputs),
        )

    def encode_image(self, images: Tensor) -> Tensor:
        return self.image_path(images)

    def image_module(self) -> nn.Module:
        return self.image_path

    def from_features(self, features: Tensor, z: Tensor, t: Tensor | None = None) -> Tensor:
        label = self.label_in(z)
        if self.label_residual is not None:
            label = label + self.label_residual(label)
        return self.fusion(torch.cat([features, label], dim=-1))


class ContinuousTimeBlock(Block):
    """Figure 6 right. Image path: encoder → FC256–ReLU; label path: [label encoder →] FC256–ReLU;
    time path: sinusoidal embedding (64) → FC256–ReLU. Concat → FC256–ReLU → FC128–ReLU → FC(m).
    No batch norm."""

    def __init__(
        self,
        spec: BlockSpec,
        image_encoder: nn.Module,
        image_features: int,
        label_encoder: nn.Module | None = None,
        label_features: int | None = None,
    ) -> None:
        super().__init__()
        self.image_path = nn.Sequential(image_encoder, nn.Linear(image_features, HIDDEN), nn.ReLU())
        label_encoder = label_encoder or nn.Identity()
        self.label_path = nn.Sequential(
            label_encoder, nn.Linear(label_features or spec.embedding_dim, HIDDEN), nn.ReLU()
        )
        self.time_path = nn.Sequential(nn.Linear(TIME_EMBEDDING, HIDDEN), nn.ReLU())
        self.fusion = nn.Sequential(
            nn.Linear(3 * HIDDEN, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, spec.outputs)
        )

    def encode_image(self, images: Tensor) -> Tensor:
        return self.image_path(images)

    def image_module(self) -> nn.Module:
        return self.image_path

    def from_features(self, features: Tensor, z: Tensor, t: Tensor | None = None) -> Tensor:
        if t is None:
            raise ValueError("a continuous-time block needs the time t")
        t = t.expand(len(z)) if t.dim() == 0 else t
        parts = [features, self.label_path(z), self.time_path(sinusoidal_embedding(t))]
        return self.fusion(torch.cat(parts, dim=-1))


def paper_block(
    spec: BlockSpec,
    image_encoder: nn.Module,
    image_features: int,
    label_encoder: nn.Module | None = None,
    label_features: int | None = None,
) -> Block:
    """The Figure 6 block of ``spec``'s flavour around the given encoders.

    ``image_encoder`` maps (B, C, H, W) to (B, image_features). ``label_encoder`` (optional)
    maps noisy labels (B, d) to (B, label_features); without it the label path starts with a
    linear layer on z.
    """
    block_class = ContinuousTimeBlock if spec.time_conditioned else DiscreteTimeBlock
    return block_class(spec, image_encoder, image_features, label_encoder, label_features)
