"""The backbone contract kit (noprop_core.testing) on every first-party backbone."""

from __future__ import annotations

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
