"""NoProp-CT's prediction target: the clean embedding (the paper) or the noise ε, with the loss
weight SNR′(t) for the one and SNR′(t)/SNR(t) for the other. Checked by value, for square and for
d > m embeddings (dim-20, prototypes): the same predictor gives the same loss under both, the
posterior mean is the optimum of both, the noise block's output is ε̂ ∈ ℝ^d itself (noise off
W_Embed's row space included), and inference turns a noise prediction back into the embedding
it implies and stays bounded."""

from __future__ import annotations

import pytest
import torch

from noprop_core import ct_loss, embedding_from_noise
from noprop_plugins.schedules.learnable_gamma import LearnableGammaConfig
from noprop_plugins.schedules.learnable_gamma import build as build_gamma

CLASSES, BATCH, ETA = 3, 4096, 0.7


@pytest.fixture(params=[CLASSES, 7], ids=["d=m", "d>m"])
def problem(request):
    torch.manual_seed(0)
    schedule = build_gamma(LearnableGammaConfig(name="learnable_gamma")).double()
    dim = request.param
    weight = torch.randn(CLASSES, dim, dtype=torch.float64) + 2 * torch.eye(CLASSES, dim, dtype=torch.float64)
    labels = torch.arange(BATCH) % CLASSES
    return schedule, weight, labels


def posterior_logits(z, t, schedule, weight, theta):
    """θ · log q(u_k | z, t) up to a constant: θ = 1 is the exact posterior over the classes."""
    alpha_bar = schedule.alpha_bar(t)[:, None, None]
    squared = (z[:, None, :] - alpha_bar.sqrt() * weight[None]).pow(2).sum(-1)
    return -theta * squared / (2 * (1 - alpha_bar[..., 0]))


def losses(problem, theta, target, seed=1):
    """ct_loss with a block that predicts û_θ = softmax(posterior logits)·W, or the ε̂ it implies."""
    schedule, weight, labels = problem

    def block(z, t):
        u_hat = posterior_logits(z, t, schedule, weight, theta).softmax(-1) @ weight
        if target == "embedding":
            return posterior_logits(z, t, schedule, weight, theta)
        alpha_bar = schedule.alpha_bar(t)[:, None]
        return (z - alpha_bar.sqrt() * u_hat) / (1 - alpha_bar).sqrt()  # the block returns ε̂ itself

    torch.manual_seed(seed)
    with torch.no_grad():
        return ct_loss(
            logits_fn=block,
            head=torch.nn.Identity(),
            embedding_weight=weight,
            labels=labels,
            schedule=schedule,
            eta=ETA,
            target=target,
        )


@pytest.mark.parametrize("theta", [0.3, 1.0, 2.5])
def test_the_same_predictor_gives_the_same_loss_under_both_targets(problem, theta):
    embedding, noise = losses(problem, theta, "embedding"), losses(problem, theta, "noise")
    torch.testing.assert_close(noise["denoise"], embedding["denoise"], rtol=1e-9, atol=0)
    torch.testing.assert_close(noise["ce"], embedding["ce"])


def test_the_noise_term_follows_its_formula(problem):
    schedule, weight, labels = problem
    recorded = {}

    def block(z, t):
        recorded.update(z=z, t=t)
        return torch.ones_like(z) * torch.arange(z.shape[1], dtype=z.dtype)  # ε̂ ∈ ℝ^d

    torch.manual_seed(5)
    terms = ct_loss(
        logits_fn=block,
        head=torch.nn.Identity(),
        embedding_weight=weight,
        labels=labels,
        schedule=schedule,
        eta=ETA,
        target="noise",
    )
    z, t = recorded["z"], recorded["t"]
    u = weight[labels]
    alpha_bar = schedule.alpha_bar(t)[:, None]
    noise = (z - alpha_bar.sqrt() * u) / (1 - alpha_bar).sqrt()  # the ε that made z
    noise_hat = torch.ones_like(z) * torch.arange(z.shape[1], dtype=z.dtype)
    with torch.no_grad():
        log_snr_slope = schedule.snr_derivative(t) / schedule.snr(t)
    expected = 0.5 * ETA * (log_snr_slope * (noise_hat - noise).pow(2).sum(-1)).mean()
    torch.testing.assert_close(terms["denoise"], expected)


