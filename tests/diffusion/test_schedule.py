"""The noise schedule and the discrete chain derived from it, checked against closed forms."""

from __future__ import annotations

import pytest
import torch

from noprop_core.diffusion.schedule import DiscreteSchedule
from noprop_plugins.schedules.cosine.schedule import CosineSchedule


@pytest.fixture
def cosine():
    return CosineSchedule()


def test_alpha_bar_increases_strictly_from_noise_to_the_cap(cosine):
    t = torch.linspace(0, 1, 100_001, dtype=torch.float64)
    alpha_bar = cosine.alpha_bar(t)
    assert torch.all(alpha_bar[1:] > alpha_bar[:-1])
    assert alpha_bar[0] < 1e-30
    assert alpha_bar[-1] == pytest.approx(0.9999, abs=1e-12)
    assert torch.all(alpha_bar < 1)


@pytest.mark.parametrize("steps", [1, 2, 10, 1000])
def test_snr_weights_are_positive_and_finite(cosine, steps):
    chain = cosine.discretize(steps)
    assert chain.snr_weight.shape == (steps,)
    assert torch.all(chain.snr_weight > 0)
    assert torch.all(torch.isfinite(chain.snr_weight))
    assert torch.all(torch.isfinite(chain.a) & torch.isfinite(chain.b) & (chain.c > 0))


def test_alpha_bar_is_the_product_of_the_per_step_alphas(cosine):
    chain = cosine.discretize(10)
    ab = chain.alpha_bar.double()
    alpha = torch.cat([ab[:-1] / ab[1:], ab[-1:]])  # α_{k} = ᾱ_k / ᾱ_{k+1}, α_T = ᾱ_T
    products = torch.flip(torch.cumprod(torch.flip(alpha, [0]), 0), [0])  # ∏_{s=k..T} α_s
    torch.testing.assert_close(products, ab, rtol=1e-5, atol=1e-30)


def test_posterior_moments_match_the_marginal_in_closed_form(cosine):
    # If z_{t−1} ~ N(√ᾱ_{t−1} u, 1 − ᾱ_{t−1}) and z_t | z_{t−1} ~ N(a u + b z_{t−1}, c), then
    # z_t has mean (a + b √ᾱ_{t−1}) u and variance b² (1 − ᾱ_{t−1}) + c, which must equal q(z_t | y).
    chain = cosine.discretize(10)
    ab = chain.alpha_bar.double()
    a, b, c = chain.a.double(), chain.b.double(), chain.c.double()
    torch.testing.assert_close(a + b * ab[:-1].sqrt(), ab[1:].sqrt(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(b.pow(2) * (1 - ab[:-1]) + c, 1 - ab[1:], rtol=1e-5, atol=1e-6)


def test_posterior_step_reproduces_the_marginal_by_monte_carlo(cosine, seeded):
    from noprop_core.diffusion.gaussian import posterior_step, sample_marginal

    chain = cosine.discretize(10)
    samples, dim = 200_000, 4
    u = torch.tensor([1.0, -0.5, 0.0, 2.0]).expand(samples, dim)
    for t in (1, 3, 6, 9, 10):
        z_prev = sample_marginal(u, chain.alpha_bar[t - 1])
        z_t = posterior_step(u, z_prev, chain.a[t - 1], chain.b[t - 1], chain.c[t - 1])
        expected_mean = chain.alpha_bar[t].sqrt() * u[0]
        expected_var = (1 - chain.alpha_bar[t]).expand(dim)
        std_error = (expected_var / samples).sqrt()
        assert torch.all((z_t.mean(0) - expected_mean).abs() < 5 * std_error + 1e-6), t
        torch.testing.assert_close(z_t.var(0), expected_var, rtol=0.02, atol=1e-5)


def test_discrete_quantities_match_a_hand_computed_example():
    chain = DiscreteSchedule.from_alpha_bar(torch.tensor([0.0, 0.5, 0.9], dtype=torch.float64))
    # t = 2: ᾱ_1 = 0.5, ᾱ_2 = 0.9, α_1 = 5/9.
    alpha = 5 / 9
    assert chain.a[1].item() == pytest.approx(0.9**0.5 * (1 - alpha) / 0.5, rel=1e-6)
    assert chain.b[1].item() == pytest.approx(alpha**0.5 * 0.1 / 0.5, rel=1e-6)
    assert chain.c[1].item() == pytest.approx(0.1 * (1 - alpha) / 0.5, rel=1e-6)
    assert chain.snr_weight.tolist() == pytest.approx([1.0, 8.0])


def test_snr_derivative_matches_a_finite_difference(cosine):
    t = torch.linspace(0.05, 0.95, 19, dtype=torch.float64)
    h = 1e-6
    finite = (cosine.snr(t + h) - cosine.snr(t - h)) / (2 * h)
    torch.testing.assert_close(cosine.snr_derivative(t), finite, rtol=1e-5, atol=1e-8)
    assert torch.all(cosine.snr_derivative(t) > 0)


def test_snr_differences_approach_the_derivative_as_steps_grow(cosine):
    steps = 4000
    chain = cosine.discretize(steps)
    t = torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64)
    index = (t * steps).long()
    discrete = steps * chain.snr_weight.double()[index - 1]
    torch.testing.assert_close(discrete, cosine.snr_derivative(t), rtol=2e-3, atol=0)
