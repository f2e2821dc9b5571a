"""The torch part of the plugin in this folder (see its ``__init__``)."""

from __future__ import annotations

import torch

from noprop_core import NopropError, TensorSplits

from . import DigitsConfig


def load(config: DigitsConfig) -> TensorSplits:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    labels = torch.tensor(digits.target, dtype=torch.int64)
    train_index, test_index = train_test_split(
        range(len(labels)), test_size=config.test_fraction, random_state=config.split_seed, stratify=digits.target
    )
    if config.validation >= len(train_index):
        raise NopropError(
            f"data.validation: {config.validation} is not less than the {len(train_index)} training examples"
        )
    validation_index = train_index[len(train_index) - config.validation :] if config.validation else []
    train_index = train_index[: len(train_index) - config.validation]
    train_images, test_images = images[train_index], images[test_index]
    mean, std = train_images.mean(), train_images.std()
    validation = (
        ((images[validation_index] - mean) / std, labels[validation_index]) if config.validation else (None, None)
    )
    splits = TensorSplits(
        name="digits",
        train_images=(train_images - mean) / std,
        train_labels=labels[train_index],
        test_images=(test_images - mean) / std,
        test_labels=labels[test_index],
        num_classes=10,
        mean=(float(mean),),
        std=(float(std),),
        class_names=tuple(str(digit) for digit in range(10)),
        val_images=validation[0],
        val_labels=validation[1],
    )
    return splits.first(config.subset)
