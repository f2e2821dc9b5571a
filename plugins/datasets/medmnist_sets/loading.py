"""The torch part of the plugin in this folder (see its ``__init__``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from noprop_core import (
    DataUnavailable,
    TensorSplits,
    resolve_data_root,
    standardized_splits,
)

from . import MedMnistConfig, medmnist_info


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
    names = medmnist_info()[config.flag]["label"]  # {"0": "basophil", …}
    splits = standardized_splits(
        config.flag, len(names), train, test, val, class_names=[names[str(index)] for index in range(len(names))]
    )
    return splits.first(config.subset)
