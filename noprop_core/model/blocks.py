"""What a backbone factory is told about the block it must build, and the block contract."""

from __future__ import annotations

from collections.abc import Callable

import attrs
from torch import Tensor, nn


class SharedParts(nn.ModuleDict):
    """Parts several blocks of one variant share (a ViT's patch embedding, final norm and time
    embedder, as DiffusionBlocks' reference shares them): made by the first block that asks,
    held here by the variant, so trained as shared parameters on every step (as the head is).
    A block keeps a reference that is not a submodule (``refer_to``): its own parameters stay
    its own."""

    TIME = "time"  # a time embedder the blocks share, which the variant may read as well

    def get_or_make(self, name: str, make: Callable[[], nn.Module]) -> nn.Module:
        if name not in self:
            self[name] = make()
        return self[name]


def refer_to(owner: nn.Module, name: str, part: nn.Module) -> None:
    """``owner.<name>`` is ``part`` without making it a submodule of ``owner`` (no parameters or
    state_dict entries of its own: the part belongs to whoever registered it)."""
    object.__setattr__(owner, name, part)


@attrs.frozen(kw_only=True)
class BlockSpec:
    image_shape: tuple[int, int, int]  # (channels, height, width)
    embedding_dim: int
    num_classes: int
    time_conditioned: bool = False  # continuous-time variants pass t as a third input
    # Width of the block's output: 0 (default) for one logit per class; the embedding dimension
    # d for a block that predicts a vector of embedding space (the noise ε̂, a denoiser's output),
    # which must be free to lie anywhere in ℝ^d.
    output_dim: int = 0
    # Where blocks of this variant find the parts they share (None: they share none).
    shared: SharedParts | None = attrs.field(default=None, eq=False, repr=False)

    @property
    def outputs(self) -> int:
        """How many values the block returns per example: ``output_dim``, else ``num_classes``."""
        return self.output_dim or self.num_classes


class Block(nn.Module):
    """A block whose image path can run once per batch.

    ``forward(images, z, t)`` equals ``from_features(encode_image(images), z, t)``. Samplers
    that call a block hundreds of times on the same images (CT, FM, the adjoint ODE) encode the
    images once. A backbone may return any nn.Module with ``forward(images, z, t=None)``;
    subclassing Block only makes such samplers faster.
    """

    def encode_image(self, images: Tensor) -> Tensor:
        raise NotImplementedError

    def image_module(self) -> nn.Module | None:
        """The submodule ``encode_image`` runs, when it is one (stacked training may then run the
        T blocks' copies as one grouped network); None otherwise."""
        return None

    def from_features(self, features: Tensor, z: Tensor, t: Tensor | None = None) -> Tensor:
        raise NotImplementedError

    def forward(self, images: Tensor, z: Tensor, t: Tensor | None = None) -> Tensor:
        return self.from_features(self.encode_image(images), z, t)


class ImageConditioned:
    """``logits(z, t)`` of a block for fixed images, encoding them only once when the block
    allows it (``features`` then holds the encoded images, else it is None)."""

    def __init__(self, block: nn.Module, images: Tensor) -> None:
        self.block = block
        self.images = images
        self.features = block.encode_image(images) if isinstance(block, Block) else None

    def __call__(self, z: Tensor, t: Tensor | None = None) -> Tensor:
        if self.features is not None and isinstance(self.block, Block):
            return self.block.from_features(self.features, z, t)
        return self.block(self.images, z, t)