@pytest.mark.parametrize("target", ["embedding", "noise"])
def test_the_posterior_mean_is_the_optimum_of_both(problem, target):
    thetas = [0.5, 0.8, 1.0, 1.25, 2.0]
    values = [losses(problem, theta, target)["denoise"].item() for theta in thetas]
    assert thetas[values.index(min(values))] == 1.0, dict(zip(thetas, values))


def test_embedding_from_noise_inverts_the_corruption():
    torch.manual_seed(2)
    u, noise = torch.randn(6, 4), torch.randn(6, 4)
    alpha_bar = torch.rand(6, 1) * 0.98 + 0.01
    z = alpha_bar.sqrt() * u + (1 - alpha_bar).sqrt() * noise
    torch.testing.assert_close(embedding_from_noise(z, noise, alpha_bar), u, rtol=1e-4, atol=1e-4)


def test_a_noise_block_that_knows_the_noise_has_zero_loss_when_d_exceeds_m():
    """ε has components outside W_Embed's row space when d > m; a block returning class weights
    over W's rows could never predict them (the loss would stay ≥ their energy)."""
    torch.manual_seed(0)
    schedule = build_gamma(LearnableGammaConfig(name="learnable_gamma")).double()
    weight = torch.randn(CLASSES, 20, dtype=torch.float64)
    labels = torch.arange(256) % CLASSES
    u = weight[labels]

    def oracle(z, t):
        alpha_bar = schedule.alpha_bar(t)[:, None]
        return (z - alpha_bar.sqrt() * u) / (1 - alpha_bar).sqrt()

    with torch.no_grad():
        terms = ct_loss(
            logits_fn=oracle,
            head=torch.nn.Identity(),
            embedding_weight=weight,
            labels=labels,
            schedule=schedule,
            eta=ETA,
            target="noise",
        )
    assert terms["denoise"].item() < 1e-18


@pytest.mark.parametrize("embedding", ["dim20", "prototype"])
def test_the_noise_variant_builds_a_d_dimensional_block_and_its_chain_stays_bounded(embedding):
    from noprop_core import TrainableEmbedding, VariantParts
    from noprop_plugins.heads.softmax.head import SoftmaxHead
    from noprop_plugins.variants.ct import CTConfig
    from noprop_plugins.variants.ct.model import NoPropCT

    torch.manual_seed(1)
    dim = 20 if embedding == "dim20" else 64  # prototypes: d = the 8×8 image size
    weight = torch.randn(CLASSES, dim)
    specs = []

    class Oracle(torch.nn.Module):
        """ε̂ as if the answer were class 0: the implied û is u_0 at every step."""

        def __init__(self, spec):
            super().__init__()
            specs.append(spec)
            self.scale = torch.nn.Parameter(torch.ones(()))

        def forward(self, images, z, t):
            alpha_bar = schedule.alpha_bar(t).to(z.dtype)[:, None]
            return self.scale * (z - alpha_bar.sqrt() * weight[0]) / (1 - alpha_bar).sqrt()

    # ends ±7: z_T holds almost no noise, so the chain's end is checked against u_0 itself
    schedule = build_gamma(LearnableGammaConfig(name="learnable_gamma", gamma_0=-7.0, gamma_1=7.0))
    parts = VariantParts(
        embedding=TrainableEmbedding(weight.clone()),
        schedule=schedule,
        image_shape=(1, 8, 8),
        num_classes=CLASSES,
        make_block=Oracle,
        make_head=lambda: SoftmaxHead(dim, CLASSES),
    )
    variant = NoPropCT(CTConfig(name="ct", target="noise", noise_form="free", steps=50), parts)
    assert specs[0].output_dim == dim and specs[0].outputs == dim
    with torch.no_grad():
        chain = variant.schedule.discretize(50)
        states = []
        variant.head = torch.nn.Identity()  # read the states themselves
        states = variant.trajectory(torch.zeros(200, 1, 8, 8), torch.Generator().manual_seed(0))
    final = states[-1]
    expected = chain.alpha_bar[-1].sqrt() * weight[0]
    assert max(state.norm(dim=-1).max().item() for state in states) < 3 * (weight[0].norm().item() + dim**0.5)
    assert (final - expected).norm(dim=-1).mean().item() < 0.2 * weight[0].norm().item()


