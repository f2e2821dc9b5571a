"""The variants' own loss and inference code by value: what each passes to the shared objectives
and samplers, recomputed independently (DT's stacked and per-block paths, CT's prediction
target and sampler, FM's anchor and solver, the back-propagation baseline's mixing chain), and
the radial head with a non-identity W_Embed."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from helpers import small_dt
from noprop_core import ct_loss, dt_loss, fm_loss, integrate
from noprop_core.model.variant import VariantParts
from noprop_plugins.backbones.cnn import CnnConfig
from noprop_plugins.backbones.cnn import build as build_cnn
from noprop_plugins.embeddings.onehot.embedding import OneHotEmbedding
from noprop_plugins.heads.radial import RadialHeadConfig
from noprop_plugins.heads.radial import build as build_radial
from noprop_plugins.heads.softmax.head import SoftmaxHead
from noprop_plugins.schedules.cosine.schedule import CosineSchedule
from noprop_plugins.variants.backprop import BackpropConfig
from noprop_plugins.variants.backprop.model import BackpropChain
from noprop_plugins.variants.ct import CTConfig
from noprop_plugins.variants.ct.model import NoPropCT
from noprop_plugins.variants.fm import FMConfig
from noprop_plugins.variants.fm.model import NoPropFM

CLASSES, DIM = 4, 6


class Learned(nn.Module):
    """A learned, non-orthogonal W_Embed (the `learned` plugin's type, without its init)."""

    def __init__(self, weight):
        super().__init__()
        self.weight = nn.Parameter(weight)

    @property
    def dim(self):
        return self.weight.shape[1]

    @property
    def learnable(self):
        return True


def parts(embedding=None):
    embedding = embedding or OneHotEmbedding(CLASSES)
    return VariantParts(
        embedding=embedding,
        schedule=CosineSchedule(),
        image_shape=(1, 8, 8),
        num_classes=CLASSES,
        make_block=lambda spec: build_cnn(CnnConfig(name="cnn", dropout=0.0), spec),
        make_head=lambda: SoftmaxHead(embedding.dim, CLASSES),
    )


def batch(size=12):
    torch.manual_seed(2)
    return torch.randn(size, 1, 8, 8), torch.randint(0, CLASSES, (size,))


def test_dt_stacked_losses_are_each_blocks_own_loss_with_the_same_draws():
    variant = small_dt(timesteps=3, num_classes=CLASSES, fused=True, eta=0.6).eval()  # eval: no dropout
    images, labels = batch()
    noise = variant.draw_noise(labels, torch.Generator().manual_seed(4))
    assert len(noise) == 2 and all(n.shape == (3, len(labels), CLASSES) for n in noise)
    replay = torch.randn((2, 3, len(labels), CLASSES), generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(torch.stack(noise), replay)
    with torch.no_grad():
        given = variant.fused_losses(images, labels, noise=noise)
        drawn = variant.fused_losses(images, labels, generator=torch.Generator().manual_seed(4))
        for k, unit in enumerate(variant.units):
            block = variant.blocks[k]
            own = dt_loss(
                denoiser=lambda z, block=block: block(images, z[0]).unsqueeze(0),
                head=variant.head,
                embedding_weight=variant.embedding.weight,
                labels=labels,
                chain=variant.chain(),
                t=torch.tensor([k + 1]),
                eta=0.6,
                noise=(noise[0][k : k + 1], noise[1][k : k + 1]),
            )
            for term in ("ce", "kl", "denoise"):
                torch.testing.assert_close(given[unit][term], own[term][0], rtol=1e-5, atol=1e-6)
                torch.testing.assert_close(drawn[unit][term], given[unit][term], rtol=1e-5, atol=1e-6)


def test_dt_block_loss_is_its_chain_position():
    """`losses(unit)` evaluates block t at t (its ᾱ_{t−1} and SNR weight), with the variant's η."""
    variant = small_dt(timesteps=3, num_classes=CLASSES, eta=0.6).eval()
    images, labels = batch()
    for k, unit in enumerate(variant.units):
        torch.manual_seed(8)
        with torch.no_grad():
            mine = variant.losses(images, labels, unit)
        torch.manual_seed(8)
        block = variant.blocks[k]
        with torch.no_grad():
            own = dt_loss(
                denoiser=lambda z, block=block: block(images, z[0]).unsqueeze(0),
                head=variant.head,
                embedding_weight=variant.embedding.weight,
                labels=labels,
                chain=variant.chain(),
                t=torch.tensor([k + 1]),
                eta=0.6,
            )
        for term in ("ce", "kl", "denoise"):
            torch.testing.assert_close(mine[term], own[term][0])


def with_the_same_draws(variant, images, labels, objective):
    """The single-block variant's losses and ``objective(logits_fn)`` of its block, from one seed."""
    torch.manual_seed(8)
    with torch.no_grad():
        mine = variant.losses(images, labels, variant.units[0])
    torch.manual_seed(8)
    with torch.no_grad():
        own = objective(lambda z, t: variant.block(images, z, t))
    return mine, own


@pytest.mark.parametrize(("target", "form"), [("embedding", "free"), ("noise", "free"), ("noise", "posterior")])
def test_ct_loss_is_ct_loss_of_its_block_and_target(target, form):
    torch.manual_seed(0)
    embedding = Learned(torch.randn(CLASSES, DIM)) if form == "posterior" else None  # d ≠ m, W not the identity
    # The posterior form also draws t by importance: the variant must pass its time sampling on.
    sampling = "importance" if form == "posterior" else "uniform"
    config = CTConfig(name="ct", eta=0.4, target=target, noise_form=form, time_sampling=sampling)
    variant = NoPropCT(config, parts(embedding)).eval()
    if variant.residual_gate is not None:
        with torch.no_grad():
            variant.residual_gate.fill_(0.3)  # open: the residual must reach the loss, gated

    def gated(logits_fn):  # the posterior form's output: m logits, then 0.3 × the residual
        if variant.residual_gate is None:
            return logits_fn
        return lambda z, t: (
            logits_fn(z, t) * torch.cat([torch.ones(CLASSES), torch.full((variant.embedding.dim,), 0.3)])
        )

    images, labels = batch()
    mine, own = with_the_same_draws(
        variant,
        images,
        labels,
        lambda logits_fn: ct_loss(
            logits_fn=gated(logits_fn),
            head=variant.head,
            embedding_weight=variant.embedding.weight,
            labels=labels,
            schedule=variant.schedule,
            eta=0.4,
            target=target,
            noise_form=form,
            time_sampling=sampling,
        ),
    )
    for term in own:
        torch.testing.assert_close(mine[term], own[term])


@pytest.mark.parametrize("learned", [False, True])
def test_fm_loss_anchors_exactly_the_learned_embeddings(learned):
    torch.manual_seed(0)
    embedding = Learned(torch.randn(CLASSES, DIM)) if learned else OneHotEmbedding(CLASSES)
    variant = NoPropFM(FMConfig(name="fm", sigma=0.2), parts(embedding)).eval()
    images, labels = batch()
    mine, own = with_the_same_draws(
        variant,
        images,
        labels,
        lambda logits_fn: fm_loss(
            logits_fn=logits_fn,
            head=variant.head,
            embedding_weight=variant.embedding.weight,
            labels=labels,
            sigma=0.2,
            anchor=learned,
        ),
    )
    assert mine.keys() == own.keys() == ({"flow", "anchor"} if learned else {"flow"})
    for term in own:
        torch.testing.assert_close(mine[term], own[term])


@pytest.mark.parametrize("sampler", ["euler", "heun"])
def test_fm_integrates_its_velocity_with_its_solver(sampler):
    torch.manual_seed(0)
    variant = NoPropFM(FMConfig(name="fm", steps=3, sampler=sampler), parts()).eval()
    assert variant.sampler == sampler and variant.steps == 3
    images, _ = batch(5)
    with torch.no_grad():
        scores = variant.trajectory(images, torch.Generator().manual_seed(1))
        z0 = variant.initial_noise(images, torch.Generator().manual_seed(1))
        states = integrate(
            lambda z, t: variant.block(images, z, t.expand(len(z))) @ variant.embedding.weight, z0, 3, sampler
        )
    assert len(scores) == 4
    torch.testing.assert_close(scores[-1], variant.nearest_embedding_scores(states[-1]))


def test_backprop_chain_mixes_with_tanh_of_its_weights():
    """z_t = (1 − α_t) z_{t−1} + α_t û_θt(z_{t−1}, x), α_t = tanh(w_t), from z_0 ~ N(0, I)."""
    torch.manual_seed(0)
    variant = BackpropChain(BackpropConfig(name="backprop", timesteps=3), parts()).eval()
    with torch.no_grad():
        variant.mixing.copy_(torch.tensor([0.3, -0.8, 1.7]))
    images, labels = batch(5)
    with torch.no_grad():
        states = variant.chain(images, torch.Generator().manual_seed(6))
        z = torch.randn((5, CLASSES), generator=torch.Generator().manual_seed(6))
        torch.testing.assert_close(states[0], z)
        for k, w in enumerate([0.3, -0.8, 1.7]):
            u_hat = variant.blocks[k](images, z).softmax(-1) @ variant.embedding.weight
            z = (1 - math.tanh(w)) * z + math.tanh(w) * u_hat
            torch.testing.assert_close(states[k + 1], z)
        loss = variant.losses(images, labels, "model")["ce"]
    assert variant.diagnostics()["mixing_alpha"] == pytest.approx([math.tanh(w) for w in (0.3, -0.8, 1.7)])
    assert len(states) == 4 and loss.ndim == 0


def test_radial_head_with_a_learned_embedding():
    """Eq. 15–16: ỹ = softmax(Linear(z))·W_Embed, logit_k = −‖ỹ − u_k‖²/(2σ²)."""
    torch.manual_seed(0)
    embedding = Learned(torch.randn(CLASSES, DIM) * 2 + 0.5)
    head = build_radial(RadialHeadConfig(name="radial", sigma=0.7), embedding=embedding, num_classes=CLASSES)
    z = torch.randn(9, DIM)
    with torch.no_grad():
        y_tilde = (z @ head.linear.weight.T + head.linear.bias).softmax(-1) @ embedding.weight
        expected = -((y_tilde[:, None, :] - embedding.weight[None]) ** 2).sum(-1) / (2 * 0.7**2)
        torch.testing.assert_close(head(z), expected, rtol=1e-5, atol=1e-5)
    assert head.linear_layer() is head.linear
    stacked = torch.randn(2, 9, DIM)  # stacked DT blocks read z_T as (K, batch, d): the same per block
    with torch.no_grad():
        torch.testing.assert_close(head(stacked), torch.stack([head(stacked[0]), head(stacked[1])]))
    assert "_embedding" not in dict(head.named_modules())  # W_Embed is the variant's, not the head's


def test_softmax_head_is_a_linear_layer_of_the_embedding_dimension():
    head = SoftmaxHead(DIM, CLASSES)
    assert head.linear_layer() is head and (head.in_features, head.out_features) == (DIM, CLASSES)
    z = torch.randn(3, DIM)
    torch.testing.assert_close(head(z), F.linear(z, head.weight, head.bias))


def test_dt_stacked_inputs_are_each_blocks_z_prev():
    """What block t sees in a stacked step: √ᾱ_{t−1} u_y + √(1 − ᾱ_{t−1}) ε_t, t = 1 … T."""
    variant = small_dt(timesteps=3, num_classes=CLASSES, fused=True)
    _, labels = batch()
    noise = variant.draw_noise(labels, torch.Generator().manual_seed(1))
    inputs = variant.stacked_inputs(labels, noise)
    ab = variant.chain().alpha_bar
    u = variant.embedding.weight[labels]
    for t in range(1, 4):
        torch.testing.assert_close(inputs[t - 1], ab[t - 1].sqrt() * u + (1 - ab[t - 1]).sqrt() * noise[0][t - 1])


def test_dt_stacked_step_draws_dropout_from_the_given_generator_and_hands_back_gradients():
    variant = small_dt(timesteps=3, num_classes=CLASSES, fused=True).train()  # dropout 0.2 active
    images, labels = batch()
    first = variant.fused_losses(images, labels, generator=torch.Generator().manual_seed(4))
    torch.randn(100)  # the global generator moves on; the given one alone must decide
    again = variant.fused_losses(images, labels, generator=torch.Generator().manual_seed(4))
    for unit in variant.units:
        torch.testing.assert_close(again[unit]["denoise"], first[unit]["denoise"])
    sum(sum(terms.values()) for terms in first.values()).backward()
    variant.after_backward()
    for block in variant.blocks:
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in block.fusion.parameters())


def test_a_head_without_a_linear_layer_says_so():
    from noprop_core.model.heads import Head, start_at_nearest_embedding

    class Bare(Head):
        pass

    with pytest.raises(NotImplementedError, match="^Bare has no linear layer to start from$"):
        start_at_nearest_embedding(Bare(), torch.eye(3))


def test_dt_inference_runs_block_t_at_step_t():
    from noprop_core import convex_denoise, dt_chain

    variant = small_dt(timesteps=3, num_classes=CLASSES).eval()
    images, _ = batch(5)
    weight = variant.embedding.weight
    with torch.no_grad():
        states = variant.inference_states(images, torch.Generator().manual_seed(2))
        expected = dt_chain(
            lambda t, z: convex_denoise(variant.blocks[t - 1](images, z), weight),
            variant.chain(),
            5,
            CLASSES,
            device=images.device,
            generator=torch.Generator().manual_seed(2),
        )
        scores = variant.trajectory(images, torch.Generator().manual_seed(2))
    for state, want, score in zip(states, expected, scores, strict=True):
        torch.testing.assert_close(state, want)
        torch.testing.assert_close(score, variant.head(want))


@pytest.mark.parametrize(("target", "form"), [("embedding", "free"), ("noise", "free"), ("noise", "posterior")])
@pytest.mark.parametrize("sampler", ["euler", "heun"])
def test_ct_ode_inference_reads_its_target_and_solver(target, form, sampler):
    """û = softmax(logits)·W (target embedding) or (z − √(1 − ᾱ) ε̂)/√ᾱ (target noise) with ε̂ the
    block's output (free form) or (z − √ᾱ softmax(logits)·W)/√(1 − ᾱ) + g·r̂ (posterior form, g = 0.3,
    a learned W with d ≠ m), through the probability-flow ODE with the chosen solver."""
    from noprop_core import integrate, probability_flow

    torch.manual_seed(0)
    embedding = Learned(torch.randn(CLASSES, DIM)) if form == "posterior" else None
    config = CTConfig(name="ct", steps=3, sampler=sampler, target=target, noise_form=form)
    variant = NoPropCT(config, parts(embedding)).eval()
    assert (variant.sampler, variant.steps, variant.target) == (sampler, 3, target)
    if variant.residual_gate is not None:
        with torch.no_grad():
            variant.residual_gate.fill_(0.3)
    images, _ = batch(5)
    weight = variant.embedding.weight

    def u_hat(z, t):
        output = variant.block(images, z, t)
        if target == "embedding":
            return output.softmax(-1) @ weight
        alpha_bar = variant.schedule.alpha_bar(t)[:, None]
        noise_hat = output
        if form == "posterior":
            logits, residual = output[:, :CLASSES], output[:, CLASSES:]
            noise_hat = (z - alpha_bar.sqrt() * (logits.softmax(-1) @ weight)) / (1 - alpha_bar).sqrt() + 0.3 * residual
        alpha_bar = alpha_bar.clamp_min(1e-6)  # the documented floor at t = 0
        return (z - (1 - alpha_bar).sqrt() * noise_hat) / alpha_bar.sqrt()

    with torch.no_grad():
        scores = variant.trajectory(images, torch.Generator().manual_seed(3))
        z0 = variant.initial_noise(images, torch.Generator().manual_seed(3))
        states = integrate(probability_flow(u_hat, variant.schedule), z0, 3, sampler)
    torch.testing.assert_close(scores[-1], variant.head(states[-1]), rtol=1e-4, atol=1e-4)


def test_ct_ancestral_sampler_evaluates_step_k_at_its_start_time():
    """Step k of S goes from z at t = (k − 1)/S to the next state; the block sees t = (k − 1)/S."""
    from noprop_core import convex_denoise, dt_chain

    torch.manual_seed(0)
    variant = NoPropCT(CTConfig(name="ct", steps=4, sampler="ancestral"), parts()).eval()
    images, _ = batch(5)
    seen = []
    block = variant.block

    class Recording(nn.Module):
        def forward(self, images_, z, t):
            seen.append(t.clone())
            return block(images_, z, t)

    with torch.no_grad():
        variant.block = Recording()
        try:
            scores = variant.trajectory(images, torch.Generator().manual_seed(3))
        finally:
            variant.block = block
        expected = dt_chain(
            lambda k, z: convex_denoise(block(images, z, torch.full((5,), (k - 1) / 4)), variant.embedding.weight),
            variant.schedule.discretize(4),
            5,
            CLASSES,
            device=images.device,
            generator=torch.Generator().manual_seed(3),
        )
    assert [t.unique().tolist() for t in seen] == [[0.0], [0.25], [0.5], [0.75]]
    torch.testing.assert_close(scores[-1], variant.head(expected[-1]))


def test_dt_order_and_chain_on_the_cpu():
    """Built outside the engine, `order = "auto"` is Algorithm 1 and nothing is stacked; the fixed
    chain is computed once; a learnable schedule is re-discretised on every call."""
    from noprop_plugins.schedules.learnable_gamma.schedule import LearnableGammaSchedule

    auto = small_dt(timesteps=3, num_classes=CLASSES)
    assert (auto.update_order, auto.runs_stacked) == ("sequential", False)
    simultaneous = small_dt(timesteps=3, num_classes=CLASSES, order="simultaneous")
    assert (simultaneous.update_order, simultaneous.runs_stacked) == ("simultaneous", False)
    assert auto.chain() is auto.chain()
    learnable = small_dt(timesteps=3, num_classes=CLASSES)
    learnable.schedule = LearnableGammaSchedule(hidden=4)
    first = learnable.chain()
    assert first is not learnable.chain() and first.steps == 3
    torch.testing.assert_close(first.alpha_bar, learnable.schedule.discretize(3).alpha_bar)


def test_adjoint_parameters_swap_the_image_encoder_for_its_features():
    """The adjoint solve returns gradients for the features instead of the encoder that made them
    (so the encoder is not reached twice); without features, or features without a graph, for all."""
    from noprop_plugins.variants.adjoint import AdjointConfig
    from noprop_plugins.variants.adjoint.model import AdjointODE, adjoint_parameters

    torch.manual_seed(0)
    variant = AdjointODE(AdjointConfig(name="adjoint", steps=4), parts())
    trainable = [p for p in variant.parameters() if p.requires_grad]
    images, _ = batch(3)
    features = variant.block.encode_image(images)
    encoder = {id(p) for p in variant.block.image_module().parameters()}
    listed = adjoint_parameters(variant, features)
    assert listed[-1] is features
    assert [id(p) for p in listed[:-1]] == [id(p) for p in trainable if id(p) not in encoder]
    assert len(encoder) > 0 and len(listed) - 1 == len(trainable) - len(encoder)
    assert adjoint_parameters(variant, None) == tuple(trainable)
    assert adjoint_parameters(variant, features.detach()) == tuple(trainable)


def test_dt_stacked_step_without_a_generator_works_on_an_ungrouped_image_path():
    """Backbones whose image path is not grouped (ResNet, ViT) take no generators: none is passed."""
    variant = small_dt(timesteps=3, num_classes=CLASSES, fused=True).eval()
    variant.stacked.grouped_image_path = False  # the plain vmap path those backbones take
    images, labels = batch()
    noise = variant.draw_noise(labels, torch.Generator().manual_seed(4))
    with torch.no_grad():
        plain = variant.fused_losses(images, labels, noise=noise)
    variant.stacked.grouped_image_path = True
    with torch.no_grad():
        grouped = variant.fused_losses(images, labels, noise=noise)
    for unit in variant.units:
        torch.testing.assert_close(plain[unit]["denoise"], grouped[unit]["denoise"], rtol=1e-4, atol=1e-5)
