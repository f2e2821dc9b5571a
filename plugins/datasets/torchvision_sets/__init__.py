"""`torchvision`: any torchvision classification data set by class name; `mnist`, `cifar10` and
`cifar100` are short names for it.

Images are scaled to [0, 1] and standardised per channel with the training split's own mean and
standard deviation (for MNIST that is the familiar 0.1307 / 0.3081). ``validation = N`` holds out
the last N training examples as a validation split; ``subset = N`` then keeps the first N of the
rest. Files live under ``<root>/<ClassName>/`` as torchvision lays them out, with root =
``data.root``, else $NOPROP_DATA, else ./data. No augmentation (as in the paper).
"""

from __future__ import annotations

import attrs

from noprop_core import CHANGEABLE_ON_RESUME, DatasetConfig, at_least, hookimpl

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
    download: bool = attrs.field(default=True, metadata=CHANGEABLE_ON_RESUME)
    validation: int = attrs.field(default=0, validator=at_least(0))

    def display_name(self) -> str:
        return self.dataset


@attrs.frozen(kw_only=True)
class ShortNameConfig(DatasetConfig):
    download: bool = attrs.field(default=True, metadata=CHANGEABLE_ON_RESUME)
    validation: int = attrs.field(default=0, validator=at_least(0))

    def paper_label(self) -> str | None:
        return {"mnist": "MNIST", "cifar10": "CIFAR-10", "cifar100": "CIFAR-100"}.get(self.name)


def load(config: TorchvisionConfig):
    from .loading import load as implementation  # torch: imported when the plugin is used

    return implementation(config)


def short_name_loader(short: str):
    def load_short(config: ShortNameConfig):
        from .loading import load_short as implementation  # torch: imported when the plugin is used

        return implementation(short, config)

    return load_short


@hookimpl
def noprop_register_datasets(registry) -> None:
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
