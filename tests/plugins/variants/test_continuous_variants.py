"""Continuous time: the learnable γ schedule, NoProp-CT and -FM objectives, ODE samplers,
and the two baselines (whose gradients must flow through the chain)."""

from __future__ import annotations

import math

import attrs
import pytest
import torch
from torch import nn

from noprop_core.diffusion.objectives import ct_loss, fm_loss
from noprop_core.diffusion.samplers import integrate, probability_flow
from noprop_core.model.variant import VariantParts
from noprop_plugins.backbones.cnn import CnnConfig
from noprop_plugins.backbones.cnn import build as build_cnn
from noprop_plugins.embeddings.onehot.embedding import OneHotEmbedding
from noprop_plugins.heads.softmax.head import SoftmaxHead
from noprop_plugins.schedules.cosine.schedule import CosineSchedule
from noprop_plugins.schedules.learnable_gamma.schedule import LearnableGammaSchedule
from noprop_plugins.variants.adjoint import AdjointConfig
from noprop_plugins.variants.adjoint.model import AdjointODE, VectorField
from noprop_plugins.variants.backprop import BackpropConfig
from noprop_plugins.variants.backprop.model import BackpropChain
from noprop_plugins.variants.ct import CTConfig
from noprop_plugins.variants.ct.model import NoPropCT
from noprop_plugins.variants.fm import FMConfig
from noprop_plugins.variants.fm.model import NoPropFM


def parts(schedule=None, classes=10):
    return VariantParts(
        embedding=OneHotEmbedding(classes),
        schedule=schedule or CosineSchedule(),
        image_shape=(1, 8, 8),
        num_classes=classes,
        make_block=lambda spec: build_cnn(CnnConfig(name="cnn", dropout=0.0), spec),
        make_head=lambda: SoftmaxHead(classes, classes),
    )


def scrambled_gamma(seed: int) -> LearnableGammaSchedule:
    """A learnable schedule with random (also negative) raw parameters."""
    torch.manual_seed(seed)
    schedule = LearnableGammaSchedule(gamma_0=-5.0, gamma_1=6.0, hidden=16)
    with torch.no_grad():
        for parameter in schedule.network.parameters():
            parameter.copy_(torch.randn_like(parameter) * 3)
    return schedule


# -- learnable γ ------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_gamma_is_strictly_decreasing_for_any_parameters(seed):
    schedule = scrambled_gamma(seed)
    gamma = schedule.gamma(torch.linspace(0, 1, 2001, dtype=torch.float64))
    assert torch.all(gamma[1:] < gamma[:-1])
    snr_prime = schedule.snr_derivative(torch.linspace(0, 1, 101))
    assert torch.all(snr_prime > 0)


def test_gamma_endpoints_are_exact():
    schedule = scrambled_gamma(0)
    ends = schedule.gamma(torch.tensor([0.0, 1.0], dtype=torch.float64))
    assert ends[0].item() == pytest.approx(6.0, abs=1e-5)  # γ(0) = γ_1
    assert ends[1].item() == pytest.approx(-5.0, abs=1e-6)  # γ(1) = γ_0
    t = torch.tensor([0.3])
    assert schedule.alpha_bar(t).item() == pytest.approx(torch.sigmoid(-schedule.gamma(t)).item())
    assert schedule.snr(t).item() == pytest.approx(math.exp(-schedule.gamma(t).item()), rel=1e-5)


def test_snr_derivative_matches_a_finite_difference():
    schedule = scrambled_gamma(1).double()
    t = torch.linspace(0.05, 0.95, 10, dtype=torch.float64)
    h = 1e-6
    finite = (schedule.snr(t + h) - schedule.snr(t - h)) / (2 * h)
    torch.testing.assert_close(schedule.snr_derivative(t), finite, rtol=1e-5, atol=1e-8)


def test_ct_weight_is_the_limit_of_dt_weights():
    # T·(SNR(t) − SNR(t − 1/T)) → SNR′(t) as T → ∞ (paper Eq. 59–60), on the same schedule.
    schedule = scrambled_gamma(2).double()
    t = torch.tensor([0.2, 0.5, 0.8], dtype=torch.float64)
    errors = []
    for steps in (50, 500, 5000):
        chain = schedule.discretize(steps)
        index = torch.round(t * steps).long()
        dt_weight = steps * chain.snr_weight.double()[index - 1]
        errors.append((dt_weight - schedule.snr_derivative(t)).abs().max().item())
    assert errors[2] < errors[1] < errors[0]
    torch.testing.assert_close(dt_weight, schedule.snr_derivative(t), rtol=2e-3, atol=0)