@pytest.mark.parametrize("target", ["embedding", "noise"])
def test_denoise_trains_embedding_off_leaves_w_embed_to_ce_and_kl(problem, target):
    """With the switch off, the denoising term's gradient in W_Embed is zero and ce's and kl's are
    untouched; on (the paper), the denoising term trains W_Embed. The block's gradient is the same."""
    schedule, weight, labels = problem
    head = torch.nn.Linear(weight.shape[1], CLASSES).double()

    def block(z, t):
        if target == "noise":
            return torch.tanh(z) * (1 + t[:, None])  # an ε̂ ∈ ℝ^d varying with z and t
        return torch.stack([z[:, 0], -z[:, 1], t], dim=-1)

    gradients = {}
    for trains in (True, False):
        w = weight.clone().requires_grad_(True)
        torch.manual_seed(3)
        terms = ct_loss(
            logits_fn=block,
            head=head,
            embedding_weight=w,
            labels=labels,
            schedule=schedule,
            eta=ETA,
            target=target,
            denoise_trains_embedding=trains,
        )
        gradients[trains] = {
            name: torch.autograd.grad(terms[name], w, retain_graph=True, allow_unused=True)[0]
            for name in ("denoise", "ce", "kl")
        }
        gradients[trains]["value"] = terms["denoise"].detach()
    on, off = gradients[True], gradients[False]
    torch.testing.assert_close(on["value"], off["value"])  # the same term, by value
    assert on["denoise"].abs().max() > 1e-3
    assert off["denoise"] is None or off["denoise"].abs().max() == 0
    torch.testing.assert_close(on["ce"], off["ce"])
    torch.testing.assert_close(on["kl"], off["kl"])
    assert off["ce"].abs().max() > 1e-4 and off["kl"].abs().max() > 1e-4


def varying_logits(z, t):
    """Class logits that depend on z and t in a way no formula above reproduces by accident."""
    return torch.stack([z[:, 0] * (1 + t), -z[:, 1] + t, 0.5 * z[:, 2] - 2 * t], dim=-1)


def posterior_form_terms(problem, residual_scale, seed=7, trains=True):
    schedule, weight, labels = problem
    w = weight.clone().requires_grad_(True)
    recorded = {}

    def block(z, t):
        recorded.update(z=z, t=t)
        residual = residual_scale * torch.sin(3 * z) * (1 + t[:, None])
        return torch.cat([varying_logits(z, t), residual], dim=-1)

    torch.manual_seed(seed)
    terms = ct_loss(
        logits_fn=block,
        head=torch.nn.Identity(),
        embedding_weight=w,
        labels=labels,
        schedule=schedule,
        eta=ETA,
        target="noise",
        noise_form="posterior",
        denoise_trains_embedding=trains,
    )
    return terms, w, recorded


