"""Every term of the DT, CT and FM objectives against an independent recomputation.

The objectives draw their own noise and times; a test replays the same draws from the same
seed (in the order the objective documents) and recomputes each term from the paper's formula
by hand. The inputs make plausible wrong versions visible: η ≠ 1, a learned (non-orthogonal,
non-unit) W_Embed, blocks and heads whose logits depend on their input, and a schedule whose
ᾱ(0) = 0.1 and ᾱ(1) = 0.9 are far from 0 and 1, so that the KL, the end points and the SNR
derivative all carry weight. The schedule is linear, ᾱ(t) = 0.1 + 0.8 t, so its SNR and SNR′
have closed forms: SNR = ᾱ/(1 − ᾱ), SNR′ = 0.8/(1 − ᾱ)².
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from noprop_core import NoiseSchedule, ct_loss, dt_loss, fm_loss

CLASSES, DIM, BATCH, ETA = 4, 3, 64, 0.37


class LinearSchedule(NoiseSchedule):
    def alpha_bar(self, t: Tensor) -> Tensor:
        return 0.1 + 0.8 * t


def closed_kl(u: Tensor, alpha_bar: float) -> Tensor:
    """KL(N(√ᾱ u, (1 − ᾱ) I) ‖ N(0, I)) per example, from the Gaussian KL formula."""
    mean_sq = alpha_bar * u.pow(2).sum(-1)
    variance = 1 - alpha_bar
    return 0.5 * (mean_sq + DIM * variance - DIM - DIM * torch.log(torch.tensor(variance, dtype=u.dtype)))


@pytest.fixture
def setup():
    torch.manual_seed(7)
    weight = torch.randn(CLASSES, DIM, dtype=torch.float64) * 1.7 + 0.4  # learned-looking: not orthonormal
    labels = torch.randint(0, CLASSES, (BATCH,))
    z_map = torch.randn(DIM, CLASSES, dtype=torch.float64)  # a block's logits depend on z …
    t_map = torch.randn(CLASSES, dtype=torch.float64)  # … and on t
    head = nn.Linear(DIM, CLASSES).double()
    return weight, labels, z_map, t_map, head


def recording_block(z_map: Tensor, t_map: Tensor):
    """A block's logits function that keeps the last z and t it was given."""
    seen = {}

    def logits_fn(z, t):
        seen["z"], seen["t"] = z, t
        return block_logits(z, t, z_map, t_map)

    return logits_fn, seen


def close(actual: Tensor, expected: Tensor) -> None:
    """Equal up to float32 rounding (the schedules and chains compute in float32)."""
    torch.testing.assert_close(actual.double(), expected.double(), rtol=2e-5, atol=1e-6)


def block_logits(z: Tensor, t: Tensor, z_map: Tensor, t_map: Tensor) -> Tensor:
    return z @ z_map + 3.0 * t[:, None] * t_map


@pytest.mark.parametrize("target", ["embedding", "noise"])
def test_ct_terms(setup, target):
    weight, labels, z_map, t_map, head = setup
    if target == "noise":  # the noise block returns ε̂ ∈ ℝ^d itself
        z_map, t_map = torch.randn(DIM, DIM, dtype=torch.float64), torch.randn(DIM, dtype=torch.float64)
    schedule = LinearSchedule()
    logits_fn, seen = recording_block(z_map, t_map)

    torch.manual_seed(11)
    terms = ct_loss(
        logits_fn=logits_fn,
        head=head,
        embedding_weight=weight,
        labels=labels,
        schedule=schedule,
        eta=ETA,
        target=target,
    )
    torch.manual_seed(11)  # the draws, in ct_loss's order: t, ε, then the ε of z_1
    t = torch.rand(BATCH, dtype=torch.float32)
    eps = torch.randn(BATCH, DIM, dtype=torch.float64)
    eps_1 = torch.randn(BATCH, DIM, dtype=torch.float64)
    u = weight[labels]
    alpha_bar = (0.1 + 0.8 * t.double())[:, None]
    z_t = alpha_bar.sqrt() * u + (1 - alpha_bar).sqrt() * eps
    close(seen["t"], t)
    close(seen["z"], z_t)
    logits = block_logits(z_t, t.double(), z_map, t_map)
    snr_derivative = 0.8 / (1 - alpha_bar[:, 0]) ** 2
    if target == "embedding":
        error = (logits.softmax(-1) @ weight - u).pow(2).sum(-1)
        expected = 0.5 * ETA * (snr_derivative * error).mean()
    else:
        snr = alpha_bar[:, 0] / (1 - alpha_bar[:, 0])
        error = (logits - eps).pow(2).sum(-1)
        expected = 0.5 * ETA * (snr_derivative / snr * error).mean()
    close(terms["denoise"], expected)
    z_1 = 0.9**0.5 * u + 0.1**0.5 * eps_1  # ᾱ(1) = 0.9
    close(terms["ce"], F.cross_entropy(head(z_1), labels))
    close(terms["kl"], closed_kl(u, 0.1).mean())  # ᾱ(0) = 0.1