def test_the_schedule_learns_through_the_ct_loss():
    variant = NoPropCT(CTConfig(name="ct"), parts(LearnableGammaSchedule(hidden=8)))
    images, labels = torch.randn(8, 1, 8, 8), torch.randint(0, 10, (8,))
    sum(variant.losses(images, labels, "block").values()).backward()
    schedule_grads = [p.grad for p in variant.schedule.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in schedule_grads)
    assert any(g.abs().sum() > 0 for g in schedule_grads)
    assert {id(p) for p in variant.schedule.parameters()} <= {id(p) for p in variant.shared_parameters()}


# -- objectives ------------------------------------------------------------------------------


def test_ct_loss_terms_follow_their_formulas():
    torch.manual_seed(0)
    schedule, weight = scrambled_gamma(3), torch.eye(4)
    labels = torch.arange(4000) % 4
    seen = {}

    def logits_fn(z, t):
        seen["z"], seen["t"] = z.detach(), t.detach()
        return torch.zeros(len(z), 4)

    head = nn.Linear(4, 4)
    terms = ct_loss(logits_fn=logits_fn, head=head, embedding_weight=weight, labels=labels, schedule=schedule, eta=1.0)
    u, t = weight[labels], seen["t"]
    u_hat = torch.full((4,), 0.25)  # softmax of zero logits · I
    expected = 0.5 * (schedule.snr_derivative(t) * (u_hat - u).pow(2).sum(-1)).mean()
    torch.testing.assert_close(terms["denoise"], expected.detach(), rtol=1e-5, atol=1e-6)
    assert 0.4 < t.mean() < 0.6 and t.min() >= 0 and t.max() <= 1  # t ~ U(0, 1) per example
    residual = (seen["z"] - schedule.alpha_bar(t)[:, None].sqrt() * u) / (1 - schedule.alpha_bar(t))[:, None].sqrt()
    assert residual.std().item() == pytest.approx(1.0, rel=0.05)  # z_t ~ q(z_t | y)
    assert not seen["z"].requires_grad  # the block's input carries no gradient from anywhere


@pytest.mark.parametrize("trains", [True, False])
def test_ct_passes_denoise_trains_embedding_to_its_loss(trains):
    from noprop_core import TrainableEmbedding

    torch.manual_seed(0)
    variant_parts = attrs.evolve(
        parts(LearnableGammaSchedule(gamma_0=-3.0, gamma_1=3.0)), embedding=TrainableEmbedding(torch.randn(10, 10))
    )
    config = CTConfig(name="ct", target="noise", denoise_trains_embedding=trains)
    model = NoPropCT(config, variant_parts)
    images, labels = torch.randn(16, 1, 8, 8), torch.arange(16) % 10
    terms = model.losses(images, labels, "all")
    (gradient,) = torch.autograd.grad(terms["denoise"], model.embedding.weight, allow_unused=True)
    assert (gradient is not None and bool(gradient.abs().max() > 0)) is trains


def test_fm_target_is_the_conditional_vector_field():
    torch.manual_seed(0)
    weight, labels = torch.eye(5), torch.arange(100) % 5

    def exact_field(z_t, t):  # with σ = 0: z_1 − z_0 = (z_1 − z_t) / (1 − t); logits·I = v
        z_1 = weight[labels]
        return (z_1 - z_t) / (1 - t)[:, None]

    head = nn.Linear(5, 5)
    terms = fm_loss(logits_fn=exact_field, head=head, embedding_weight=weight, labels=labels, sigma=0.0, anchor=False)
    assert set(terms) == {"flow"}
    assert terms["flow"].item() < 1e-8
    wrong = fm_loss(
        logits_fn=lambda z, t: torch.zeros_like(z),
        head=head,
        embedding_weight=weight,
        labels=labels,
        sigma=0.0,
        anchor=False,
    )
    assert wrong["flow"].item() == pytest.approx(6.0, rel=0.2)  # E‖u_y − z_0‖² = ‖u_y‖² + d = 1 + 5
    anchored = fm_loss(logits_fn=exact_field, head=head, embedding_weight=weight, labels=labels, sigma=0.0, anchor=True)
    assert "anchor" in anchored


# -- samplers --------------------------------------------------------------------------------


