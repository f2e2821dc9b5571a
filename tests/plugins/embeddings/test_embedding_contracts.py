"""The label embedding contract kit (noprop_core.testing) on every first-party label embedding."""

from __future__ import annotations

from noprop_core.testing import LabelEmbeddingContract


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
