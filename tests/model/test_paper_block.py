"""The paper's CNN block: shapes for every image size and both time flavours."""

from __future__ import annotations

import pytest
import torch

from noprop_core.errors import NopropError
from noprop_core.model.blocks import BlockSpec
from noprop_plugins.backbones.cnn import CnnConfig, build


@pytest.mark.parametrize("image_shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32), (3, 9, 13)])
@pytest.mark.parametrize("time_conditioned", [False, True])
def test_block_maps_image_and_label_to_logits(image_shape, time_conditioned):
    spec = BlockSpec(image_shape=image_shape, embedding_dim=20, num_classes=7, time_conditioned=time_conditioned)
    block = build(CnnConfig(name="cnn"), spec)
    t = torch.rand(5) if time_conditioned else None
    logits = block(torch.randn(5, *image_shape), torch.randn(5, 20), t)
    assert logits.shape == (5, 7)
    has_batch_norm = any(isinstance(m, torch.nn.BatchNorm1d) for m in block.modules())
    assert has_batch_norm is (not time_conditioned)  # no batch norm in the continuous-time model


def test_time_changes_the_output_of_a_continuous_time_block():
    spec = BlockSpec(image_shape=(1, 8, 8), embedding_dim=10, num_classes=10, time_conditioned=True)
    block = build(CnnConfig(name="cnn", dropout=0.0), spec).eval()
    x, z = torch.randn(2, 1, 8, 8), torch.randn(2, 10)
    assert not torch.allclose(block(x, z, torch.zeros(2)), block(x, z, torch.full((2,), 0.5)))


def test_images_too_small_for_two_poolings_are_refused():
    with pytest.raises(NopropError, match="at least 4×4"):
        build(CnnConfig(name="cnn"), BlockSpec(image_shape=(1, 3, 8), embedding_dim=10, num_classes=10))


@pytest.mark.parametrize("time_conditioned", [False, True])
def test_encoding_the_image_once_gives_the_same_logits(time_conditioned):
    from noprop_core.model.blocks import ImageConditioned

    spec = BlockSpec(image_shape=(1, 8, 8), embedding_dim=10, num_classes=10, time_conditioned=time_conditioned)
    block = build(CnnConfig(name="cnn"), spec).eval()
    images, z = torch.randn(4, 1, 8, 8), torch.randn(4, 10)
    t = torch.full((4,), 0.3) if time_conditioned else None
    torch.testing.assert_close(ImageConditioned(block, images)(z, t), block(images, z, t))