@pytest.mark.parametrize("anchor", [True, False])
def test_fm_terms(setup, anchor):
    weight, labels, z_map, t_map, head = setup
    sigma = 0.3
    logits_fn, seen = recording_block(z_map, t_map)

    torch.manual_seed(5)
    terms = fm_loss(logits_fn=logits_fn, head=head, embedding_weight=weight, labels=labels, sigma=sigma, anchor=anchor)
    torch.manual_seed(5)  # fm_loss's draws: z_0, t, then the σ noise
    z_1 = weight[labels]
    z_0 = torch.randn(BATCH, DIM, dtype=torch.float64)
    t = torch.rand(BATCH)[:, None]
    noise = torch.randn(BATCH, DIM, dtype=torch.float64)
    z_t = t * z_1 + (1 - t) * z_0 + sigma * noise  # Eq. 10: the path from noise (t = 0) to the label (t = 1)
    close(seen["z"], z_t)
    close(seen["t"], t[:, 0])
    velocity = block_logits(z_t, t[:, 0].double(), z_map, t_map) @ weight
    close(terms["flow"], (velocity - (z_1 - z_0)).pow(2).sum(-1).mean())
    assert terms.keys() == ({"flow", "anchor"} if anchor else {"flow"})
    if anchor:  # Eq. 13: the one-step estimate of z_1 read by the head
        close(terms["anchor"], F.cross_entropy(head(z_t + (1 - t) * velocity), labels))


@pytest.mark.parametrize("blocks", [[3], [1, 2, 4]])
def test_dt_terms(setup, blocks):
    """Block t sees z_{t−1} ~ q(z_{t−1} | y); the weight is SNR(t) − SNR(t−1); the head reads a fresh z_T."""
    weight, labels, z_map, t_map, head = setup
    chain = LinearSchedule().discretize(4)
    t = torch.tensor(blocks)
    eps_prev = torch.randn(len(blocks), BATCH, DIM, dtype=torch.float64)
    eps_last = torch.randn(len(blocks), BATCH, DIM, dtype=torch.float64)
    seen = {}

    def denoiser(z_prev):
        seen["z"] = z_prev
        per_block = torch.arange(1, len(blocks) + 1, dtype=torch.float64)[:, None, None]  # blocks differ
        return (z_prev @ z_map) * per_block

    terms = dt_loss(
        denoiser=denoiser,
        head=head,
        embedding_weight=weight,
        labels=labels,
        chain=chain,
        t=t,
        eta=ETA,
        noise=(eps_prev, eps_last),
    )
    u = weight[labels]
    grid = torch.linspace(0, 1, 5, dtype=torch.float64)
    alpha_bar = 0.1 + 0.8 * grid  # ᾱ_k at t_k = k/T
    snr = alpha_bar / (1 - alpha_bar)
    for k, block in enumerate(blocks):
        z_prev = alpha_bar[block - 1].sqrt() * u + (1 - alpha_bar[block - 1]).sqrt() * eps_prev[k]
        close(seen["z"][k], z_prev)
        u_hat = ((z_prev @ z_map) * (k + 1)).softmax(-1) @ weight
        expected = 0.5 * 4 * ETA * (snr[block] - snr[block - 1]) * (u_hat - u).pow(2).sum(-1).mean()
        close(terms["denoise"][k], expected)
        z_last = alpha_bar[4].sqrt() * u + (1 - alpha_bar[4]).sqrt() * eps_last[k]
        close(terms["ce"][k], F.cross_entropy(head(z_last), labels))
        close(terms["kl"][k], closed_kl(u, 0.1).mean())


def test_dt_draws_z_prev_before_and_z_last_after_the_blocks(setup):
    """Without given noise: z_{t−1}'s draw first, the blocks, then z_T's draw (documented order)."""
    weight, labels, z_map, _, head = setup
    chain = LinearSchedule().discretize(4)
    seen = {}

    def denoiser(z_prev):
        seen["z"] = z_prev
        return z_prev @ z_map

    torch.manual_seed(3)
    terms = dt_loss(
        denoiser=denoiser, head=head, embedding_weight=weight, labels=labels, chain=chain, t=torch.tensor([2]), eta=ETA
    )
    torch.manual_seed(3)
    eps_prev = torch.randn(1, BATCH, DIM, dtype=torch.float64)
    eps_last = torch.randn(1, BATCH, DIM, dtype=torch.float64)
    u = weight[labels]
    z_prev = chain.alpha_bar[1].double().sqrt() * u + (1 - chain.alpha_bar[1].double()).sqrt() * eps_prev[0]
    close(seen["z"][0], z_prev)
    z_last = chain.alpha_bar[-1].double().sqrt() * u + (1 - chain.alpha_bar[-1].double()).sqrt() * eps_last[0]
    close(terms["ce"][0], F.cross_entropy(head(z_last), labels))


def test_ct_refuses_an_unknown_target(setup):
    weight, labels, z_map, t_map, head = setup
    with pytest.raises(ValueError, match=r"^unknown prediction target 'score'; expected one of"):
        ct_loss(
            logits_fn=lambda z, t: block_logits(z, t, z_map, t_map),
            head=head,
            embedding_weight=weight,
            labels=labels,
            schedule=LinearSchedule(),
            eta=ETA,
            target="score",
        )


def test_sample_marginal_draws_from_the_given_generator():
    from noprop_core import sample_marginal

    u = torch.randn(4, DIM)
    alpha_bar = torch.tensor(0.3)
    drawn = sample_marginal(u, alpha_bar, generator=torch.Generator().manual_seed(5))
    torch.randn(50)  # the global generator moves on; only the given one counts
    noise = torch.randn(4, DIM, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(drawn, 0.3**0.5 * u + 0.7**0.5 * noise)
