"""Synthetic data standing in for a data set whose files are absent (smoke runs only).

torchvision's ``FakeData`` of the missing set's image shape and class count, which the data set
plugin states through ``DataUnavailable``. Deterministic: FakeData seeds by index.
"""

from __future__ import annotations

import torch

from noprop_core.engine.training.data import standardized_splits
from noprop_core.model.splits import TensorSplits

# Enough for a smoke run: its training pass stops after a few minibatches and it evaluates on
# the first few test examples (noprop_core.engine.training.smoke).
STAND_IN_TRAIN_EXAMPLES = 64
STAND_IN_TEST_EXAMPLES = 32


def stand_in_splits(name: str, image_shape: tuple[int, int, int], num_classes: int) -> TensorSplits:
    """FakeData images shaped like the missing data set (deterministic: FakeData seeds by index).
    Labels cycle through the classes, so that every class is present (prototype embeddings
    need an image of each) whatever the class count."""
    from torchvision.datasets import FakeData
    from torchvision.transforms.functional import pil_to_tensor

    def tensors(size: int, offset: int) -> tuple[torch.Tensor, torch.Tensor]:
        fake = FakeData(size=size, image_size=image_shape, num_classes=num_classes, random_offset=offset)
        images = torch.stack([pil_to_tensor(image) for image, _ in fake]).float().div_(255.0)
        return images, torch.arange(size) % num_classes

    train_examples = max(STAND_IN_TRAIN_EXAMPLES, 4 * num_classes)
    return standardized_splits(name, num_classes, tensors(train_examples, 0), tensors(STAND_IN_TEST_EXAMPLES, 10**6))
