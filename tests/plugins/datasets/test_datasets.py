"""Data set plugins on real data: scikit-learn's digits and the real MNIST files."""

from __future__ import annotations

import pytest
import torch

from conftest import REPO
from noprop_core.errors import NopropError
from noprop_plugins.datasets.digits import DigitsConfig
from noprop_plugins.datasets.digits import load as load_digits
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


# -- torchvision and MedMNIST loaders, on files written here in the libraries' real on-disk formats


def write_cifar10_batches(root, per_batch: int = 20) -> None:
    """The real CIFAR-10 python layout (pickled dicts, rows of 3072 uint8 in CHW order)."""
    import pickle

    import numpy as np

    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        labels = [int(v) for v in rng.integers(0, 10, per_batch)]
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        with open(folder / name, "wb") as handle:
            pickle.dump({"data": data, "labels": labels}, handle)
    with open(folder / "batches.meta", "wb") as handle:
        pickle.dump({"label_names": [f"class{i}" for i in range(10)]}, handle)


def test_cifar10_goes_through_torchvisions_own_loader(tmp_path, monkeypatch):
    from torchvision.datasets import CIFAR10

    from noprop_plugins.datasets.torchvision_sets import TorchvisionConfig, load

    write_cifar10_batches(tmp_path)
    # torchvision checks the md5 sums of the real CIFAR files, which synthetic files cannot match.
    monkeypatch.setattr(CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr("torchvision.datasets.cifar.check_integrity", lambda *args, **kwargs: True)
    splits = load(
        TorchvisionConfig(name="torchvision", dataset="CIFAR10", root=str(tmp_path), download=False, validation=10)
    )
    assert splits.image_shape == (3, 32, 32) and splits.num_classes <= 10
    assert len(splits.train_labels) == 90 and len(splits.val_labels) == 10 and len(splits.test_labels) == 20
    # Per-channel standardisation with the training split's statistics.
    assert torch.allclose(splits.train_images.mean((0, 2, 3)), torch.zeros(3), atol=1e-5)
    assert torch.allclose(splits.train_images.std((0, 2, 3)), torch.ones(3), atol=1e-3)
    # The first training image is row 0 of data_batch_1, reshaped CHW.
    raw = CIFAR10(str(tmp_path), train=True, download=False).data[0]  # (H, W, C) uint8
    channel0 = torch.as_tensor(raw[..., 0]).float()
    corr = torch.corrcoef(torch.stack([channel0.flatten(), splits.train_images[0, 0].flatten()]))[0, 1]
    assert corr > 0.999  # standardisation is affine per channel: the pixels are the same


def test_a_data_set_without_arrays_is_read_by_iterating_it(tmp_path, monkeypatch):
    import torchvision.datasets

    from noprop_plugins.datasets.torchvision_sets import TorchvisionConfig, load

    # torchvision's FakeData has no data arrays; a class with the usual (root, train, download) signature.
    class TinyFake(torchvision.datasets.FakeData):
        def __init__(self, root, train=True, download=False):
            super().__init__(
                size=12 if train else 6, image_size=(3, 10, 12), num_classes=4, random_offset=0 if train else 100
            )

    monkeypatch.setattr(torchvision.datasets, "TinyFake", TinyFake, raising=False)
    splits = load(TorchvisionConfig(name="torchvision", dataset="TinyFake", root=str(tmp_path)))
    assert splits.image_shape == (3, 10, 12) and len(splits.train_labels) == 12 and len(splits.test_labels) == 6


def test_unknown_torchvision_class_and_missing_files_are_one_line(tmp_path):
    from noprop_core.errors import DataUnavailable
    from noprop_plugins.datasets.torchvision_sets import TorchvisionConfig, load

    with pytest.raises(NopropError, match="torchvision has no data set class 'Nope'"):
        load(TorchvisionConfig(name="torchvision", dataset="Nope", root=str(tmp_path)))
    with pytest.raises(DataUnavailable, match=f"CIFAR100 is not under {tmp_path}") as caught:
        load(TorchvisionConfig(name="torchvision", dataset="CIFAR100", root=str(tmp_path), download=False))
    assert "\n" not in str(caught.value)
    assert (caught.value.image_shape, caught.value.num_classes) == ((3, 32, 32), 100)


def write_medmnist(root, flag: str, size: int, channels: int, classes: int, counts=(30, 10, 20)) -> None:
    """MedMNIST's own .npz layout: {split}_images (N, H, W[, C]) uint8 and {split}_labels (N, 1)."""
    import numpy as np

    rng = np.random.default_rng(1)
    arrays = {}
    for split, count in zip(("train", "val", "test"), counts):
        shape = (count, size, size) + ((channels,) if channels == 3 else ())
        arrays[f"{split}_images"] = rng.integers(0, 256, shape, dtype=np.uint8)
        arrays[f"{split}_labels"] = rng.integers(0, classes, (count, 1))
    root.mkdir(parents=True, exist_ok=True)
    name = f"{flag}.npz" if size == 28 else f"{flag}_{size}.npz"
    np.savez(root / name, **arrays)


@pytest.mark.parametrize(
    ("flag", "size", "channels", "classes"), [("bloodmnist", 28, 3, 8), ("pneumoniamnist", 64, 1, 2)]
)
def test_medmnist_uses_the_packages_loader_and_official_splits(tmp_path, flag, size, channels, classes):
    from noprop_plugins.datasets.medmnist_sets import MedMnistConfig, load

    write_medmnist(tmp_path / "medmnist", flag, size, channels, classes)
    splits = load(MedMnistConfig(name="medmnist", flag=flag, size=size, root=str(tmp_path), download=False))
    assert splits.image_shape == (channels, size, size) and splits.num_classes == classes
    assert (len(splits.train_labels), len(splits.val_labels), len(splits.test_labels)) == (30, 10, 20)
    assert splits.train_labels.dtype == torch.int64 and splits.train_labels.dim() == 1


def test_medmnist_problems_name_the_key_or_the_file(tmp_path, registry):
    from noprop_core.errors import DataUnavailable, RecipeError
    from noprop_core.recipe.loading import load_recipe
    from noprop_plugins.datasets.medmnist_sets import MedMnistConfig, load

    with pytest.raises(
        DataUnavailable, match=r"bloodmnist_64\.npz is not in .*medmnist and could not be fetched"
    ) as caught:
        load(MedMnistConfig(name="medmnist", flag="bloodmnist", size=64, root=str(tmp_path), download=False))
    assert (caught.value.image_shape, caught.value.num_classes) == ((3, 64, 64), 8)
    recipe = tmp_path / "r.toml"
    recipe.write_text(
        'extends = "%s"\n[data]\nflag = "chestmnist"\nsize = 30\n' % (REPO / "recipes" / "bloodmnist_dt.toml")
    )
    with pytest.raises(RecipeError) as caught:
        load_recipe(recipe, registry)
    assert "data.flag: expected a 2D single-label MedMNIST flag" in str(caught.value)
    assert "data.size: expected one of 28, 64, 128, 224, got 30" in str(caught.value)


def test_digits_holds_out_the_last_training_examples_as_validation():
    from noprop_core import NopropError, load_registry

    entry = load_registry(autoload=False).get("dataset", "digits")
    whole = entry.factory(entry.config(name="digits"))
    held = entry.factory(entry.config(name="digits", validation=287))
    assert not whole.has_validation and held.has_validation
    assert len(held.train_labels) == 1437 - 287 and len(held.val_labels) == 287
    assert torch.equal(held.test_labels, whole.test_labels)  # the test split does not move
    # The validation images are the last 287 of the training split, standardised by the rest's statistics.
    unit = whole.train_images * whole.std[0] + whole.mean[0]
    torch.testing.assert_close(held.val_images * held.std[0] + held.mean[0], unit[-287:], atol=1e-5, rtol=0)
    assert torch.equal(held.val_labels, whole.train_labels[-287:])
    assert held.mean != whole.mean
    with pytest.raises(NopropError, match="data.validation: 1437 is not less than the 1437 training examples"):
        entry.factory(entry.config(name="digits", validation=1437))