def test_ode_solvers_converge_at_first_and_second_order():
    # dz/dt = −2 t z  ⇒  z(1) = z(0) e^{−1}; halving the step must halve (Euler) or quarter (Heun) the error.
    z_0 = torch.tensor([1.0, -2.0], dtype=torch.float64)
    exact = z_0 * math.exp(-1.0)
    for method, order in (("euler", 1), ("heun", 2)):
        errors = [
            (integrate(lambda z, t: -2 * t * z, z_0, steps, method)[-1] - exact).abs().max().item()
            for steps in (20, 40, 80)
        ]
        ratios = [errors[0] / errors[1], errors[1] / errors[2]]
        assert all(abs(math.log2(r) - order) < 0.15 for r in ratios), (method, errors)


@pytest.mark.parametrize("schedule", [CosineSchedule(), scrambled_gamma(4)], ids=["cosine", "learnable_gamma"])
def test_probability_flow_with_a_perfect_denoiser_keeps_the_noise_fixed(schedule):
    # With û = u the flow is z(t) = √ᾱ(t) u + √(1 − ᾱ(t)) ε for a fixed ε (DDIM's property).
    schedule = schedule.double() if hasattr(schedule, "network") else schedule
    u = torch.tensor([[0.0, 1.0, 0.0]], dtype=torch.float64)
    epsilon = torch.tensor([[0.3, -1.2, 0.5]], dtype=torch.float64)
    ab = schedule.alpha_bar(torch.tensor([0.0, 1.0], dtype=torch.float64)).detach()
    z_0 = ab[0].sqrt() * u + (1 - ab[0]).sqrt() * epsilon
    with torch.no_grad():
        flow = probability_flow(lambda z, t: u.expand_as(z), schedule)
        z_1 = integrate(lambda z, t: flow(z, t).double(), z_0, 400, "heun")[-1]
    torch.testing.assert_close(z_1, ab[1].sqrt() * u + (1 - ab[1]).sqrt() * epsilon, rtol=0, atol=2e-3)


@pytest.mark.parametrize("sampler", ["ancestral", "euler", "heun"])
def test_ct_predicts_with_each_sampler(sampler):
    torch.manual_seed(0)
    variant = NoPropCT(CTConfig(name="ct", steps=5, sampler=sampler), parts(LearnableGammaSchedule(hidden=8))).eval()
    with torch.no_grad():
        scores = variant.predict(torch.randn(6, 1, 8, 8), torch.Generator().manual_seed(0))
    assert scores.shape == (6, 10) and torch.isfinite(scores).all()


def test_fm_predicts_the_nearest_class_embedding():
    variant = NoPropFM(FMConfig(name="fm", steps=4), parts()).eval()
    z = torch.tensor([[0.9, 0.1, 0, 0, 0, 0, 0, 0, 0, 0.2]])
    assert variant.nearest_embedding_scores(z).argmax().item() == 0


# -- baselines: gradients must flow through the chain ----------------------------------------


def test_backprop_baseline_trains_every_block_through_the_chain():
    torch.manual_seed(0)
    variant = BackpropChain(BackpropConfig(name="backprop", timesteps=3), parts())
    variant.losses(torch.randn(8, 1, 8, 8), torch.randint(0, 10, (8,)), "model")["ce"].backward()
    for block in variant.blocks:  # the first block's gradient crosses blocks 2 and 3
        assert block.fusion[0].weight.grad.abs().sum() > 0
    assert variant.mixing.grad.abs().sum() > 0
    assert variant.shared_parameters() == []


def test_backprop_diagnostics_are_its_mixing_weights_and_are_tracked_per_t():
    from noprop_core.engine.training.records import EpochRecord
    from noprop_core.engine.training.tracking import Tracker, TrainingTracking

    variant = BackpropChain(BackpropConfig(name="backprop", timesteps=3, alpha_init=0.25), parts())
    assert variant.diagnostics() == {"mixing_alpha": pytest.approx([0.25] * 3)}

    class Recording(Tracker):
        def __init__(self):
            self.calls = []

        def track(self, value, *, name, step, epoch, context):
            self.calls.append((name, step, epoch, context.get("epoch"), value))

    tracker = Recording()
    record = EpochRecord(
        epoch=2, loss={}, loss_per_unit={}, test_accuracy=None, train_seconds=1.0, diagnostics=variant.diagnostics()
    )
    TrainingTracking(tracker, variant, torch.device("cpu"), (1, 8, 8)).epoch_ended(record, step=7, last=False)
    tracked = [call for call in tracker.calls if call[0] == "mixing_alpha"]
    assert [(step, epoch, context_epoch) for _, step, epoch, context_epoch, _ in tracked] == [
        (0, 2, 2),
        (1, 2, 2),
        (2, 2, 2),
    ]
    assert [value for *_, value in tracked] == pytest.approx([0.25] * 3)


