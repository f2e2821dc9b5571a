"""The mixer passes noprop's backbone contract, and its own checks."""

from __future__ import annotations

import pytest
from noprop_mlp_mixer import MixerConfig, build

from noprop_core import BlockSpec, NopropError
from noprop_core.testing import BackboneContract


class TestMixerContract(BackboneContract):
    # Found through the entry point this package declares: the test fails if it is not installed.
    name = "mlp_mixer"
    config = {"patch_size": 4, "width": 32}


def test_registered_by_this_distribution():
    from noprop_core import load_registry

    entry = load_registry().get("backbone", "mlp_mixer")
    assert entry.source.distribution == "noprop-mlp-mixer"


def test_a_patch_size_that_does_not_divide_the_image_names_the_key():
    with pytest.raises(NopropError, match=r"model\.backbone\.patch_size: 5 does not divide the 28×28 images"):
        build(
            MixerConfig(name="mlp_mixer", patch_size=5),
            BlockSpec(image_shape=(1, 28, 28), embedding_dim=10, num_classes=10),
        )
