"""DiffusionBlocks: the equal-probability partition, what each block sees in training, the loss
by value, and the order in which inference visits the blocks."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from noprop_core import LogNormalNoiseLevels, VariantParts, block_interval
from noprop_plugins.embeddings.onehot.embedding import OneHotEmbedding
from noprop_plugins.heads.softmax.head import SoftmaxHead
from noprop_plugins.schedules.cosine.schedule import CosineSchedule
from noprop_plugins.variants.diffusion_blocks import DiffusionBlocksConfig
from noprop_plugins.variants.diffusion_blocks.model import DiffusionBlocks

LEVELS = LogNormalNoiseLevels()


def phi(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def test_the_partition_gives_every_block_equal_probability_mass():
    blocks = 7
    masses = []
    for block in range(1, blocks + 1):
        low, high = block_interval(block, blocks)
        sigma_noisy, sigma_clean = LEVELS.sigma(torch.tensor([low, high], dtype=torch.float64)).tolist()
        masses.append(phi((math.log(sigma_noisy) + 1.2) / 1.2) - phi((math.log(sigma_clean) + 1.2) / 1.2))
    total = phi((math.log(80) + 1.2) / 1.2) - phi((math.log(0.002) + 1.2) / 1.2)
    assert masses == pytest.approx([total / blocks] * blocks, rel=1e-9)
    assert LEVELS.sigma(torch.tensor([0.0, 1.0], dtype=torch.float64)).tolist() == pytest.approx([80.0, 0.002])
    t = torch.linspace(0, 1, 11, dtype=torch.float64)
    torch.testing.assert_close(LEVELS.t_of(LEVELS.sigma(t)), t)


def test_noise_levels_drawn_uniformly_in_t_follow_the_truncated_log_normal():
    torch.manual_seed(0)
    log_sigma = LEVELS.sigma(torch.rand(400_000, dtype=torch.float64)).log()
    a, b = (math.log(0.002) + 1.2) / 1.2, (math.log(80) + 1.2) / 1.2
    density = lambda x: math.exp(-x * x / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    mean = -1.2 + 1.2 * (density(a) - density(b)) / (phi(b) - phi(a))  # the truncated normal's mean
    assert log_sigma.mean().item() == pytest.approx(mean, abs=0.01)


def test_overlap_widens_each_interval_by_its_fraction_on_both_sides():
    assert block_interval(2, 4) == (0.25, 0.5)
    assert block_interval(2, 4, overlap=0.5) == pytest.approx((0.125, 0.625))
    assert block_interval(1, 4, overlap=0.5) == pytest.approx((0.0, 0.375))


class Recorder(nn.Module):
    """A block that records (block id, t, its z input) and returns fixed logits."""

    def __init__(self, name: int, log: list, logits: torch.Tensor):
        super().__init__()
        self.name, self.log = name, log
        self.logits = nn.Parameter(logits.clone())

    def forward(self, images, z, t):
        self.log.append((self.name, t.detach().clone(), z.detach().clone()))
        return self.logits.expand(len(z), -1)


def variant(blocks=4, log=None, logits=None, **config) -> DiffusionBlocks:
    log = [] if log is None else log
    made = []

    def make_block(spec):
        made.append(Recorder(len(made) + 1, log, logits if logits is not None else torch.zeros(3)))
        return made[-1]

    parts = VariantParts(embedding=OneHotEmbedding(3), schedule=CosineSchedule(), image_shape=(1, 8, 8),
                         num_classes=3, make_block=make_block, make_head=lambda: SoftmaxHead(3, 3))  # fmt: skip
    return DiffusionBlocks(DiffusionBlocksConfig(name="diffusion_blocks", blocks=blocks, **config), parts)


@pytest.mark.parametrize("overlap", [0.0, 0.5])
def test_each_block_trains_only_on_its_own_interval(overlap):
    log = []
    model = variant(blocks=4, log=log, overlap=overlap)
    images, labels = torch.zeros(2000, 1, 8, 8), torch.arange(2000) % 3
    for unit in model.units:
        model.losses(images, labels, unit)
    for block in range(1, 5):
        (t,) = [t for name, t, _ in log if name == block]
        low, high = block_interval(block, 4, overlap)
        assert low <= t.min() and t.max() <= high
        assert t.min() < low + 0.01 * (high - low) and t.max() > high - 0.01 * (high - low)  # all of it


def test_the_denoising_term_follows_its_formula():
    log = []
    logits = torch.tensor([0.3, -1.0, 2.0])
    model = variant(blocks=2, log=log, logits=logits, sigma_data=0.7)
    labels = torch.arange(600) % 3
    torch.manual_seed(3)
    terms = model.losses(torch.zeros(600, 1, 8, 8), labels, "block2")
    _, t, z_in = log[0]
    u = torch.eye(3)[labels]
    sigma = LEVELS.sigma(t)[:, None]
    z = z_in * (sigma**2 + 0.49).sqrt()  # the block saw c_in·z
    noise = (z - u) / sigma
    assert noise.std().item() == pytest.approx(1.0, rel=0.05)  # z = u + σ ε with ε standard normal
    weight = (sigma**2 + 0.49) / (sigma**2 * 0.49)
    expected = (weight[:, 0] * (logits.softmax(-1) - u).pow(2).sum(-1)).mean()
    torch.testing.assert_close(terms["denoise"], expected)
    assert set(terms) == {"kl", "denoise"}  # one-hot labels: no anchor term


def test_inference_visits_every_interval_once_in_order():
    log = []
    model = variant(blocks=3, log=log, steps=2, sampler="heun")
    with torch.no_grad():
        states = model.trajectory(torch.zeros(5, 1, 8, 8), torch.Generator().manual_seed(0))
    assert len(states) == 3 * 2 + 1
    names = [name for name, _, _ in log]
    assert names == sorted(names) and set(names) == {1, 2, 3}  # block 1 (noisiest) first, each once
    for name, t, _ in log:
        low, high = block_interval(name, 3)
        assert low - 1e-6 <= t[0] <= high + 1e-6
    visited = torch.stack([t[0] for _, t, _ in log])
    assert (visited.diff() >= -1e-6).all() and visited[0] == 0 and visited[-1] == pytest.approx(1.0)
