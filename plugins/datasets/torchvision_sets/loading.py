"""The torch part of the plugin in this folder (see its ``__init__``)."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from noprop_core import (
    DatasetConfig,
    DataUnavailable,
    NopropError,
    TensorSplits,
    resolve_data_root,
    standardized_splits,
)

from . import KNOWN_SHAPES, SHORT_NAMES, ShortNameConfig, TorchvisionConfig


def dataset_class(name: str):
    import torchvision.datasets

    candidate = getattr(torchvision.datasets, name, None)
    if not (inspect.isclass(candidate) and issubclass(candidate, torch.utils.data.Dataset)):
        raise NopropError(f"data.dataset: torchvision has no data set class {name!r} (e.g. 'MNIST', 'CIFAR10', 'SVHN')")
    return candidate


def open_split(name: str, root: Path, train: bool, download: bool):
    cls = dataset_class(name)
    parameters = inspect.signature(cls).parameters
    split = {"train": train} if "train" in parameters else {"split": "train" if train else "test"}
    try:
        return cls(str(root), download=download, **split)
    except (RuntimeError, OSError) as exc:  # torchvision raises RuntimeError for missing files
        shape = KNOWN_SHAPES.get(name, (None, None))
        raise DataUnavailable(
            f"{name} is not under {root} and could not be fetched ({str(exc).strip().splitlines()[0]}); "
            f"download it with torchvision.datasets.{name}(root, download=True) on a machine with network, "
            f"then set data.root or $NOPROP_DATA to that root",
            *shape,
        ) from None


def as_tensors(dataset) -> tuple[Tensor, Tensor]:
    """uint8-backed data sets by their arrays; any other by iterating it once."""
    data = getattr(dataset, "data", None)
    labels = getattr(dataset, "targets", getattr(dataset, "labels", None))
    if data is not None and labels is not None and len(data) == len(labels):
        images = torch.as_tensor(np.asarray(data))
        if images.dim() == 3:  # (N, H, W), grey
            images = images.unsqueeze(1)
        elif images.shape[-1] in (1, 3) and images.shape[1] not in (1, 3):  # (N, H, W, C)
            images = images.permute(0, 3, 1, 2)
        return images.contiguous(), torch.as_tensor(np.asarray(labels), dtype=torch.int64)
    from torchvision.transforms.functional import pil_to_tensor

    pairs = [(pil_to_tensor(image), int(label)) for image, label in dataset]
    return torch.stack([p[0] for p in pairs]), torch.tensor([p[1] for p in pairs], dtype=torch.int64)


def to_unit_range(images: Tensor) -> Tensor:
    return images.to(torch.float32).div_(255.0) if images.dtype == torch.uint8 else images.to(torch.float32)


def load_named(name: str, config: DatasetConfig, download: bool, validation: int) -> TensorSplits:
    root = resolve_data_root(config)
    train_set = open_split(name, root, True, download)
    train_images, train_labels = as_tensors(train_set)
    classes = getattr(train_set, "classes", None)
    test_images, test_labels = as_tensors(open_split(name, root, False, download))
    num_classes = int(max(train_labels.max(), test_labels.max())) + 1
    if validation >= len(train_labels):
        raise NopropError(f"data.validation: {validation} is not less than the {len(train_labels)} training examples")
    val = None
    if validation:
        val = (to_unit_range(train_images[-validation:]), train_labels[-validation:])
        train_images, train_labels = train_images[:-validation], train_labels[:-validation]
    splits = standardized_splits(
        name.lower(),
        num_classes,
        (to_unit_range(train_images), train_labels),
        (to_unit_range(test_images), test_labels),
        val,
        class_names=list(classes) if classes is not None and len(classes) == num_classes else None,
    )
    return splits.first(config.subset)


def load(config: TorchvisionConfig) -> TensorSplits:
    return load_named(config.dataset, config, config.download, config.validation)


def load_short(short: str, config: ShortNameConfig) -> TensorSplits:
    return load_named(SHORT_NAMES[short], config, config.download, config.validation)
