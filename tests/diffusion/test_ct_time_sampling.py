"""NoProp-CT's t by importance, p(t) = SNR′(t)/(SNR(1) − SNR(0)): the draws follow p, the density
is returned by value, and dividing the weight by p keeps the objective *and its gradient in the
schedule's parameters ψ* equal to uniform t's (checked against quadrature of the integral)."""

from __future__ import annotations

import pytest
import torch

from noprop_core import ct_loss, ct_times
from noprop_plugins.schedules.learnable_gamma import LearnableGammaConfig
from noprop_plugins.schedules.learnable_gamma import build as build_gamma


@pytest.fixture
def schedule():
    torch.manual_seed(0)
    return build_gamma(LearnableGammaConfig(name="learnable_gamma", gamma_0=-4.0, gamma_1=3.0)).double()


def test_time_of_snr_inverts_snr(schedule):
    t = torch.linspace(0, 1, 57, dtype=torch.float64)
    torch.testing.assert_close(schedule.time_of_snr(schedule.snr(t)), t, rtol=0, atol=1e-9)


def test_importance_draws_make_snr_uniform_and_return_their_density(schedule):
    torch.manual_seed(1)
    t, density = ct_times(schedule, 20_000, torch.device("cpu"), "importance")
    ends = schedule.snr(torch.tensor([0.0, 1.0], dtype=torch.float64)).detach()
    # p(t) ∝ SNR′(t) ⇔ SNR(t) is uniform on [SNR(0), SNR(1)]
    v = ((schedule.snr(t) - ends[0]) / (ends[1] - ends[0])).detach()
    quantiles = torch.quantile(v, torch.tensor([0.1, 0.25, 0.5, 0.75, 0.9], dtype=torch.float64))
    torch.testing.assert_close(
        quantiles, torch.tensor([0.1, 0.25, 0.5, 0.75, 0.9], dtype=torch.float64), atol=0.01, rtol=0
    )
    with torch.no_grad():
        expected = schedule.snr_derivative(t) / (ends[1] - ends[0])
    torch.testing.assert_close(density, expected)
    assert not density.requires_grad and not t.requires_grad
    uniform_t, uniform_density = ct_times(schedule, 10, torch.device("cpu"), "uniform")
    assert uniform_density is None and ((0 <= uniform_t) & (uniform_t <= 1)).all()


def error_of(schedule, t):
    """A per-example error that depends on ψ through ᾱ(t) (as ‖û − u‖² does through z_t)."""
    return (schedule.alpha_bar(t).sqrt() - 0.3).pow(2) + 0.5 * torch.sin(3 * t) ** 2


def test_importance_weighting_keeps_the_objective_and_its_gradient_in_psi(schedule):
    params = [p for p in schedule.parameters()]
    grid = torch.linspace(0, 1, 20_001, dtype=torch.float64)
    exact = torch.trapezoid(schedule.snr_derivative(grid) * error_of(schedule, grid), grid)
    exact_gradient = torch.autograd.grad(exact, params)

    torch.manual_seed(2)
    t, density = ct_times(schedule, 50_000, torch.device("cpu"), "importance")
    estimate = (schedule.snr_derivative(t) / density * error_of(schedule, t)).mean()
    gradient = torch.autograd.grad(estimate, params)
    assert estimate.item() == pytest.approx(exact.item(), rel=0.01)
    for mine, reference in zip(gradient, exact_gradient):
        torch.testing.assert_close(mine, reference, rtol=0.03, atol=0.03 * reference.abs().max().item() + 1e-9)
    # the weight's value is the constant SNR(1) − SNR(0): the variance left is the error's alone
    ends = schedule.snr(torch.tensor([0.0, 1.0], dtype=torch.float64))
    torch.testing.assert_close((schedule.snr_derivative(t[:100]) / density[:100]).detach(),
                               (ends[1] - ends[0]).detach().float().expand(100), rtol=1e-4, atol=0)  # fmt: skip


def test_ct_loss_divides_the_weight_by_the_density(schedule):
    weight = torch.tensor([[1.0, 0.3, -0.2], [0.1, 0.9, 0.5], [-0.4, 0.2, 1.2]], dtype=torch.float64)
    labels = torch.arange(512) % 3
    recorded = {}

    def block(z, t):
        recorded.update(z=z, t=t)
        return torch.stack([z[:, 0], -z[:, 1], t], dim=-1)  # logits varying with z and t

    torch.manual_seed(4)
    terms = ct_loss(logits_fn=block, head=torch.nn.Identity(), embedding_weight=weight, labels=labels,
                    schedule=schedule, eta=0.37, time_sampling="importance")  # fmt: skip
    z, t = recorded["z"], recorded["t"]
    ends = schedule.snr(torch.tensor([0.0, 1.0], dtype=torch.float64))
    error = (torch.stack([z[:, 0], -z[:, 1], t], -1).softmax(-1) @ weight - weight[labels]).pow(2).sum(-1)
    torch.testing.assert_close(terms["denoise"], 0.5 * 0.37 * ((ends[1] - ends[0]) * error).mean())
    # its gradient in ψ is that of SNR′(t; ψ)/p(t) with p held fixed, not of the constant value
    params = [p for p in schedule.parameters()]
    (gradient,) = torch.autograd.grad(terms["denoise"], [params[0]], retain_graph=True)
    with torch.no_grad():
        density = schedule.snr_derivative(t) / (ends[1] - ends[0])
    reference = 0.5 * 0.37 * (schedule.snr_derivative(t) / density * error).mean()
    (expected,) = torch.autograd.grad(reference, [params[0]])
    torch.testing.assert_close(gradient, expected)
    assert gradient.abs().item() > 0
