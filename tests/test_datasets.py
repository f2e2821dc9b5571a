"""Data set plugins on real data: scikit-learn's digits and the real MNIST files."""

from __future__ import annotations

import pytest
import torch

from noprop_core.errors import NopropError
from noprop_plugins.datasets.digits import DigitsConfig, load as load_digits
from noprop_plugins.datasets.torchvision_sets import ShortNameConfig, short_name_loader

load_mnist = short_name_loader("mnist")


def test_digits_split_is_fixed_stratified_and_normalised():
    splits = load_digits(DigitsConfig(name="digits"))
    again = load_digits(DigitsConfig(name="digits"))
    assert torch.equal(splits.test_labels, again.test_labels)
    assert len(splits.train_labels) + len(splits.test_labels) == 1797
    assert splits.image_shape == (1, 8, 8)
    assert splits.train_images.mean().abs() < 1e-4 and (splits.train_images.std() - 1).abs() < 1e-3
    counts = torch.bincount(splits.test_labels, minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37  # stratified: ~36 of each digit


def test_digits_subset_keeps_the_first_examples_and_the_whole_test_set():
    full = load_digits(DigitsConfig(name="digits"))
    small = load_digits(DigitsConfig(name="digits", subset=100))
    assert torch.equal(small.train_labels, full.train_labels[:100])
    assert torch.equal(small.test_labels, full.test_labels)


def test_mnist_loads_the_real_files_offline(mnist_root):
    splits = load_mnist(ShortNameConfig(name="mnist", root=str(mnist_root), download=True, subset=1000))
    assert splits.image_shape == (1, 28, 28)
    assert len(splits.train_labels) == 1000 and len(splits.test_labels) == 10_000
    assert torch.bincount(splits.test_labels).tolist()[:3] == [980, 1135, 1032]  # the known MNIST test counts
    assert splits.test_images.mean().abs() < 0.05


def test_missing_mnist_is_one_clear_error(tmp_path):
    with pytest.raises(NopropError, match=f"MNIST is not under {tmp_path}"):
        load_mnist(ShortNameConfig(name="mnist", root=str(tmp_path), download=False))