def test_the_posterior_form_recomputed_by_hand(problem):
    """ε̂ = (z − √ᾱ softmax(logits)·W)/√(1 − ᾱ) + r̂, weighed by SNR′/SNR against the ε that made z."""
    schedule, weight, labels = problem
    terms, _, recorded = posterior_form_terms(problem, residual_scale=0.4)
    z, t = recorded["z"].detach(), recorded["t"]
    with torch.no_grad():
        alpha_bar = schedule.alpha_bar(t)[:, None]
        noise = (z - alpha_bar.sqrt() * weight[labels]) / (1 - alpha_bar).sqrt()
        u_hat = varying_logits(z, t).softmax(-1) @ weight
        noise_hat = (z - alpha_bar.sqrt() * u_hat) / (1 - alpha_bar).sqrt() + 0.4 * torch.sin(3 * z) * (1 + t[:, None])
        weight_t = schedule.snr_derivative(t) / schedule.snr(t)
        expected = 0.5 * ETA * (weight_t * (noise_hat - noise).pow(2).sum(-1)).mean()
    torch.testing.assert_close(terms["denoise"].detach(), expected, rtol=1e-10, atol=0)


def test_the_posterior_form_with_no_residual_is_the_embedding_target_in_value_and_gradient(problem):
    """The same objective in the same parameters: the denoising term and its gradient in W_Embed
    (through z_t and through û) agree with the paper's embedding target for the same logits."""
    schedule, weight, labels = problem
    noise_terms, w_noise, _ = posterior_form_terms(problem, residual_scale=0.0)
    w_embedding = weight.clone().requires_grad_(True)
    torch.manual_seed(7)
    embedding_terms = ct_loss(
        logits_fn=varying_logits,
        head=torch.nn.Identity(),
        embedding_weight=w_embedding,
        labels=labels,
        schedule=schedule,
        eta=ETA,
        target="embedding",
    )
    torch.testing.assert_close(noise_terms["denoise"], embedding_terms["denoise"], rtol=1e-9, atol=0)
    (grad_noise,) = torch.autograd.grad(noise_terms["denoise"], w_noise)
    (grad_embedding,) = torch.autograd.grad(embedding_terms["denoise"], w_embedding)
    assert grad_embedding.abs().max() > 1e-3
    torch.testing.assert_close(grad_noise, grad_embedding, rtol=1e-7, atol=1e-12)


def test_the_posterior_form_predicts_noise_off_the_row_space_with_no_residual():
    """d > m: logits sure of the true class and r̂ = 0 give ε̂ = ε exactly, its components outside
    W_Embed's row space included (they come from z)."""
    torch.manual_seed(0)
    schedule = build_gamma(LearnableGammaConfig(name="learnable_gamma")).double()
    weight = torch.randn(CLASSES, 20, dtype=torch.float64)
    labels = torch.arange(256) % CLASSES

    def sure(z, t):
        return torch.cat([1e4 * torch.nn.functional.one_hot(labels, CLASSES).double(), torch.zeros_like(z)], dim=-1)

    with torch.no_grad():
        terms = ct_loss(
            logits_fn=sure,
            head=torch.nn.Identity(),
            embedding_weight=weight,
            labels=labels,
            schedule=schedule,
            eta=ETA,
            target="noise",
            noise_form="posterior",
        )
        free = ct_loss(
            logits_fn=lambda z, t: torch.zeros_like(z),
            head=torch.nn.Identity(),
            embedding_weight=weight,
            labels=labels,
            schedule=schedule,
            eta=ETA,
            target="noise",
        )
    assert terms["denoise"].item() < 1e-18 < free["denoise"].item()


