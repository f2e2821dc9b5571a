"""Schedules by value: the cosine ᾱ(t) and the learnable γ(t) recomputed from their formulas
with non-default parameters, and the discrete chain's quantities from ᾱ."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from noprop_core import DiscreteSchedule
from noprop_plugins.schedules.cosine import CosineConfig
from noprop_plugins.schedules.cosine import build as build_cosine
from noprop_plugins.schedules.learnable_gamma.schedule import LearnableGammaSchedule


@pytest.mark.parametrize(("offset", "cap"), [(0.008, 0.9999), (0.05, 0.95)])
def test_cosine_alpha_bar_is_the_capped_reversed_cosine(offset, cap):
    """ᾱ(t) = cap · f(1 − t)/f(0), f(τ) = cos²(π/2 · (τ + s)/(1 + s)): 0 ≈ noise at t = 0, cap at t = 1."""
    schedule = build_cosine(CosineConfig(name="cosine", offset=offset, max_alpha_bar=cap))
    t = torch.tensor([0.0, 0.1, 0.5, 0.77, 1.0], dtype=torch.float64)

    def f(tau):
        return math.cos(math.pi / 2 * (tau + offset) / (1 + offset)) ** 2

    expected = [cap * f(1 - value) / f(0) for value in t.tolist()]
    assert schedule.alpha_bar(t).tolist() == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert schedule.alpha_bar(t.float()).dtype == torch.float32
    snr = schedule.snr(t[1:4])
    assert snr.tolist() == pytest.approx([a / (1 - a) for a in expected[1:4]], rel=1e-12)


def test_learnable_gamma_recomputed_from_its_network():
    """γ(t) = γ_0 + (γ_1 − γ_0)(1 − (γ̃(t) − γ̃(0))/(γ̃(1) − γ̃(0))), γ_1 = γ_0 + softplus(gap),
    γ̃(t) = softplus(l) t + Σ softplus(w_o) σ(softplus(w_i) t + b); ᾱ = σ(−γ), SNR = exp(−γ)."""
    torch.manual_seed(4)
    schedule = LearnableGammaSchedule(gamma_0=-3.0, gamma_1=5.5, hidden=8).double()
    net = schedule.network
    with torch.no_grad():
        net.linear_weight.fill_(0.4)
        net.output_weight.copy_(torch.randn(8, dtype=torch.float64))

    def tilde(t):
        hidden = torch.sigmoid(F.softplus(net.input_weight) * t + net.input_bias)
        return F.softplus(net.linear_weight) * t + (F.softplus(net.output_weight) * hidden).sum()

    gamma_1 = -3.0 + F.softplus(schedule.gap)
    assert gamma_1.item() == pytest.approx(5.5, rel=1e-6)
    t = torch.tensor([0.0, 0.3, 0.8, 1.0], dtype=torch.float64)
    with torch.no_grad():
        expected = torch.stack(
            [-3.0 + (gamma_1 - -3.0) * (1 - (tilde(v) - tilde(0.0)) / (tilde(1.0) - tilde(0.0))) for v in t]
        )
        torch.testing.assert_close(schedule.gamma(t), expected)
        torch.testing.assert_close(schedule.alpha_bar(t), torch.sigmoid(-expected))
        torch.testing.assert_close(schedule.snr(t), torch.exp(-expected))
    with pytest.raises(ValueError, match="must exceed gamma_0"):
        LearnableGammaSchedule(gamma_0=1.0, gamma_1=1.0)


def test_discrete_chain_from_alpha_bar_by_hand():
    """ᾱ = (0.2, 0.5, 0.9): α_{t−1} = ᾱ_{t−1}/ᾱ_t and the posterior coefficients of step 1 and 2."""
    chain = DiscreteSchedule.from_alpha_bar(torch.tensor([0.2, 0.5, 0.9], dtype=torch.float64), dtype=torch.float64)
    assert chain.steps == 2
    assert chain.snr.tolist() == pytest.approx([0.25, 1.0, 9.0])
    assert chain.snr_weight.tolist() == pytest.approx([0.75, 8.0])
    for t, (prev, cur) in enumerate([(0.2, 0.5), (0.5, 0.9)]):
        alpha = prev / cur
        assert chain.a[t].item() == pytest.approx(math.sqrt(cur) * (1 - alpha) / (1 - prev))
        assert chain.b[t].item() == pytest.approx(math.sqrt(alpha) * (1 - cur) / (1 - prev))
        assert chain.c[t].item() == pytest.approx((1 - cur) * (1 - alpha) / (1 - prev))
    assert chain.to("cpu").a.tolist() == chain.a.tolist()


def test_the_chain_is_computed_in_float64_near_the_cap():
    """SNR near ᾱ = 0.9999 is ~10⁴: the chain is discretised in float64 and only then stored as
    float32, so its weights equal the exact ones to float32 rounding (a float32 grid or float32
    differences of ᾱ would be off by ~10⁻³ relative at the last block)."""
    schedule = build_cosine(CosineConfig(name="cosine"))
    chain = schedule.discretize(10)
    grid = torch.linspace(0, 1, 11, dtype=torch.float64)
    exact = DiscreteSchedule.from_alpha_bar(schedule.alpha_bar(grid), dtype=torch.float64)
    assert chain.alpha_bar.dtype == torch.float32
    torch.testing.assert_close(chain.snr_weight.double(), exact.snr_weight, rtol=2e-7, atol=0)
    torch.testing.assert_close(chain.snr.double(), exact.snr, rtol=2e-7, atol=0)
    near_one = torch.tensor([0.5, 0.99991, 0.99995], dtype=torch.float32)  # float32 input, float64 arithmetic
    from_float32 = DiscreteSchedule.from_alpha_bar(near_one, dtype=torch.float64)
    torch.testing.assert_close(from_float32.snr, (near_one.double() / (1 - near_one.double())), rtol=1e-12, atol=0)


def test_learnable_gamma_plugin_builds_what_the_recipe_says():
    from noprop_core import NopropError
    from noprop_plugins.schedules.learnable_gamma import LearnableGammaConfig
    from noprop_plugins.schedules.learnable_gamma import build as build_gamma

    schedule = build_gamma(LearnableGammaConfig(name="learnable_gamma", gamma_0=-4.0, gamma_1=3.0, hidden=5))
    assert schedule.gamma_0.item() == -4.0 and schedule.gamma_1.item() == pytest.approx(3.0, rel=1e-6)
    assert schedule.network.input_weight.shape == (5,)
    with pytest.raises(NopropError, match=r"^model.schedule: gamma_1 \(2.0\) must exceed gamma_0 \(2.0\)$"):
        build_gamma(LearnableGammaConfig(name="learnable_gamma", gamma_0=2.0, gamma_1=2.0))


def test_cosine_is_computed_in_float64_for_float32_times():
    """ᾱ near the cap loses digits in float32 arithmetic: float32 t gives the float64 result rounded."""
    schedule = build_cosine(CosineConfig(name="cosine"))
    t = torch.linspace(0, 1, 1001)
    assert torch.equal(schedule.alpha_bar(t), schedule.alpha_bar(t.double()).float())


def test_snr_derivative_keeps_its_graph_only_while_training():
    """CT's loss weight SNR′(t) must pass gradients on to a learnable schedule's parameters."""
    torch.manual_seed(0)
    schedule = LearnableGammaSchedule(hidden=4)
    t = torch.rand(16)
    weight = schedule.snr_derivative(t)
    assert weight.requires_grad
    (gradient,) = torch.autograd.grad(weight.sum(), schedule.gamma_0)
    assert gradient.abs() > 0
    with torch.no_grad():
        assert not schedule.snr_derivative(t).requires_grad


def test_probability_flow_is_accurate_near_the_cap():
    """The ODE's coefficients are computed from ᾱ in float64: at t = 0.9995, where 1 − ᾱ ≈ 1.2·10⁻⁴,
    ᾱ rounded to float32 would put ~10⁻⁴ relative error into √(1 − ᾱ) (measured: 8.6·10⁻⁵ of
    the largest velocity, against 5·10⁻⁶ in float64)."""
    from noprop_core import probability_flow

    schedule = build_cosine(CosineConfig(name="cosine"))
    torch.manual_seed(0)
    u_hat, z = torch.randn(3, 4), torch.randn(3, 4)
    time = 0.9995
    v = probability_flow(lambda z_, t_: u_hat, schedule)(z, torch.tensor(time))

    def at(s):
        return schedule.alpha_bar(torch.tensor([s], dtype=torch.float64))[0]

    h = 1e-6
    d_mean = (at(time + h).sqrt() - at(time - h).sqrt()) / (2 * h)
    d_std = ((1 - at(time + h)).sqrt() - (1 - at(time - h)).sqrt()) / (2 * h)
    ab = at(time)
    eps_hat = (z.double() - ab.sqrt() * u_hat.double()) / (1 - ab).sqrt()
    expected = d_mean * u_hat.double() + d_std * eps_hat
    assert (v.double() - expected).abs().max() < 2e-5 * expected.abs().max()


def test_learnable_gamma_starts_as_the_recipe_default_with_a_small_network():
    from noprop_plugins.schedules.learnable_gamma import LearnableGammaConfig

    default = LearnableGammaConfig(name="learnable_gamma")
    torch.manual_seed(0)
    schedule = LearnableGammaSchedule()
    assert schedule.gamma_0.item() == default.gamma_0
    assert schedule.gamma_1.item() == pytest.approx(default.gamma_1, rel=1e-6)
    assert schedule.network.input_weight.shape == (default.hidden,)
    wide = LearnableGammaSchedule(hidden=40_000).network
    assert wide.output_weight.std().item() == pytest.approx(0.1, rel=0.03)  # N(0, 0.1²) raw output weights
    assert wide.input_weight.std().item() == pytest.approx(1.0, rel=0.03) and wide.linear_weight.item() == 0


def test_cosine_defaults_are_the_recipe_defaults():
    from noprop_plugins.schedules.cosine.schedule import CosineSchedule

    default, built = CosineConfig(name="cosine"), CosineSchedule()
    assert (built.offset, built.max_alpha_bar) == (default.offset, default.max_alpha_bar) == (0.008, 0.9999)
