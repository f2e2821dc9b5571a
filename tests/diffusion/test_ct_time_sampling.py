"""NoProp-CT's t by importance, p(t) ∝ the target's weight: SNR′(t)/(SNR(1) − SNR(0)) for the
embedding target, (SNR′/SNR)(t)/(log SNR(1) − log SNR(0)) for the noise target. The draws follow p,
the density is returned by value, and dividing the weight by p keeps the objective *and its
gradient in the schedule's parameters ψ* equal to uniform t's (checked against quadrature)."""

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
    torch.testing.assert_close(
        (schedule.snr_derivative(t[:100]) / density[:100]).detach(),
        (ends[1] - ends[0]).detach().float().expand(100),
        rtol=1e-4,
        atol=0,
    )


def test_ct_loss_divides_the_weight_by_the_density(schedule):
    weight = torch.tensor([[1.0, 0.3, -0.2], [0.1, 0.9, 0.5], [-0.4, 0.2, 1.2]], dtype=torch.float64)
    labels = torch.arange(512) % 3
    recorded = {}

    def block(z, t):
        recorded.update(z=z, t=t)
        return torch.stack([z[:, 0], -z[:, 1], t], dim=-1)  # logits varying with z and t

    torch.manual_seed(4)
    terms = ct_loss(
        logits_fn=block,
        head=torch.nn.Identity(),
        embedding_weight=weight,
        labels=labels,
        schedule=schedule,
        eta=0.37,
        time_sampling="importance",
    )
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


def test_noise_target_importance_makes_log_snr_uniform_and_its_weight_constant(schedule):
    torch.manual_seed(5)
    t, density = ct_times(schedule, 20_000, torch.device("cpu"), "importance", "noise")
    log_ends = schedule.snr(torch.tensor([0.0, 1.0], dtype=torch.float64)).log().detach()
    v = ((schedule.snr(t).log() - log_ends[0]) / (log_ends[1] - log_ends[0])).detach()
    quantiles = torch.quantile(v, torch.tensor([0.1, 0.25, 0.5, 0.75, 0.9], dtype=torch.float64))
    torch.testing.assert_close(
        quantiles, torch.tensor([0.1, 0.25, 0.5, 0.75, 0.9], dtype=torch.float64), atol=0.01, rtol=0
    )
    with torch.no_grad():
        weight = schedule.snr_derivative(t) / schedule.snr(t)
    torch.testing.assert_close(
        weight / density, (log_ends[1] - log_ends[0]).expand(len(t)).to(density.dtype), rtol=1e-4, atol=0
    )
    # not the embedding target's density, whose draws make SNR (not its log) uniform
    with torch.no_grad():
        embedding_density = schedule.snr_derivative(t) / (log_ends[1].exp() - log_ends[0].exp())
    assert not torch.allclose(embedding_density.to(density.dtype), density, rtol=0.1)


def test_noise_target_importance_keeps_the_objective_and_its_gradient_in_psi(schedule):
    params = [p for p in schedule.parameters()]

    def weight(t):
        return schedule.snr_derivative(t) / schedule.snr(t)

    grid = torch.linspace(0, 1, 20_001, dtype=torch.float64)
    exact = torch.trapezoid(weight(grid) * error_of(schedule, grid), grid)
    exact_gradient = torch.autograd.grad(exact, params)
    torch.manual_seed(6)
    t, density = ct_times(schedule, 50_000, torch.device("cpu"), "importance", "noise")
    estimate = (weight(t) / density * error_of(schedule, t)).mean()
    gradient = torch.autograd.grad(estimate, params)
    assert estimate.item() == pytest.approx(exact.item(), rel=0.01)
    # The noise weight's gradient in the γ network's scalar slope is ~1e-3 of the largest one and
    # Monte-Carlo noise dominates it: tolerances relative to the largest gradient of all.
    scale = max(reference.abs().max().item() for reference in exact_gradient)
    for mine, reference in zip(gradient, exact_gradient):
        torch.testing.assert_close(mine, reference, rtol=0.03, atol=0.01 * scale)


