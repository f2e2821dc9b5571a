"""`medmnist`: any 2D MedMNIST data set (``flag = "bloodmnist"``, ``"pathmnist"``, …) at size
28, 64, 128 or 224, through the `medmnist` package, with its official train/val/test splits.

Files are the package's ``<flag>.npz`` (``<flag>_<size>.npz`` above 28 px) under
``<root>/medmnist``, root = ``data.root``, else $NOPROP_DATA, else ./data. Images are scaled to
[0, 1] and standardised per channel with the training split's statistics. Multi-label and
3D sets are refused (NoProp here predicts one class per image).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import attrs

from noprop_core import CHANGEABLE_ON_RESUME, DatasetConfig, InvalidValue, hookimpl, one_of

SIZES = (28, 64, 128, 224)


def medmnist_info() -> dict:
    """medmnist's table of data sets, read from its ``info`` module without importing the package
    (whose ``__init__`` imports torch): ``noprop validate`` stays light."""
    spec = importlib.util.find_spec("medmnist")
    if spec is None or not spec.submodule_search_locations:
        raise InvalidValue("flag", "the medmnist package is not installed (pip install medmnist)")
    info_file = Path(spec.submodule_search_locations[0]) / "info.py"
    info_spec = importlib.util.spec_from_file_location("_noprop_medmnist_info", info_file)
    if info_spec is None or info_spec.loader is None:
        raise InvalidValue("flag", f"cannot read {info_file} (the medmnist package looks broken)")
    module = importlib.util.module_from_spec(info_spec)
    info_spec.loader.exec_module(module)
    return module.INFO


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
    download: bool = attrs.field(default=True, metadata=CHANGEABLE_ON_RESUME)

    def display_name(self) -> str:
        return self.flag


def load(config: MedMnistConfig):
    from .loading import load as implementation  # torch: imported when the plugin is used

    return implementation(config)


@hookimpl
def noprop_register_datasets(registry) -> None:
    registry.add(
        "medmnist", load, config=MedMnistConfig, description="2D MedMNIST by flag, sizes 28–224, official splits"
    )
