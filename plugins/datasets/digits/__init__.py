"""`digits`: scikit-learn's bundled 8×8 handwritten digits (1 797 images, no download).

The train/test split is fixed by ``split_seed`` (stratified), independent of the recipe's
seed, so every run of a recipe is scored on the same test images. Pixels (0..16) are scaled
to [0, 1] and standardised with the training set's mean and standard deviation. ``validation = N``
holds out the last N training examples as a validation split (what a hyper-parameter sweep
chooses by; ``subset`` then keeps the first N of the rest).
"""

from __future__ import annotations

import attrs

from noprop_core import DatasetConfig, at_least, between, hookimpl


@attrs.frozen(kw_only=True)
class DigitsConfig(DatasetConfig):
    test_fraction: float = attrs.field(default=0.2, validator=between(0.05, 0.95))
    split_seed: int = attrs.field(default=0, validator=at_least(0))
    validation: int = attrs.field(default=0, validator=at_least(0))


def load(config: DigitsConfig):
    from .loading import load as implementation  # torch: imported when the plugin is used

    return implementation(config)


@hookimpl
def noprop_register_datasets(registry) -> None:
    registry.add("digits", load, config=DigitsConfig, description="scikit-learn 8×8 digits, bundled, no download")
