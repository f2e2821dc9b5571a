"""noprop's CPU dropout has nn.Dropout's distribution: keep rate 1 − p, kept values scaled by
1 / (1 − p), masks independent per element and per block. Checked by value on large draws
(binomial standard errors), so a wrong keep rate (p instead of 1 − p), a missing or wrong scale,
or one mask shared by elements or blocks fails."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from noprop_core import Dropout, StackedBlocks
from noprop_core.model.blocks import BlockSpec
from noprop_plugins.backbones.cnn import CnnConfig
from noprop_plugins.backbones.cnn import build as build_cnn

N = 400_000


@pytest.mark.parametrize("p", [0.1, 0.2, 0.5, 0.9])
def test_keep_rate_and_scale(p):
    torch.manual_seed(0)
    inputs = torch.rand(N) + 0.5  # no zeros among the inputs: a zero output means dropped
    out = Dropout(p).train()(inputs)
    kept = out != 0
    rate = kept.float().mean().item()
    assert abs(rate - (1 - p)) < 5 * math.sqrt(p * (1 - p) / N), rate
    torch.testing.assert_close(out[kept], inputs[kept] / (1 - p))
    # Expectation preserved, as nn.Dropout's: E[out] = E[inputs].
    assert abs(out.mean().item() - inputs.mean().item()) < 0.02


def test_elements_are_independent():
    torch.manual_seed(1)
    p = 0.3
    kept = (Dropout(p).train()(torch.ones(1000, 400)) != 0).float()
    # Neighbouring elements along either axis: correlation of Bernoulli draws ≈ 0.
    for a, b in ((kept[:, :-1], kept[:, 1:]), (kept[:-1], kept[1:])):
        correlation = torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1].item()
        assert abs(correlation) < 0.01, correlation
    # Row sums follow Binomial(400, 0.7): variance 400·0.21 = 84.
    assert 84 * 0.85 < kept.sum(1).var().item() < 84 * 1.15


def test_eval_mode_and_p_zero_are_the_identity_and_p_one_drops_everything():
    inputs = torch.randn(50)
    assert torch.equal(Dropout(0.4).eval()(inputs), inputs)
    assert torch.equal(Dropout(0.0).train()(inputs), inputs)
    assert torch.equal(Dropout(1.0).train()(inputs), torch.zeros(50))


def test_gradient_is_the_scaled_mask():
    torch.manual_seed(2)
    inputs = torch.randn(10_000, requires_grad=True)
    out = Dropout(0.25).train()(inputs)
    out.sum().backward()
    expected = (out != 0).float() / 0.75
    torch.testing.assert_close(inputs.grad, expected)


def test_it_is_an_nn_dropout_and_draws_from_torchs_generator():
    assert isinstance(Dropout(0.2), nn.Dropout)  # the grouped network of stacked blocks recognises it
    inputs = torch.ones(1000)
    torch.manual_seed(5)
    first = Dropout(0.5).train()(inputs)
    torch.manual_seed(5)
    assert torch.equal(Dropout(0.5).train()(inputs), first)  # fixed seeds stay reproducible


def test_paper_blocks_use_it():
    block = build_cnn(
        CnnConfig(name="cnn", dropout=0.2), BlockSpec(image_shape=(1, 8, 8), embedding_dim=10, num_classes=10)
    )
    dropouts = [m for m in block.modules() if isinstance(m, nn.Dropout)]
    assert dropouts and all(type(m) is Dropout for m in dropouts)


@pytest.mark.parametrize("grouped", [True, False])
def test_stacked_blocks_draw_independent_masks_per_block(grouped):
    """Under the stacked (fused) path, every block gets its own mask: the blocks' outputs with
    equal weights and equal inputs differ in training mode and agree in eval mode."""
    torch.manual_seed(3)
    spec = BlockSpec(image_shape=(1, 8, 8), embedding_dim=10, num_classes=10)
    template = build_cnn(CnnConfig(name="cnn", dropout=0.5), spec)
    blocks = nn.ModuleList(build_cnn(CnnConfig(name="cnn", dropout=0.5), spec) for _ in range(3))
    for block in blocks:
        block.load_state_dict(template.state_dict())
    stacked = StackedBlocks(blocks, grouped_image_path=grouped)
    images, z = torch.randn(64, 1, 8, 8), torch.randn(1, 64, 10).expand(3, 64, 10)
    blocks.eval()  # first: a training pass updates batch norm's running statistics per block
    with torch.no_grad():
        out = stacked(images, z)
    torch.testing.assert_close(out[0], out[1])
    blocks.train()
    with torch.no_grad():
        out = stacked(images, z)
    assert not torch.allclose(out[0], out[1]) and not torch.allclose(out[1], out[2])
