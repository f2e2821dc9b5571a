"""Training-time data augmentation (``[data] augment``), with torchvision.transforms.v2 on tensors.

The splits hold standardised images on the training device; a minibatch is mapped back to
[0, 1], each image transformed on its own (its own flip, crop offset, RandAugment operations),
and standardised again, all on the device the batch is on. The global torch generator draws
the choices, so a checkpoint (which keeps that generator's state) resumes the same draws.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from noprop_core.model.splits import TensorSplits

PADDING = 4  # the crop's zero padding, as in the usual CIFAR recipe


def _transform(name: str, size: tuple[int, int]) -> Any:
    from torchvision.transforms import v2  # only when a recipe augments

    if name == "hflip":
        return v2.RandomHorizontalFlip(p=0.5)
    if name == "crop":
        return v2.RandomCrop(size, padding=PADDING)
    if name == "randaugment":
        return v2.RandAugment(num_ops=2, magnitude=9)
    raise ValueError(f"unknown augmentation {name!r}")


class Augmentation:
    """Maps a standardised minibatch (B, C, H, W) to an augmented one of the same shape."""

    def __init__(
        self, names: list[str], mean: tuple[float, ...], std: tuple[float, ...], size: tuple[int, int]
    ) -> None:
        self.names = list(names)
        from torchvision.transforms import v2

        self.pipeline = v2.Compose([_transform(name, size) for name in names])
        self.mean = torch.tensor(mean).view(1, -1, 1, 1)
        self.std = torch.tensor(std).view(1, -1, 1, 1)

    def __call__(self, images: Tensor) -> Tensor:
        mean, std = self.mean.to(images.device), self.std.to(images.device)
        unit = (images * std + mean).clamp(0, 1)
        augmented = torch.stack([self.pipeline(image) for image in unit])
        return (augmented - mean) / std


def augmentation_for(names: list[str], splits: TensorSplits) -> Augmentation | None:
    """The recipe's augmentation for these splits, or None when it names none."""
    if not names:
        return None
    mean = splits.mean or (0.0,) * splits.image_shape[0]
    std = splits.std or (1.0,) * splits.image_shape[0]
    _, height, width = splits.image_shape
    return Augmentation(names, mean, std, (height, width))
