"""What a dataset plugin returns: the splits as tensors in memory (the dataset contract)."""

from __future__ import annotations

from typing import Any

import attrs
import torch
from torch import Tensor


@attrs.frozen(kw_only=True)
class TensorSplits:
    """Normalised float images (N, C, H, W) and int64 labels for training, test and, optionally,
    validation (evaluated with the test split, reported as ``validation_accuracy``)."""

    name: str
    train_images: Tensor
    train_labels: Tensor
    test_images: Tensor
    test_labels: Tensor
    num_classes: int
    val_images: Tensor | None = None
    val_labels: Tensor | None = None
    # What inference on new images needs (noprop_core.inference): the standardisation applied
    # to images in [0, 1], per channel, and the classes' names where the data set has them.
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    class_names: tuple[str, ...] | None = None

    @property
    def has_validation(self) -> bool:
        return self.val_labels is not None and len(self.val_labels) > 0

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_images.shape[1:])  # type: ignore[return-value]

    def first(self, count: int) -> TensorSplits:
        """Keep the first ``count`` training examples (0 keeps all)."""
        if count <= 0 or count >= len(self.train_labels):
            return self
        return attrs.evolve(self, train_images=self.train_images[:count], train_labels=self.train_labels[:count])

    def first_test(self, count: int) -> TensorSplits:
        """Keep the first ``count`` test examples (0 keeps all)."""
        if count <= 0 or count >= len(self.test_labels):
            return self
        return attrs.evolve(self, test_images=self.test_images[:count], test_labels=self.test_labels[:count])

    def tensors(self) -> dict[str, Tensor]:
        """Every split's images and labels by field name (absent validation splits left out)."""
        fields = attrs.fields(TensorSplits)
        return {f.name: getattr(self, f.name) for f in fields if isinstance(getattr(self, f.name), Tensor)}

    def to(self, device: torch.device) -> TensorSplits:
        moved: dict[str, Any] = {name: tensor.to(device) for name, tensor in self.tensors().items()}
        return attrs.evolve(self, **moved)
