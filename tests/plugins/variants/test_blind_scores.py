"""Each block's scores from the image alone (``Variant.blind_scores``), by value: which block is
called, with which label input and time, and how its output becomes class scores."""

from __future__ import annotations

import torch
from torch import nn

from noprop_core import TrainableEmbedding, VariantParts, embedding_from_noise
from noprop_plugins.heads.softmax.head import SoftmaxHead
from noprop_plugins.schedules.learnable_gamma import LearnableGammaConfig
from noprop_plugins.schedules.learnable_gamma import build as build_gamma
from noprop_plugins.variants.ct import CTConfig
from noprop_plugins.variants.ct.model import NoPropCT
from noprop_plugins.variants.dt import DTConfig
from noprop_plugins.variants.dt.model import NoPropDT
from noprop_plugins.variants.fm import FMConfig
from noprop_plugins.variants.fm.model import NoPropFM

WEIGHT = torch.tensor([[1.0, 0.2, -0.5, 0.0, 0.3], [0.4, -1.0, 0.1, 0.6, 0.0], [0.0, 0.5, 0.9, -0.2, 1.1]])


class Recorder(nn.Module):
    """Records its inputs; returns a fixed function of z and t, width ``spec.outputs``."""

    def __init__(self, spec, log):
        super().__init__()
        self.log, self.outputs = log, spec.outputs
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, images, z, t=None):
        self.log.append((z.clone(), None if t is None else t.clone()))
        base = z[:, : self.outputs] if z.shape[1] >= self.outputs else z.repeat(1, 2)[:, : self.outputs]
        # + the images' mean (0 for the zero images used here): the block must be given the images
        return self.scale * base + (0 if t is None else t[:, None]) + images.mean((1, 2, 3))[:, None]


def parts(log, schedule=None):
    schedule = schedule or build_gamma(LearnableGammaConfig(name="learnable_gamma"))
    return VariantParts(
        embedding=TrainableEmbedding(WEIGHT.clone()),
        schedule=schedule,
        image_shape=(1, 8, 8),
        num_classes=3,
        make_block=lambda spec: Recorder(spec, log),
        make_head=lambda: SoftmaxHead(5, 3),
    )


def test_dt_scores_every_block_on_one_standard_normal_draw():
    from noprop_plugins.schedules.cosine.schedule import CosineSchedule

    log = []
    variant = NoPropDT(DTConfig(name="dt", timesteps=3), parts(log, CosineSchedule()))
    scores = variant.blind_scores(torch.zeros(7, 1, 8, 8), torch.Generator().manual_seed(5))
    z = torch.randn((7, 5), generator=torch.Generator().manual_seed(5))
    assert len(scores) == 3 and len(log) == 3
    for (seen, t), score in zip(log, scores):
        assert t is None and torch.equal(seen, z) and torch.equal(score, z[:, :3])


def test_ct_scores_the_block_at_t_zero_and_the_noise_target_through_the_implied_embedding():
    log = []
    variant = NoPropCT(CTConfig(name="ct"), parts(log))
    (score,) = variant.blind_scores(torch.zeros(6, 1, 8, 8), torch.Generator().manual_seed(2))
    z = torch.randn((6, 5), generator=torch.Generator().manual_seed(2))
    seen, t = log[0]
    assert torch.equal(seen, z) and torch.equal(t, torch.zeros(6)) and torch.equal(score, z[:, :3])

    log.clear()
    noise = NoPropCT(CTConfig(name="ct", target="noise", noise_form="free"), parts(log))
    (score,) = noise.blind_scores(torch.zeros(6, 1, 8, 8), torch.Generator().manual_seed(2))
    alpha_bar = noise.schedule.alpha_bar(torch.zeros(6))[:, None]
    u_hat = embedding_from_noise(z, z, alpha_bar)  # the recorder's ε̂ is z itself (d outputs)
    torch.testing.assert_close(score, -torch.cdist(u_hat, WEIGHT).pow(2))

    # The posterior form (gate closed): the recorder's first m outputs are the logits z[:, :3], and
    # the û its ε̂ implies is softmax(logits)·W.
    posterior = NoPropCT(CTConfig(name="ct", target="noise", noise_form="posterior"), parts(log))
    (score,) = posterior.blind_scores(torch.zeros(6, 1, 8, 8), torch.Generator().manual_seed(2))
    u_hat = z[:, :3].softmax(-1) @ WEIGHT
    torch.testing.assert_close(score, -torch.cdist(u_hat, WEIGHT).pow(2), rtol=1e-4, atol=1e-4)


def test_fm_scores_the_class_nearest_one_euler_step_from_noise():
    log = []
    variant = NoPropFM(FMConfig(name="fm"), parts(log))
    (score,) = variant.blind_scores(torch.zeros(4, 1, 8, 8), torch.Generator().manual_seed(3))
    z = torch.randn((4, 5), generator=torch.Generator().manual_seed(3))
    velocity = z[:, :3] @ WEIGHT
    torch.testing.assert_close(score, -torch.cdist(z + velocity, WEIGHT).pow(2))
