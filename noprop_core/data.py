"""In-memory data sets and batching by indexing (no per-batch collation, no workers)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import attrs
import torch
from torch import Tensor

from noprop_core.config import DatasetConfig

DATA_ROOT_ENV = "NOPROP_DATA"


def resolve_data_root(config: DatasetConfig) -> Path:
    """The recipe's ``data.root``, else $NOPROP_DATA, else ./data."""
    return Path(config.root or os.environ.get(DATA_ROOT_ENV) or "data").expanduser()


@attrs.frozen(kw_only=True)
class TensorSplits:
    """Normalised float images (N, C, H, W) and int64 labels for training and test."""

    name: str
    train_images: Tensor
    train_labels: Tensor
    test_images: Tensor
    test_labels: Tensor
    num_classes: int

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_images.shape[1:])  # type: ignore[return-value]

    def first(self, count: int) -> TensorSplits:
        """Keep the first ``count`` training examples (0 keeps all)."""
        if count <= 0 or count >= len(self.train_labels):
            return self
        return attrs.evolve(self, train_images=self.train_images[:count], train_labels=self.train_labels[:count])

    def to(self, device: torch.device) -> TensorSplits:
        return attrs.evolve(
            self,
            train_images=self.train_images.to(device),
            train_labels=self.train_labels.to(device),
            test_images=self.test_images.to(device),
            test_labels=self.test_labels.to(device),
        )


def batch_count(size: int, batch_size: int) -> int:
    full, rest = divmod(size, batch_size)
    return full + (rest > 1)


def shuffled_batches(
    images: Tensor, labels: Tensor, batch_size: int, generator: torch.Generator
) -> Iterator[tuple[Tensor, Tensor]]:
    """Minibatches in a fresh random order. A last batch of one example is skipped:
    batch norm cannot train on a single example."""
    order = torch.randperm(len(labels), generator=generator).to(labels.device)
    for start in range(0, len(order) - 1, batch_size):
        index = order[start : start + batch_size]
        yield images[index], labels[index]


def ordered_batches(images: Tensor, labels: Tensor, batch_size: int) -> Iterator[tuple[Tensor, Tensor]]:
    for start in range(0, len(labels), batch_size):
        yield images[start : start + batch_size], labels[start : start + batch_size]
