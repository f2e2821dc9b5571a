"""The NoProp-DT objective and sampler: each term against its formula, and block isolation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Normal, kl_divergence

from helpers import random_batch, small_dt
from noprop_core.diffusion.gaussian import kl_to_standard_normal
from noprop_core.diffusion.objectives import dt_loss
from noprop_core.diffusion.samplers import dt_chain
from noprop_plugins.schedules.cosine.schedule import CosineSchedule


@pytest.mark.parametrize("alpha_bar", [1e-6, 0.02, 0.3, 0.9])
def test_kl_matches_torch_distributions(alpha_bar, seeded):
    u = torch.randn(5, 7)
    ab = torch.tensor(alpha_bar)
    q = Normal(ab.sqrt() * u, (1 - ab).sqrt().expand_as(u))
    expected = kl_divergence(q, Normal(torch.zeros_like(u), torch.ones_like(u))).sum(-1)
    torch.testing.assert_close(kl_to_standard_normal(u, ab), expected, rtol=1e-5, atol=1e-7)


class Recorder(nn.Module):
    """A stand-in block or head: records its inputs and returns fixed logits."""

    def __init__(self, logits: torch.Tensor):
        super().__init__()
        self.logits = nn.Parameter(logits.clone())
        self.inputs: list[torch.Tensor] = []

    def forward(self, *inputs):
        self.inputs.append(inputs[-1].detach() if len(inputs) == 1 else inputs[1].detach())
        return self.logits.expand(len(inputs[0]), -1)


def test_every_term_of_the_block_loss_follows_its_formula(seeded):
    chain = CosineSchedule().discretize(10)
    classes, batch, t, eta = 4, 50_000, 6, 0.1
    weight = torch.randn(classes, 3)  # a learned-looking embedding, d = 3
    labels = torch.arange(batch) % classes
    block_logits = torch.randn(classes)
    block, head = Recorder(block_logits), Recorder(torch.zeros(classes))
    terms = dt_loss(
        denoiser=lambda z_prev: block(z_prev[0]).unsqueeze(0),
        head=head,
        embedding_weight=weight,
        labels=labels,
        chain=chain,
        t=torch.tensor([t]),
        eta=eta,
    )
    terms = {name: value[0] for name, value in terms.items()}  # the one block's terms
    u = weight[labels]

    # denoising term: (T/2) η (SNR(t) − SNR(t−1)) mean ‖softmax(logits) W − u_y‖², sum over d
    u_hat = block_logits.softmax(-1) @ weight
    expected = 0.5 * 10 * eta * chain.snr_weight[t - 1] * (u_hat - u).pow(2).sum(-1).mean()
    torch.testing.assert_close(terms["denoise"], expected)
    # the block saw z_{t−1} ~ q(z_{t−1} | y): mean √ᾱ_{t−1} u, variance 1 − ᾱ_{t−1}
    residual = block.inputs[0] - chain.alpha_bar[t - 1].sqrt() * u
    assert residual.mean().abs() < 0.01
    assert residual.var().item() == pytest.approx((1 - chain.alpha_bar[t - 1]).item(), rel=0.02)
    # the head saw z_T ~ q(z_T | y), a fresh sample — not the block's output
    residual = head.inputs[0] - chain.alpha_bar[-1].sqrt() * u
    assert residual.var().item() == pytest.approx((1 - chain.alpha_bar[-1]).item(), rel=0.05)
    torch.testing.assert_close(terms["ce"], F.cross_entropy(torch.zeros(batch, classes), labels))
    torch.testing.assert_close(terms["kl"], kl_to_standard_normal(u, chain.alpha_bar[0]).mean())


def test_oracle_chain_samples_the_exact_marginals(seeded):
    # With û = u_y (a perfect denoiser) every z_t of the inference chain must follow q(z_t | y).
    chain = CosineSchedule().discretize(10)
    u = torch.tensor([0.0, 1.0, 0.0])
    states = dt_chain(lambda t, z: u.expand_as(z), chain, 100_000, 3, device=torch.device("cpu"))
    for t, z in enumerate(states):
        torch.testing.assert_close(z.mean(0), chain.alpha_bar[t].sqrt() * u, atol=0.015, rtol=0)
        torch.testing.assert_close(z.var(0), (1 - chain.alpha_bar[t]).expand(3), atol=0.01, rtol=0.02)


def test_no_gradient_reaches_another_block(seeded):
    variant = small_dt(timesteps=4)
    images, labels = random_batch()
    variant.losses(images, labels, "block3")["denoise"].backward()
    for index, block in enumerate(variant.blocks, start=1):
        grads = [p.grad for p in block.parameters()]
        if index == 3:
            assert all(g is not None and g.abs().sum() > 0 for g in grads[:2])
        else:
            assert all(g is None for g in grads), f"block {index} received a gradient from block 3's loss"


def test_the_head_learns_only_from_the_cross_entropy(seeded):
    variant = small_dt(timesteps=3)
    images, labels = random_batch()
    terms = variant.losses(images, labels, "block1")
    terms["denoise"].backward(retain_graph=True)
    assert variant.head.weight.grad is None
    terms["ce"].backward()
    assert variant.head.weight.grad.abs().sum() > 0


def test_summed_losses_give_each_block_its_own_gradient(seeded):
    variant = small_dt(timesteps=3).eval()  # eval: no dropout, so both passes see the same network
    images, labels = random_batch()

    def losses():
        torch.manual_seed(7)
        return [sum(variant.losses(images, labels, unit).values()) for unit in variant.units]

    torch.stack(losses()).sum().backward()
    together = [[p.grad.clone() for p in block.parameters()] for block in variant.blocks]
    for index, block in enumerate(variant.blocks):
        variant.zero_grad(set_to_none=True)
        losses()[index].backward()
        for alone, summed in zip(block.parameters(), together[index]):
            torch.testing.assert_close(alone.grad, summed)


def test_inference_uses_the_chain_not_the_labels(seeded):
    variant = small_dt(timesteps=3).eval()
    images, _ = random_batch(8)
    generator = torch.Generator().manual_seed(0)
    first = variant.predict(images, generator)
    again = variant.predict(images, torch.Generator().manual_seed(0))
    torch.testing.assert_close(first, again)
    assert first.shape == (8, 10)
    other = variant.predict(images, torch.Generator().manual_seed(1))
    assert not torch.allclose(first, other), "the chain must inject noise z_0 and √c_t ε"
