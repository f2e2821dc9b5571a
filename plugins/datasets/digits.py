"""`digits`: scikit-learn's bundled 8×8 handwritten digits (1 797 images, no download).

The train/test split is fixed by ``split_seed`` (stratified), independent of the recipe's
seed, so every run of a recipe is scored on the same test images. Pixels (0..16) are scaled
to [0, 1] and standardised with the training set's mean and standard deviation.
"""

from __future__ import annotations

import attrs
import torch

from noprop_core import DatasetConfig, TensorSplits, at_least, between, hookimpl


@attrs.frozen(kw_only=True)
class DigitsConfig(DatasetConfig):
    test_fraction: float = attrs.field(default=0.2, validator=between(0.05, 0.95))
    split_seed: int = attrs.field(default=0, validator=at_least(0))


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
    )
    return splits.first(config.subset)


@hookimpl
def noprop_register_datasets(registry):
    registry.add("digits", load, config=DigitsConfig, description="scikit-learn 8×8 digits, bundled, no download")
