"""The plugin contract kit (noprop_core.testing) run on every first-party plugin it covers."""

from __future__ import annotations

from noprop_core.testing import BackboneContract, LabelEmbeddingContract, ScheduleContract


class TestCnn(BackboneContract):
    name = "cnn"


class TestResNet18(BackboneContract):
    name = "resnet18"
    image_shapes = [(1, 28, 28), (3, 32, 32), (3, 72, 72)]  # the last keeps torchvision's stem


class TestResNet50(BackboneContract):
    name = "resnet50"
    image_shapes = [(3, 32, 32)]
    batch = 2


class TestOneHot(LabelEmbeddingContract):
    name = "onehot"
    expected_dim = 10
    learnable = False


class TestLearnedOrthogonal(LabelEmbeddingContract):
    name = "learned"
    expected_dim = 20
    learnable = True


class TestLearnedRandomWithMoreClassesThanDimensions(LabelEmbeddingContract):
    name = "learned"
    config = {"dim": 4, "init": "random"}
    expected_dim = 4
    learnable = True


class TestPrototype(LabelEmbeddingContract):
    name = "prototype"
    expected_dim = 64
    learnable = True


class TestCosine(ScheduleContract):
    name = "cosine"


class TestLearnableGamma(ScheduleContract):
    name = "learnable_gamma"
