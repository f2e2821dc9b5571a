"""The torch part of the plugin in this folder (see its ``__init__``)."""

from __future__ import annotations

import torch

from noprop_core import TensorSplits

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
    train_images, test_images = images[train_index], images[test_index]
    mean, std = train_images.mean(), train_images.std()
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
    )
    return splits.first(config.subset)
