"""The backbone contract kit (noprop_core.testing) on every first-party backbone."""

from __future__ import annotations

import pytest

from conftest import REPO
from noprop_core.testing import BackboneContract


class TestCnn(BackboneContract):
    name = "cnn"


class TestResNet18(BackboneContract):
    name = "resnet18"
    image_shapes = [(1, 28, 28), (3, 32, 32), (3, 72, 72)]  # the last keeps torchvision's stem


class TestResNet50(BackboneContract):
    name = "resnet50"
    image_shapes = [(3, 32, 32)]
    batch = 2


class TestViT(BackboneContract):
    name = "vit"
    config = {"width": 32, "depth": 2, "heads": 4}
    image_shapes = [(1, 28, 28), (3, 32, 32), (1, 8, 8)]


@pytest.mark.slow
def test_vit_blocks_learn_the_digits(registry, tmp_path):
    """Far above chance (10 %) in a few short epochs: the ViT encoder trains inside the paper's block."""
    from noprop_core.cli.run import run

    overrides = ["variant.timesteps=3", "train.epochs=6", "tracker.name=none", "device=cpu"]
    metrics = run(REPO / "recipes" / "digits_dt_vit.toml", registry, overrides=overrides, out_dir=tmp_path / "run")[1]
    assert metrics["test_accuracy"] > 60, metrics["test_accuracy"]
