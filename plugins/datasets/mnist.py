"""`mnist`: torchvision's MNIST loader (downloads by default; verifies md5 sums).

Files live under ``<root>/MNIST/raw``; root is ``data.root``, else $NOPROP_DATA, else ./data.
Pixels are scaled to [0, 1] and standardised with the usual MNIST mean 0.1307 and std 0.3081.
No augmentation (as in the paper).
"""

from __future__ import annotations

import attrs
import torch

from noprop_core.config import DatasetConfig
from noprop_core.data import TensorSplits, resolve_data_root
from noprop_core.errors import NopropError
from noprop_core.hookspecs import hookimpl

MEAN, STD = 0.1307, 0.3081


@attrs.frozen(kw_only=True)
class MnistConfig(DatasetConfig):
    download: bool = True


def _split(root, train: bool, download: bool):
    from torchvision.datasets import MNIST

    try:
        return MNIST(str(root), train=train, download=download)
    except (RuntimeError, OSError) as exc:
        raise NopropError(
            f"MNIST is not under {root}/MNIST/raw and could not be fetched ({exc}); put the four "
            f"original .gz files there, or set data.root or $NOPROP_DATA to a folder holding MNIST/raw"
        ) from None


def _tensors(dataset) -> tuple[torch.Tensor, torch.Tensor]:
    images = dataset.data.to(torch.float32).div_(255.0).sub_(MEAN).div_(STD).unsqueeze(1)
    return images, dataset.targets.to(torch.int64)


def load(config: MnistConfig) -> TensorSplits:
    root = resolve_data_root(config)
    train_images, train_labels = _tensors(_split(root, True, config.download))
    test_images, test_labels = _tensors(_split(root, False, config.download))
    splits = TensorSplits(
        name="mnist",
        train_images=train_images,
        train_labels=train_labels,
        test_images=test_images,
        test_labels=test_labels,
        num_classes=10,
    )
    return splits.first(config.subset)


@hookimpl
def noprop_register_datasets(registry):
    registry.add("mnist", load, config=MnistConfig, description="torchvision MNIST (28×28, 10 classes)")
