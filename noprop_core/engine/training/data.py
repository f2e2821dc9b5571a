"""In-memory data sets and their minibatches.

Splits that fit on the training device live there and are batched by indexing: no per-batch
collation, no worker processes, no copies. Larger ones stay in CPU memory ("host" placement)
and reach the device through a ``torch.utils.data.DataLoader``: each minibatch is gathered by
one indexing call (in worker processes if asked), pinned on CUDA, and copied asynchronously.
Both give the same minibatches in the same order for the same generator.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from noprop_core.model.splits import TensorSplits
from noprop_core.plugin.config import DatasetConfig

DATA_ROOT_ENV = "NOPROP_DATA"


def resolve_data_root(config: DatasetConfig) -> Path:
    """The recipe's ``data.root``, else $NOPROP_DATA, else ./data."""
    return Path(config.root or os.environ.get(DATA_ROOT_ENV) or "data").expanduser().absolute()


def channel_statistics(images: Tensor) -> tuple[Tensor, Tensor]:
    """Per-channel mean and standard deviation of (N, C, H, W) images, shaped (1, C, 1, 1)."""
    # One channel at a time: a float64 copy of CIFAR would take over a gigabyte.
    pairs = [torch.std_mean(images[:, channel]) for channel in range(images.shape[1])]
    std = torch.stack([pair[0] for pair in pairs]).clamp_min(1e-8)
    mean = torch.stack([pair[1] for pair in pairs])
    return mean.view(1, -1, 1, 1), std.view(1, -1, 1, 1)


def standardized_splits(
    name: str,
    num_classes: int,
    train: tuple[Tensor, Tensor],
    test: tuple[Tensor, Tensor],
    val: tuple[Tensor, Tensor] | None = None,
    class_names: list[str] | None = None,
) -> TensorSplits:
    """Images in [0, 1] standardised per channel with the *training* split's statistics."""
    mean, std = channel_statistics(train[0])
    val_images, val_labels = (None, None) if val is None else ((val[0] - mean) / std, val[1])
    return TensorSplits(
        name=name,
        train_images=(train[0] - mean) / std,
        train_labels=train[1],
        test_images=(test[0] - mean) / std,
        test_labels=test[1],
        num_classes=num_classes,
        val_images=val_images,
        val_labels=val_labels,
        mean=tuple(mean.flatten().tolist()),
        std=tuple(std.flatten().tolist()),
        class_names=tuple(str(c) for c in class_names) if class_names is not None else None,
    )


def resolve_placement(placement: str, splits: TensorSplits, device: torch.device) -> str:
    """``"device"`` or ``"host"``; ``"auto"`` is the device when the splits fit in half of its
    free memory (on a CPU the device is the host memory: always ``"device"``)."""
    if placement != "auto":
        return placement
    if device.type != "cuda":
        return "device"
    free, _total = torch.cuda.mem_get_info(device)
    size = sum(t.numel() * t.element_size() for t in splits.tensors().values())
    return "device" if size <= free // 2 else "host"


def batch_count(size: int, batch_size: int) -> int:
    full, rest = divmod(size, batch_size)
    return full + (rest > 1)


def shuffled_batches(
    images: Tensor, labels: Tensor, batch_size: int, generator: torch.Generator
) -> Iterator[tuple[Tensor, Tensor]]:
    """Minibatches in a fresh random order. A last batch of one example is skipped:
    batch norm cannot train on a single example."""
    for index in _shuffled_indices(len(labels), batch_size, generator, labels.device):
        yield images[index], labels[index]


def _shuffled_indices(
    size: int, batch_size: int, generator: torch.Generator, device: torch.device | str
) -> list[Tensor]:
    order = torch.randperm(size, generator=generator).to(device)
    return [order[start : start + batch_size] for start in range(0, size - 1, batch_size)]


class _IndexedTensors(Dataset[tuple[Tensor, Tensor]]):
    """Images and labels that a DataLoader gathers a whole minibatch of in one indexing call."""

    def __init__(self, images: Tensor, labels: Tensor) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitems__(self, index: Tensor) -> tuple[Tensor, Tensor]:
        return self.images[index], self.labels[index]


def _as_gathered(batch: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
    return batch  # __getitems__ already made the minibatch: nothing to collate


def loaded_batches(
    images: Tensor, labels: Tensor, batch_size: int, generator: torch.Generator, device: torch.device, workers: int
) -> Iterator[tuple[Tensor, Tensor]]:
    """``shuffled_batches`` for splits kept in CPU memory: the same minibatches in the same
    order, gathered by a DataLoader and copied to ``device``."""
    loader = DataLoader(
        _IndexedTensors(images, labels),
        batch_sampler=_shuffled_indices(len(labels), batch_size, generator, "cpu"),  # type: ignore[arg-type]  # index tensors
        collate_fn=_as_gathered,  # type: ignore[arg-type]  # __getitems__ returns the whole minibatch
        num_workers=workers,
        pin_memory=device.type == "cuda",
    )
    for batch_images, batch_labels in loader:
        yield batch_images.to(device, non_blocking=True), batch_labels.to(device, non_blocking=True)


def ordered_batches(images: Tensor, labels: Tensor, batch_size: int) -> Iterator[tuple[Tensor, Tensor]]:
    for start in range(0, len(labels), batch_size):
        yield images[start : start + batch_size], labels[start : start + batch_size]