def test_ct_loss_draws_the_noise_targets_times_by_its_own_weight(schedule):
    labels = torch.arange(256) % 3
    weight = torch.tensor([[1.0, 0.3, -0.2], [0.1, 0.9, 0.5], [-0.4, 0.2, 1.2]], dtype=torch.float64)
    recorded = {}

    def block(z, t):
        recorded.update(z=z, t=t)
        return 0.5 * z + t[:, None]  # an ε̂ varying with z and t

    torch.manual_seed(7)
    terms = ct_loss(
        logits_fn=block,
        head=torch.nn.Identity(),
        embedding_weight=weight,
        labels=labels,
        schedule=schedule,
        eta=0.37,
        target="noise",
        time_sampling="importance",
    )
    z, t = recorded["z"], recorded["t"]
    alpha_bar = schedule.alpha_bar(t).detach()[:, None]
    noise = (z - alpha_bar.sqrt() * weight[labels]) / (1 - alpha_bar).sqrt()
    log_ends = schedule.snr(torch.tensor([0.0, 1.0], dtype=torch.float64)).log().detach()
    error = (0.5 * z + t[:, None] - noise).pow(2).sum(-1)
    torch.testing.assert_close(terms["denoise"].detach(), 0.5 * 0.37 * ((log_ends[1] - log_ends[0]) * error).mean())


def test_the_posterior_form_of_the_noise_target_is_drawn_as_the_embedding_target(schedule):
    """Its term is SNR′‖û − u_y‖² by value, so its t come from p(t) ∝ SNR′ (the embedding target's
    draws, seed for seed), the free form's from p(t) ∝ SNR′/SNR; the weight / p(t) is then the
    embedding target's constant SNR(1) − SNR(0) times SNR(t)⁻¹."""
    labels = torch.arange(256) % 3
    weight = torch.tensor([[1.0, 0.3, -0.2, 0.4], [0.1, 0.9, 0.5, -0.3], [-0.4, 0.2, 1.2, 0.6]], dtype=torch.float64)
    seen = {}

    def block_for(form):
        def block(z, t):
            seen[form] = t
            logits = torch.stack([z[:, 0], -z[:, 1], t], dim=-1)
            if form == "free":
                return 0.5 * z + t[:, None]  # ε̂ itself
            return logits if form == "embedding" else torch.cat([logits, torch.zeros_like(z)], dim=-1)

        return block

    values = {}
    for form, target in (("embedding", "embedding"), ("posterior", "noise"), ("free", "noise")):
        torch.manual_seed(11)
        values[form] = ct_loss(
            logits_fn=block_for(form),
            head=torch.nn.Identity(),
            embedding_weight=weight,
            labels=labels,
            schedule=schedule,
            eta=0.37,
            target=target,
            time_sampling="importance",
            noise_form=form,
        )["denoise"].detach()
    torch.testing.assert_close(seen["posterior"].detach(), seen["embedding"].detach())
    assert not torch.allclose(seen["free"].detach(), seen["embedding"].detach())
    torch.testing.assert_close(values["posterior"], values["embedding"], rtol=1e-9, atol=0)


def test_ct_times_defaults_to_uniform_and_names_what_it_expected(schedule):
    t, density = ct_times(schedule, 7, torch.device("cpu"))
    assert density is None and t.shape == (7,)
    with pytest.raises(ValueError, match=r"unknown time sampling 'sobol'; expected one of \('uniform', 'importance'\)"):
        ct_times(schedule, 7, torch.device("cpu"), "sobol")
    with pytest.raises(ValueError, match=r"unknown prediction target 'v'; expected one of \('embedding', 'noise'\)"):
        ct_times(schedule, 7, torch.device("cpu"), "importance", "v")


def test_importance_draws_stay_inside_the_snr_range_when_snr_0_is_not_small():
    """With SNR(0) = e⁻¹ a draw past SNR(1) (a range of SNR(1) + SNR(0)) would pile up at t = 1."""
    torch.manual_seed(8)
    wide = build_gamma(LearnableGammaConfig(name="learnable_gamma", gamma_0=-1.0, gamma_1=1.0)).double()
    t, _ = ct_times(wide, 20_000, torch.device("cpu"), "importance")
    ends = wide.snr(torch.tensor([0.0, 1.0], dtype=torch.float64)).detach()
    v = ((wide.snr(t) - ends[0]) / (ends[1] - ends[0])).detach()
    assert (t > 1 - 1e-6).float().mean() < 0.001
    torch.testing.assert_close(
        torch.quantile(v, torch.tensor([0.5, 0.9], dtype=torch.float64)),
        torch.tensor([0.5, 0.9], dtype=torch.float64),
        atol=0.01,
        rtol=0,
    )
