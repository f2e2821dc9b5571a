"""`medmnist`: any 2D MedMNIST data set (``flag = "bloodmnist"``, ``"pathmnist"``, …) at size
28, 64, 128 or 224, through the `medmnist` package, with its official train/val/test splits.

Files are the package's ``<flag>.npz`` (``<flag>_<size>.npz`` above 28 px) under
``<root>/medmnist``, root = ``data.root``, else $NOPROP_DATA, else ./data. Images are scaled to
[0, 1] and standardised per channel with the training split's statistics. Multi-label and
3D sets are refused (NoProp here predicts one class per image).
"""

from __future__ import annotations

from pathlib import Path

import attrs
import numpy as np
import torch

from noprop_core import (
    DatasetConfig,
    DataUnavailable,
    InvalidValue,
    TensorSplits,
    hookimpl,
    one_of,
    resolve_data_root,
    standardized_splits,
)

SIZES = (28, 64, 128, 224)


def medmnist_info() -> dict:
    from medmnist import INFO

    return INFO


def supported_flags() -> list[str]:
    return sorted(
        flag for flag, info in medmnist_info().items() if not flag.endswith("3d") and "multi-label" not in info["task"]
    )


def _check_flag(_instance, attribute, value) -> None:
    if value not in supported_flags():
        raise InvalidValue(
            attribute.name, f"expected a 2D single-label MedMNIST flag ({', '.join(supported_flags())}), got {value!r}"
        )


@attrs.frozen(kw_only=True)
class MedMnistConfig(DatasetConfig):
    flag: str = attrs.field(validator=_check_flag)
    size: int = attrs.field(default=28, validator=one_of(*SIZES))
    download: bool = True


def file_name(flag: str, size: int) -> str:
    return f"{flag}.npz" if size == 28 else f"{flag}_{size}.npz"


def open_split(config: MedMnistConfig, root: Path, split: str):
    import medmnist

    info = medmnist_info()[config.flag]
    cls = getattr(medmnist, info["python_class"])
    present = (root / file_name(config.flag, config.size)).is_file()
    try:
        if not present:
            if not config.download:
                raise RuntimeError("data.download is false")
            root.mkdir(parents=True, exist_ok=True)
        return cls(split=split, root=str(root), size=config.size, download=not present)
    except Exception as exc:  # noqa: BLE001 - medmnist wraps every download failure in RuntimeError
        shape = (info["n_channels"], config.size, config.size)
        reason = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        raise DataUnavailable(
            f"{file_name(config.flag, config.size)} is not in {root} and could not be fetched "
            f"({reason}); download it from https://zenodo.org/records/10519652 "
            f"or with medmnist on a machine with network, and put it there (or set data.root / $NOPROP_DATA)",
            shape,
            len(info["label"]),
        ) from None


def as_tensors(dataset) -> tuple[torch.Tensor, torch.Tensor]:
    # The arrays themselves (not len(dataset): medmnist asserts the official sample counts).
    images = torch.as_tensor(np.asarray(dataset.imgs))
    images = images.unsqueeze(1) if images.dim() == 3 else images.permute(0, 3, 1, 2)
    labels = torch.as_tensor(np.asarray(dataset.labels), dtype=torch.int64).reshape(-1)
    return images.contiguous().to(torch.float32).div_(255.0), labels


def load(config: MedMnistConfig) -> TensorSplits:
    root = resolve_data_root(config) / "medmnist"
    train, val, test = (as_tensors(open_split(config, root, split)) for split in ("train", "val", "test"))
    splits = standardized_splits(config.flag, len(medmnist_info()[config.flag]["label"]), train, test, val)
    return splits.first(config.subset)


@hookimpl
def noprop_register_datasets(registry):
    registry.add(
        "medmnist", load, config=MedMnistConfig, description="2D MedMNIST by flag, sizes 28–224, official splits"
    )
