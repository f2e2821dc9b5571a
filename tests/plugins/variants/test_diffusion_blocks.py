"""DiffusionBlocks as its paper and reference code define it, by value: the equi-probability
partition, the overlap against α_b, the σ distribution within a block, EDM's preconditioning and
weight, both weightings of the cross-entropy with normalised embeddings, c_noise's scale in the
block's time input, the head's σ-modulation (the identity at the start) and its start at the
nearest class embedding, z_0's variance, the Euler steps on the σ grid, the block visited at each
level, and the read-out's nearest-embedding side."""

from __future__ import annotations

import math
from statistics import NormalDist

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from noprop_core import (
    TIME_SCALE,
    LogNormalNoiseLevels,
    TrainableEmbedding,
    VariantParts,
    edm_preconditioning,
    edm_weight,
    grid_blocks,
)
from noprop_plugins.heads.softmax.head import SoftmaxHead
from noprop_plugins.schedules.cosine.schedule import CosineSchedule
from noprop_plugins.variants.diffusion_blocks import DiffusionBlocksConfig
from noprop_plugins.variants.diffusion_blocks.model import DiffusionBlocks

LEVELS = LogNormalNoiseLevels()
SCALE = 1.0  # c_noise_scale's default: the block's time input embeds c_noise itself (the reference)


def sigma_of(t: torch.Tensor, scale: float = SCALE) -> torch.Tensor:
    """σ from a block's time input t = c_noise · scale / TIME_SCALE, c_noise = ¼ ln σ."""
    return (4 * t.double() * TIME_SCALE / scale).exp()


NORMAL = NormalDist()
P_MEAN, P_STD = -1.2, 1.2


def boundaries(blocks: int) -> list[float]:
    """σ_0 = σ_max > σ_1 > … > σ_B = σ_min at equal steps of the log-normal's CDF, written out
    as the paper's §3.3 gives them (independent of the code under test)."""
    q_min = NORMAL.cdf((math.log(0.002) - P_MEAN) / P_STD)
    q_max = NORMAL.cdf((math.log(80.0) - P_MEAN) / P_STD)
    return [math.exp(P_MEAN + P_STD * NORMAL.inv_cdf(q_max - b / blocks * (q_max - q_min))) for b in range(blocks + 1)]


def test_the_partition_gives_every_block_equal_probability_mass():
    sigmas = boundaries(7)
    for block in range(1, 8):
        assert LEVELS.block_range(block, 7) == pytest.approx((sigmas[block], sigmas[block - 1]), rel=1e-9)
    assert sigmas[0] == pytest.approx(80.0) and sigmas[-1] == pytest.approx(0.002)
    t = torch.linspace(0, 1, 11, dtype=torch.float64)
    torch.testing.assert_close(LEVELS.t_of(LEVELS.sigma(t)), t)


@pytest.mark.parametrize("gamma", [0.05, 0.1, 0.7])
def test_overlap_widens_each_range_by_alpha_b_in_log_sigma(gamma):
    sigmas = boundaries(3)
    for block in range(1, 4):
        alpha = (sigmas[block - 1] / sigmas[block]) ** gamma  # α_b = (σ_{b−1}/σ_b)^γ
        expected = (max(0.002, sigmas[block] / alpha), min(80.0, alpha * sigmas[block - 1]))
        assert LEVELS.block_range(block, 3, gamma) == pytest.approx(expected, rel=1e-9)
    low, high = LEVELS.block_range(2, 3, gamma)  # the middle block is clipped by neither end
    width = math.log(sigmas[1] / sigmas[2])
    assert math.log(high / low) == pytest.approx((1 + 2 * gamma) * width, rel=1e-9)


def truncated_cdf(x: float, low: float, high: float) -> float:
    """P(ln σ ≤ x) for ln σ ~ N(P_mean, P_std²) restricted to [ln low, ln high]."""
    a, b = ((math.log(s) - P_MEAN) / P_STD for s in (low, high))
    return (NORMAL.cdf((x - P_MEAN) / P_STD) - NORMAL.cdf(a)) / (NORMAL.cdf(b) - NORMAL.cdf(a))


