"""σ-conditioning by adaLN-Zero, by value: the sinusoid of c_noise unscaled, the embedder's
SiLU(MLP(·)), the zero start of every shift, scale and gate, and the modulation's formula."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from noprop_core import AdaLNZero, NoiseModulation, TimeEmbedder, modulate, timestep_sinusoid


def test_the_sinusoid_is_of_t_itself_cosines_first():
    t = torch.tensor([-1.5, 0.0, 0.3, 1.1])
    got = timestep_sinusoid(t, dim=8)
    for row, value in enumerate(t.tolist()):
        for k in range(4):
            frequency = 10_000.0 ** (-k / 4)
            assert (
                got[row, k].item() == math.cos(value * frequency)
                or abs(got[row, k].item() - math.cos(value * frequency)) < 1e-6
            )
            assert abs(got[row, 4 + k].item() - math.sin(value * frequency)) < 1e-6


def test_the_time_embedder_is_silu_of_its_mlp():
    torch.manual_seed(0)
    embedder = TimeEmbedder(6, frequencies=16)
    t = torch.linspace(-1.5, 1.0, 7)
    first, second = embedder.mlp[0], embedder.mlp[2]
    expected = F.silu(second(F.silu(first(timestep_sinusoid(t, 16)))))
    torch.testing.assert_close(embedder(t), expected)
    assert first.weight.std().item() < 0.05  # N(0, 0.02²) as the reference starts it


def test_adaln_zero_starts_at_zero_and_is_silu_of_a_linear_map():
    modulation = AdaLNZero(conditioning=5, width=3, parts=4)
    c = torch.randn(7, 5)
    assert all(torch.equal(part, torch.zeros(7, 3)) for part in modulation(c))
    with torch.no_grad():
        modulation.linear.weight.normal_()
        modulation.linear.bias.uniform_(-1, 1)
    parts = modulation(c)
    expected = F.silu(c @ modulation.linear.weight.T + modulation.linear.bias)
    for index, part in enumerate(parts):
        torch.testing.assert_close(part, expected[:, 3 * index : 3 * index + 3])


def test_modulate_scales_then_shifts_and_broadcasts_over_tokens():
    x, shift, scale = torch.randn(2, 4, 3), torch.randn(2, 3), torch.randn(2, 3)
    torch.testing.assert_close(modulate(x, shift, scale), x * (1 + scale[:, None]) + shift[:, None])
    torch.testing.assert_close(modulate(x[:, 0], shift, scale), x[:, 0] * (1 + scale) + shift)


def test_noise_modulation_is_the_identity_at_the_start_and_may_share_a_time_embedder():
    x, c_noise = torch.randn(6, 4), torch.linspace(-1, 1, 6)
    own = NoiseModulation(4, 8)
    torch.testing.assert_close(own(x, c_noise), x, rtol=0, atol=0)
    shared = TimeEmbedder(5)
    borrowed = NoiseModulation(4, 8, time=shared)
    assert borrowed.time is shared and borrowed.modulation.linear.in_features == 5
    assert not any(p is q for p in borrowed.parameters() for q in shared.parameters())  # a reference only


def test_the_time_embedder_works_in_its_parameters_dtype():
    embedder = TimeEmbedder(8, frequencies=16).double()
    c = embedder(torch.rand(3))  # t in float32, the embedder in float64
    assert c.dtype == torch.float64 and c.shape == (3, 8)