def test_the_posterior_form_variant_starts_as_the_embedding_target_and_its_gate_opens_the_residual():
    """A noise-target variant in the posterior form builds a block of m + d outputs whose residual
    enters through a gate starting at 0: its inference chain is then the embedding target's for
    the same logits, step by step; opened, the residual moves the chain."""
    from noprop_core import TrainableEmbedding, VariantParts
    from noprop_plugins.heads.softmax.head import SoftmaxHead
    from noprop_plugins.variants.ct import CTConfig
    from noprop_plugins.variants.ct.model import NoPropCT

    dim = 7
    weight = torch.randn(CLASSES, dim, generator=torch.Generator().manual_seed(4))
    specs = []

    class Block(torch.nn.Module):
        def __init__(self, spec):
            super().__init__()
            specs.append(spec)
            self.mix = torch.nn.Linear(dim + 1, spec.outputs)

        def forward(self, images, z, t):
            return self.mix(torch.cat([z, t[:, None]], dim=-1)) * images.mean((1, 2, 3))[:, None]

    def variant(**settings):
        torch.manual_seed(2)
        schedule = build_gamma(LearnableGammaConfig(name="learnable_gamma"))
        parts = VariantParts(
            embedding=TrainableEmbedding(weight.clone()),
            schedule=schedule,
            image_shape=(1, 4, 4),
            num_classes=CLASSES,
            make_block=Block,
            make_head=lambda: SoftmaxHead(dim, CLASSES),
        )
        return NoPropCT(CTConfig(name="ct", steps=20, sampler="euler", **settings), parts)

    images = torch.rand(16, 1, 4, 4) + 0.5
    embedding = variant()
    posterior = variant(target="noise", noise_form="posterior")
    assert specs[0].outputs == CLASSES and specs[1].outputs == CLASSES + dim
    assert posterior.residual_gate.item() == 0 and posterior.residual_gate in posterior.shared_parameters()
    with torch.no_grad():
        posterior.block.mix.weight[:CLASSES] = embedding.block.mix.weight
        posterior.block.mix.bias[:CLASSES] = embedding.block.mix.bias
        posterior.head.load_state_dict(embedding.head.state_dict())
        expected = embedding.trajectory(images, torch.Generator().manual_seed(0))
        closed = posterior.trajectory(images, torch.Generator().manual_seed(0))
        posterior.residual_gate.fill_(0.5)
        opened = posterior.trajectory(images, torch.Generator().manual_seed(0))
    for mine, theirs in zip(closed, expected):
        torch.testing.assert_close(mine, theirs, rtol=1e-4, atol=1e-5)
    assert (opened[-1] - expected[-1]).abs().max() > 1e-2


def test_an_unknown_noise_form_is_named_in_the_error():
    from noprop_core import noise_output_dim, predicted_noise

    expected = r"unknown noise form 'v'; expected one of \('free', 'posterior'\)"
    with pytest.raises(ValueError, match=expected):
        noise_output_dim("v", 3, 5)
    with pytest.raises(ValueError, match=expected):
        predicted_noise(torch.zeros(2, 8), torch.zeros(2, 5), torch.zeros(3, 5), torch.full((2, 1), 0.5), "v")
    assert (noise_output_dim("free", 3, 5), noise_output_dim("posterior", 3, 5)) == (5, 8)


def test_the_embedding_targets_gradient_in_w_embed_recomputed_by_hand(problem):
    """Through z_t = √ᾱ u_y + √(1 − ᾱ) ε *and* through û = softmax(logits)·W: the draws repeated
    (t, then ε, as ct_loss makes them) and the term rebuilt independently."""
    schedule, weight, labels = problem
    w = weight.clone().requires_grad_(True)
    torch.manual_seed(21)
    terms = ct_loss(
        logits_fn=varying_logits,
        head=torch.nn.Identity(),
        embedding_weight=w,
        labels=labels,
        schedule=schedule,
        eta=ETA,
        target="embedding",
    )
    (grad,) = torch.autograd.grad(terms["denoise"], w)

    v = weight.clone().requires_grad_(True)
    torch.manual_seed(21)
    t = torch.rand(len(labels))  # float32, as ct_times draws it
    noise = torch.randn(len(labels), v.shape[1], dtype=torch.float64)
    alpha_bar = schedule.alpha_bar(t).detach()[:, None]
    z = alpha_bar.sqrt() * v[labels] + (1 - alpha_bar).sqrt() * noise
    u_hat = varying_logits(z, t).softmax(-1) @ v
    slope = schedule.snr_derivative(t).detach()
    expected = 0.5 * ETA * (slope * (u_hat - v[labels]).pow(2).sum(-1)).mean()
    (expected_grad,) = torch.autograd.grad(expected, v)
    torch.testing.assert_close(terms["denoise"].detach(), expected.detach(), rtol=1e-9, atol=0)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-7, atol=1e-12)
