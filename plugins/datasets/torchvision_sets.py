"""`torchvision`: any torchvision classification data set by class name; `mnist`, `cifar10` and
`cifar100` are short names for it.

Images are scaled to [0, 1] and standardised per channel with the training split's own mean and
standard deviation (for MNIST that is the familiar 0.1307 / 0.3081). ``validation = N`` holds out
the last N training examples as a validation split; ``subset = N`` then keeps the first N of the
rest. Files live under ``<root>/<ClassName>/`` as torchvision lays them out, with root =
``data.root``, else $NOPROP_DATA, else ./data. No augmentation (as in the paper).
"""

from __future__ import annotations

import inspect
from pathlib import Path

import attrs
import numpy as np
import torch
from torch import Tensor

from noprop_core import (
    DatasetConfig,
    DataUnavailable,
    NopropError,
    TensorSplits,
    at_least,
    hookimpl,
    resolve_data_root,
    standardized_splits,
)

# (channels, height, width) and class count of data sets whose shape is known without their
# files: `noprop run --smoke` uses them to stand in synthetic data when the files are absent.
KNOWN_SHAPES: dict[str, tuple[tuple[int, int, int], int]] = {
    "MNIST": ((1, 28, 28), 10),
    "FashionMNIST": ((1, 28, 28), 10),
    "KMNIST": ((1, 28, 28), 10),
    "QMNIST": ((1, 28, 28), 10),
    "CIFAR10": ((3, 32, 32), 10),
    "CIFAR100": ((3, 32, 32), 100),
    "SVHN": ((3, 32, 32), 10),
    "STL10": ((3, 96, 96), 10),
}
SHORT_NAMES = {"mnist": "MNIST", "cifar10": "CIFAR10", "cifar100": "CIFAR100"}


@attrs.frozen(kw_only=True)
class TorchvisionConfig(DatasetConfig):
    dataset: str = attrs.field(validator=attrs.validators.instance_of(str))  # e.g. "FashionMNIST"
    download: bool = True
    validation: int = attrs.field(default=0, validator=at_least(0))


@attrs.frozen(kw_only=True)
class ShortNameConfig(DatasetConfig):
    download: bool = True
    validation: int = attrs.field(default=0, validator=at_least(0))


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
    train_images, train_labels = as_tensors(open_split(name, root, True, download))
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
    )
    return splits.first(config.subset)


def load(config: TorchvisionConfig) -> TensorSplits:
    return load_named(config.dataset, config, config.download, config.validation)


def short_name_loader(short: str):
    def load_short(config: ShortNameConfig) -> TensorSplits:
        return load_named(SHORT_NAMES[short], config, config.download, config.validation)

    return load_short


@hookimpl
def noprop_register_datasets(registry):
    registry.add(
        "torchvision",
        load,
        config=TorchvisionConfig,
        description="any torchvision classification set: dataset = 'SVHN'",
    )
    for short, name in SHORT_NAMES.items():
        shape, classes = KNOWN_SHAPES[name]
        size = "×".join(map(str, shape[1:]))
        registry.add(
            short,
            short_name_loader(short),
            config=ShortNameConfig,
            description=f"torchvision {name} ({size}, {classes} classes)",
        )