def test_noise_levels_follow_the_log_normal_restricted_to_the_range():
    torch.manual_seed(0)
    low, high = LEVELS.block_range(2, 3, 0.1)
    log_sigma = LEVELS.draw(low, high, 400_000).double().log()
    a, b = ((math.log(s) - P_MEAN) / P_STD for s in (low, high))
    density = lambda x: math.exp(-x * x / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    mean = P_MEAN + P_STD * (density(a) - density(b)) / (NORMAL.cdf(b) - NORMAL.cdf(a))  # truncated normal
    assert log_sigma.mean().item() == pytest.approx(mean, abs=0.005)
    assert low <= log_sigma.exp().min() and log_sigma.exp().max() <= high * (1 + 1e-6)


@pytest.mark.parametrize("overlap", [0.0, 0.05, 0.3])
def test_every_blocks_sigma_follows_the_truncated_log_normal_of_its_range_quantile_by_quantile(overlap):
    """Beyond the mean: the whole distribution, at nine points of each block's CDF (a uniform
    draw in the range, or the untruncated log-normal, misses by far more than the tolerance)."""
    log = []
    model = variant(blocks=3, log=log, overlap=overlap)
    torch.manual_seed(8)
    for unit in model.units:
        model.losses(torch.zeros(60_000, 1, 8, 8), torch.arange(60_000) % 3, unit)
    for block, (_, t, _) in enumerate(log, start=1):
        log_sigma = sigma_of(t).log()
        low, high = LEVELS.block_range(block, 3, overlap)
        for q in [0.1 * k for k in range(1, 10)]:
            x = torch.quantile(log_sigma, q).item()
            assert truncated_cdf(x, low, high) == pytest.approx(q, abs=0.01), (block, q)


def test_edm_preconditioning_and_weight_by_value():
    sigma = torch.tensor([0.002, 0.3, 1.0, 80.0], dtype=torch.float64)
    c_in, c_skip, c_out, c_noise = edm_preconditioning(sigma, 0.5)
    for k, s in enumerate(sigma.tolist()):
        assert c_in[k].item() == pytest.approx(1 / math.sqrt(s * s + 0.25), rel=1e-12)
        assert c_skip[k].item() == pytest.approx(0.25 / (s * s + 0.25), rel=1e-12)
        assert c_out[k].item() == pytest.approx(s * 0.5 / math.sqrt(s * s + 0.25), rel=1e-12)
        assert c_noise[k].item() == pytest.approx(0.25 * math.log(s), rel=1e-12)
        assert edm_weight(sigma, 0.5)[k].item() == pytest.approx((s * s + 0.25) / (s * 0.5) ** 2, rel=1e-12)
    # σ_data matters where it should: 0.7 instead of 0.5 changes every coefficient.
    assert not torch.allclose(edm_preconditioning(sigma, 0.7)[1], c_skip)


class Recorder(nn.Module):
    """A block that records (block, c_noise, its z input) and returns a fixed h ∈ ℝ^d."""

    def __init__(self, name: int, log: list, h: torch.Tensor):
        super().__init__()
        self.name, self.log = name, log
        self.h = nn.Parameter(h.clone())

    def forward(self, images, z, t):
        self.log.append((self.name, t.detach().clone(), z.detach().clone()))
        return self.h.expand(len(z), -1) + 0 * images.flatten(1)[:, :1]  # the images must be passed


WEIGHT = torch.tensor([[2.0, 0.5, -1.0, 0.3], [0.1, -3.0, 0.4, 1.0], [1.5, 1.5, 0.0, -0.5]])  # rows not unit
H = torch.tensor([0.4, -0.2, 0.9, 0.1])


def variant(blocks=3, log=None, **config) -> DiffusionBlocks:
    log = [] if log is None else log
    made = []

    def make_block(spec):
        assert spec.output_dim == 4 and spec.time_conditioned  # h lives in embedding space
        made.append(Recorder(len(made) + 1, log, H))
        return made[-1]

    torch.manual_seed(11)
    head = SoftmaxHead(4, 3)
    parts = VariantParts(
        embedding=TrainableEmbedding(WEIGHT.clone()),
        schedule=CosineSchedule(),
        image_shape=(1, 8, 8),
        num_classes=3,
        make_block=make_block,
        make_head=lambda: head,
    )
    return DiffusionBlocks(DiffusionBlocksConfig(name="diffusion_blocks", blocks=blocks, **config), parts)


@pytest.mark.parametrize("overlap", [0.0, 0.3])
def test_each_block_trains_only_on_its_own_range_and_all_of_it(overlap):
    log = []
    model = variant(blocks=3, log=log, overlap=overlap)
    images, labels = torch.zeros(3000, 1, 8, 8), torch.arange(3000) % 3
    for unit in model.units:
        model.losses(images, labels, unit)
    for block in range(1, 4):
        (c_noise,) = [t for name, t, _ in log if name == block]
        sigma = sigma_of(c_noise)
        low, high = LEVELS.block_range(block, 3, overlap)
        assert low * (1 - 1e-5) <= sigma.min() and sigma.max() <= high * (1 + 1e-5)
        # all of it, measured in probability mass (the log-normal is thin near σ_max)
        t, (t_high, t_low) = LEVELS.t_of(sigma), LEVELS.t_of(torch.tensor([high, low], dtype=torch.float64)).tolist()
        span = t_low - t_high
        assert t.min() < t_high + 0.01 * span and t.max() > t_low - 0.01 * span


@pytest.mark.parametrize("weighting", ["example", "batch_mean"])
def test_the_loss_is_w_sigma_weighted_cross_entropy_of_the_preconditioned_denoiser(weighting):
    log = []
    model = variant(
        blocks=3, log=log, sigma_data=0.7, weighting=weighting, c_noise_scale=3.0, head_conditioning="adaln"
    )
    labels = torch.arange(900) % 3
    perturb_head_modulation(model)
    torch.manual_seed(3)
    terms = model.losses(torch.zeros(900, 1, 8, 8), labels, "block2")
    assert set(terms) == {"weighted_ce"}
    _, t, z_in = log[0]
    sigma = sigma_of(t, scale=3.0).float()
    z = z_in * (sigma[:, None] ** 2 + 0.49).sqrt()  # the block saw c_in·z
    u = WEIGHT[labels] / WEIGHT[labels].norm(dim=-1, keepdim=True)  # L2-normalised embeddings
    noise = (z - u) / sigma[:, None]
    assert noise.std().item() == pytest.approx(1.0, rel=0.05) and abs(noise.mean().item()) < 0.05
    denoised = 0.49 / (sigma**2 + 0.49)[:, None] * z + (sigma * 0.7 / (sigma**2 + 0.49).sqrt())[:, None] * H
    ce = F.cross_entropy(modulated_logits(model, denoised, sigma), labels, reduction="none")
    w = (sigma**2 + 0.49) / (sigma * 0.7) ** 2
    # Eq. 5 per example, or the reference's (loss * w[:, None]).mean() with loss of shape (B,)
    expected = (w * ce).mean() if weighting == "example" else (ce[None, :] * w[:, None]).mean()
    torch.testing.assert_close(terms["weighted_ce"], expected)
    other = (ce[None, :] * w[:, None]).mean() if weighting == "example" else (w * ce).mean()
    assert not torch.isclose(terms["weighted_ce"], other)  # σ varies: the two weightings differ


def perturb_head_modulation(model: DiffusionBlocks) -> None:
    """Move the head's adaLN-Zero away from its zero start, so that it changes the logits."""
    with torch.no_grad():
        linear = model.head_modulation.modulation.linear
        linear.weight.copy_(torch.randn(linear.weight.shape, generator=torch.Generator().manual_seed(2)))
        linear.bias.copy_(torch.linspace(-0.5, 1.0, linear.bias.numel()))


def modulated_logits(model: DiffusionBlocks, denoised: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """head(D (1 + scale) + shift), the shift and scale recomputed from the modulation's layers:
    c = SiLU(MLP(sinusoid(¼ ln σ))), (shift, scale) = SiLU(Linear(c)) split in two."""
    from noprop_core import timestep_sinusoid

    modulation = model.head_modulation
    c = F.silu(modulation.time.mlp(timestep_sinusoid(0.25 * sigma.log())))
    shift, scale = F.silu(modulation.modulation.linear(c)).chunk(2, dim=-1)
    return model.head(denoised * (1 + scale) + shift)


def test_the_heads_modulation_starts_as_the_identity_and_the_head_at_the_nearest_embedding():
    model = variant(blocks=3, head_conditioning="adaln")
    denoised, c_noise = torch.randn(50, 4), torch.linspace(-1.5, 1.0, 50)
    torch.testing.assert_close(model.read(denoised, c_noise), model.head(denoised), rtol=0, atol=0)
    unit = WEIGHT / WEIGHT.norm(dim=-1, keepdim=True)
    spread = torch.cdist(unit, unit).pow(2).sum() / 6  # mean squared distance of two different rows
    expected = (2 * denoised @ unit.T - unit.pow(2).sum(-1)) / spread
    torch.testing.assert_close(model.head(denoised), expected)  # −‖D − u_k‖²/d̄² up to a constant in D
    assert model.head(unit).argmax(-1).tolist() == [0, 1, 2]
    default = variant(blocks=3, head_init="default", head_conditioning="none")
    assert default.head_modulation is None and default.head(unit).argmax(-1).tolist() != [0, 1, 2]


def test_the_blocks_time_input_embeds_c_noise_at_its_scale():
    from noprop_core import sinusoidal_embedding

    for scale in (1.0, 1000.0):
        log = []
        model = variant(blocks=3, log=log, c_noise_scale=scale)
        model.losses(torch.zeros(64, 1, 8, 8), torch.arange(64) % 3, "block1")
        _, t, _ = log[0]
        c_noise = 0.25 * sigma_of(t, scale).log().float()
        frequencies = torch.exp(-math.log(10_000.0) * torch.arange(32) / 32)
        angles = scale * c_noise[:, None] * frequencies[None]  # the sinusoid's argument: scale · c_noise
        torch.testing.assert_close(
            sinusoidal_embedding(t), torch.cat([angles.sin(), angles.cos()], -1), atol=2e-4, rtol=0
        )


def test_grid_blocks_give_each_level_to_the_block_whose_range_holds_it():
    assert grid_blocks(3, 3) == [1, 2, 3]  # one call per block (the paper)
    assert grid_blocks(4, 3) == [1, 1, 2, 3]  # a level on a boundary goes to the noisier block
    assert grid_blocks(7, 3) == [1, 1, 1, 2, 2, 3, 3]
    # Against the reference's bucketing of σ into the partition, away from boundaries:
    sigmas = LEVELS.inference_grid(11)
    edges = torch.tensor(boundaries(3)[::-1], dtype=torch.float64)
    bucketed = (3 - (torch.bucketize(sigmas, edges, right=True) - 1)).clamp(1, 3).tolist()
    assert grid_blocks(11, 3) == bucketed


def test_inference_starts_wide_and_takes_euler_steps_on_the_sigma_grid():
    log = []
    model = variant(blocks=3, log=log)
    with torch.no_grad():
        scores = model.trajectory(torch.zeros(20_000, 1, 8, 8), torch.Generator().manual_seed(0))
    assert [name for name, _, _ in log] == [1, 2, 3] and len(scores) == 3
    sigmas = boundaries(2)  # 3 levels: σ_max, the median of the probability mass, σ_min
    weight = WEIGHT / WEIGHT.norm(dim=-1, keepdim=True)
    z_seen = []
    for (_, t, z_in), sigma in zip(log, sigmas):
        assert sigma_of(t[:1]).item() == pytest.approx(sigma, rel=1e-5)
        z_seen.append(z_in * math.sqrt(sigma**2 + 0.25))
    # z_0 ~ N(0, (1 + σ_max²) I): the generator's standard normal draw, scaled (σ_max² alone would be 1.6e-4 off)
    draw = torch.randn((20_000, 4), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(z_seen[0], draw * math.sqrt(1 + 80.0**2), rtol=1e-5, atol=0)
    assert z_seen[0].var().item() == pytest.approx(1 + 80.0**2, rel=0.02)
    for i in range(2):
        c_skip, c_out = 0.25 / (sigmas[i] ** 2 + 0.25), sigmas[i] * 0.5 / math.sqrt(sigmas[i] ** 2 + 0.25)
        logits = model.head(c_skip * z_seen[i] + c_out * H)
        torch.testing.assert_close(scores[i], logits)
        denoised = logits.softmax(-1) @ weight
        expected = z_seen[i] + (sigmas[i + 1] - sigmas[i]) * (z_seen[i] - denoised) / sigmas[i]
        torch.testing.assert_close(z_seen[i + 1], expected, rtol=1e-4, atol=1e-4)


def test_the_read_outs_nearest_side_is_the_nearest_normalised_embedding_to_the_last_denoised_state():
    log = []
    model = variant(blocks=3, log=log)
    with torch.no_grad():
        read = model.read_out(torch.zeros(200, 1, 8, 8), torch.Generator().manual_seed(4))
    _, t, z_in = log[-1]  # the last call, at σ_min, whose D the head reads
    sigma = sigma_of(t).float()
    z = z_in * (sigma[:, None] ** 2 + 0.25).sqrt()
    denoised = 0.25 / (sigma**2 + 0.25)[:, None] * z + (sigma * 0.5 / (sigma**2 + 0.25).sqrt())[:, None] * H
    unit = WEIGHT / WEIGHT.norm(dim=-1, keepdim=True)
    torch.testing.assert_close(read.nearest, -torch.cdist(denoised, unit).pow(2), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(read.trajectory[-1], model.head(denoised), rtol=1e-4, atol=1e-4)


def test_more_levels_than_blocks_visit_blocks_in_grid_order():
    log = []
    model = variant(blocks=3, log=log, steps=4)
    with torch.no_grad():
        model.trajectory(torch.zeros(3, 1, 8, 8))
    assert [name for name, _, _ in log] == [1, 1, 2, 3]


def test_blind_scores_give_each_block_pure_noise_at_the_top_of_its_range():
    log = []
    model = variant(blocks=3, log=log)
    with torch.no_grad():
        scores = model.blind_scores(torch.zeros(4000, 1, 8, 8), torch.Generator().manual_seed(1))
    assert len(scores) == 3
    for block, (name, t, z_in) in enumerate(log, start=1):
        sigma = LEVELS.block_range(block, 3)[1]
        assert name == block and sigma_of(t[:1]).item() == pytest.approx(sigma, rel=1e-5)
        z = z_in * math.sqrt(sigma**2 + 0.25)
        assert z.std().item() == pytest.approx(sigma, rel=0.05) and abs(z.mean().item()) < 0.05 * sigma


def test_blind_scores_are_the_heads_logits_on_each_blocks_denoiser_and_repeat_with_the_generator():
    log = []
    model = variant(blocks=3, log=log)
    with torch.no_grad():
        scores = model.blind_scores(torch.zeros(50, 1, 8, 8), torch.Generator().manual_seed(1))
        again = model.blind_scores(torch.zeros(50, 1, 8, 8), torch.Generator().manual_seed(1))
    assert len(scores) == 3 and [name for name, _, _ in log] == [1, 2, 3, 1, 2, 3]
    for block, (score, (_, _, z_in)) in enumerate(zip(scores, log), start=1):
        sigma = LEVELS.block_range(block, 3)[1]
        z = z_in * math.sqrt(sigma**2 + 0.25)
        c_skip, c_out = 0.25 / (sigma**2 + 0.25), sigma * 0.5 / math.sqrt(sigma**2 + 0.25)
        torch.testing.assert_close(score, model.head(c_skip * z + c_out * H))
    for first, second in zip(scores, again):
        torch.testing.assert_close(first, second)


def test_the_variant_takes_its_order_and_noise_range_from_the_config():
    model = variant(blocks=3, order="sequential", sigma_max=40.0, sigma_min=0.01)
    assert model.update_order == "sequential"
    assert (model.levels.sigma_min, model.levels.sigma_max) == (0.01, 40.0)
    assert variant(blocks=3, order="simultaneous").update_order == "simultaneous"


def test_noise_levels_keep_the_inputs_float_dtype_and_hit_the_ends_exactly():
    ends = torch.tensor([0.0, 1.0], dtype=torch.float64)
    assert LEVELS.sigma(ends).tolist() == [pytest.approx(80.0, rel=1e-9), 0.002]  # σ_min exactly (clamped)
    assert LEVELS.sigma(ends.float()).dtype == torch.float32 and LEVELS.sigma(ends).dtype == torch.float64
    assert LEVELS.sigma(torch.tensor([0, 1])).dtype == torch.float32  # whole-number t: float32
    assert LEVELS.t_of(torch.tensor([1.0])).dtype == torch.float32
    assert LEVELS.t_of(torch.tensor([1.0], dtype=torch.float64)).dtype == torch.float64
    grid = LEVELS.inference_grid(2)
    assert grid.dtype == torch.float64 and grid.tolist() == [pytest.approx(80.0, rel=1e-9), 0.002]
    with pytest.raises(ValueError, match="an inference grid needs at least 2 noise levels, got 1"):
        LEVELS.inference_grid(1)


def test_draws_repeat_with_the_same_generator():
    first = LEVELS.draw(0.1, 2.0, 100, generator=torch.Generator().manual_seed(5))
    second = LEVELS.draw(0.1, 2.0, 100, generator=torch.Generator().manual_seed(5))
    assert first.dtype == torch.float32 and torch.equal(first, second)
    assert not torch.equal(first, LEVELS.draw(0.1, 2.0, 100, generator=torch.Generator().manual_seed(6)))