def test_backprop_head_starts_at_the_nearest_class_embedding_unless_asked_not_to():
    torch.manual_seed(0)
    started = BackpropChain(BackpropConfig(name="backprop", timesteps=2), parts()).head
    torch.testing.assert_close(started.weight, torch.eye(10))  # one-hot: d̄² = 2, so W = 2U/d̄² = I
    torch.testing.assert_close(started.bias, torch.full((10,), -0.5))
    torch.manual_seed(0)
    default = BackpropChain(BackpropConfig(name="backprop", timesteps=2, head_init="default"), parts()).head
    assert not torch.allclose(default.weight, torch.eye(10))


@pytest.mark.slow
def test_backprop_baseline_learns_digits_only_with_the_embedding_start(registry, tmp_path):
    """The regression guard for the collapse described in the backprop module: with a random head
    the blocks' softmaxes saturate on a few class embeddings and accuracy stalls near 50 %."""
    from conftest import REPO
    from noprop_core.engine.runs.fresh import start_run as run

    accuracy = {}
    for head_init in ("embedding", "default"):
        overrides = ["train.epochs=4", "variant.timesteps=3", "tracker.name=none", f"variant.head_init={head_init}"]
        _, metrics = run(
            REPO / "recipes" / "digits_backprop.toml", registry, overrides=overrides, out_dir=tmp_path / head_init
        )
        accuracy[head_init] = metrics["test_accuracy"]
        alphas = [record["diagnostics"]["mixing_alpha"] for record in metrics["history"]]
        assert len(alphas) == 4 and all(len(a) == 3 and all(-1 < v < 1 for v in a) for a in alphas)
        assert alphas[-1] != alphas[0]  # α_t = tanh(w_t) is trained
    assert accuracy["embedding"] > 90, accuracy
    assert accuracy["default"] < 75, accuracy


def test_adjoint_gradients_match_direct_backpropagation_through_euler():
    torch.manual_seed(0)
    variant = AdjointODE(AdjointConfig(name="adjoint", steps=40), parts()).eval()
    images, labels = torch.randn(6, 1, 8, 8), torch.randint(0, 10, (6,))
    torch.manual_seed(1)
    variant.losses(images, labels, "model")["ce"].backward()
    adjoint = {name: p.grad.clone() for name, p in variant.named_parameters()}
    variant.zero_grad(set_to_none=True)

    torch.manual_seed(1)
    field = VectorField(variant, images)
    z_0 = variant.initial_noise(images, None)
    z_1 = integrate(lambda z, t: field(t, z), z_0, 40, "euler")[-1]
    torch.nn.functional.cross_entropy(variant.head(z_1), labels).backward()
    # The adjoint integrates the backward ODE with its own Euler steps, so it matches the exact
    # gradient of the discrete forward solve only up to discretisation error (a few %, 40 steps).
    # The image path must not be counted twice (a ratio of 2 was a real bug here).
    for name, p in variant.named_parameters():
        direct = p.grad.flatten()
        assert direct.norm() > 0, f"{name} got no gradient"
        relative_error = ((adjoint[name].flatten() - direct).norm() / direct.norm()).item()
        assert relative_error < 0.1, (name, relative_error)
    assert variant.block.image_path[0][0].weight.grad.abs().sum() > 0  # convolutions learn via the features


def test_adjoint_baseline_keeps_learning_on_real_digits():
    # A softmax-bounded field once saturated after a few steps and froze at chance: the block's
    # gradient must stay alive and the loss must fall on a batch it can fit.
    from noprop_plugins.datasets.digits import DigitsConfig, load

    splits = load(DigitsConfig(name="digits"))
    images, labels = splits.train_images[:64], splits.train_labels[:64]
    torch.manual_seed(0)
    variant = AdjointODE(AdjointConfig(name="adjoint", steps=10), parts()).train()
    optimizer = torch.optim.Adam(variant.parameters(), lr=1e-2)
    losses = []
    for _ in range(40):
        optimizer.zero_grad(set_to_none=True)
        loss = variant.losses(images, labels, "model")["ce"]
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert variant.block.fusion[4].weight.grad.abs().sum() > 0
    assert sum(losses[-5:]) / 5 < 0.75 * losses[0], losses  # the saturated field stayed above 0.9
