"""Samplers by value: which t each step evaluates, in which direction, with which coefficients.

The DT update z_t = a_t û + b_t z_{t−1} + √c_t ε is checked coefficient by coefficient with a
denoiser whose û, the previous state and the noise are all different, so an update with the
right marginals but a wrong a_t, b_t or c_t fails. The ODE solvers are checked against their
hand-written recurrences on dz/dt = v(z, t) that depends on both z and t.
"""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from noprop_core import NoiseSchedule, dt_chain, integrate, probability_flow

BATCH, DIM = 5, 3


class LinearSchedule(NoiseSchedule):
    def alpha_bar(self, t: Tensor) -> Tensor:
        return 0.1 + 0.8 * t


def test_dt_chain_applies_a_b_c_of_each_step_in_order():
    chain = LinearSchedule().discretize(4)
    target = torch.randn(DIM)  # û differs from every state
    calls = []

    def denoise(t, z_prev):
        calls.append((t, z_prev.clone()))
        return target * t  # a different û at every step

    states = dt_chain(
        denoise, chain, BATCH, DIM, device=torch.device("cpu"), generator=torch.Generator().manual_seed(9)
    )
    replay = torch.Generator().manual_seed(9)
    z = torch.randn((BATCH, DIM), generator=replay)
    torch.testing.assert_close(states[0], z)
    assert [t for t, _ in calls] == [1, 2, 3, 4]  # block t runs at step t, from z_0 (noise) to z_T
    ab = chain.alpha_bar.double()
    for t in range(1, 5):
        torch.testing.assert_close(calls[t - 1][1], z)  # each step reads the previous state
        alpha_prev = ab[t - 1] / ab[t]  # α_{t−1} = ᾱ_{t−1}/ᾱ_t
        a = ab[t].sqrt() * (1 - alpha_prev) / (1 - ab[t - 1])
        b = alpha_prev.sqrt() * (1 - ab[t]) / (1 - ab[t - 1])
        c = (1 - ab[t]) * (1 - alpha_prev) / (1 - ab[t - 1])
        noise = torch.randn((BATCH, DIM), generator=replay)
        z = (a * target * t + b * z + c.sqrt() * noise).float()
        torch.testing.assert_close(states[t], z, rtol=1e-5, atol=1e-6)
    assert len(states) == 5


def velocity(z: Tensor, t: Tensor) -> Tensor:
    return -0.7 * z + 2.0 * t + 0.3 * t * z


@pytest.mark.parametrize("method", ["euler", "heun"])
def test_ode_solvers_integrate_from_0_to_1_with_their_recurrence(method):
    z0 = torch.randn(BATCH, DIM, dtype=torch.float64)
    times = []

    def recorded(z, t):
        times.append(float(t))
        return velocity(z, t)

    states = integrate(recorded, z0, 4, method)
    h, z, expected_times = 0.25, z0, []
    for k in range(4):
        t = torch.tensor(k * h, dtype=torch.float64)
        slope = velocity(z, t)
        if method == "euler":
            z = z + h * slope
            expected_times.append(k * h)
        else:
            end = velocity(z + h * slope, t + h)
            z = z + h / 2 * (slope + end)
            expected_times += [k * h, (k + 1) * h]
        torch.testing.assert_close(states[k + 1], z)
    assert times == pytest.approx(expected_times)
    with pytest.raises(ValueError, match="unknown ODE solver 'rk4'"):
        integrate(recorded, z0, 4, "rk4")


def test_heun_is_second_order_and_euler_first():
    """On dz/dt = z the error at t = 1 shrinks 4× (Heun) and 2× (Euler) when the steps double."""
    z0 = torch.ones(1, 1, dtype=torch.float64)
    exact = torch.e

    def error(method, steps):
        return abs(integrate(lambda z, t: z, z0, steps, method)[-1].item() - exact)

    assert error("heun", 20) / error("heun", 40) == pytest.approx(4, rel=0.05)
    assert error("euler", 20) / error("euler", 40) == pytest.approx(2, rel=0.05)


def test_probability_flow_is_the_derivative_of_the_marginal_path():
    """dz/dt = (d√ᾱ/dt) û + (d√(1 − ᾱ)/dt) ε̂ with ε̂ = (z − √ᾱ û)/√(1 − ᾱ); ᾱ = 0.1 + 0.8 t."""
    u_hat = torch.randn(BATCH, DIM)
    seen = {}

    def denoise(z, t):
        seen["t"] = t
        return u_hat

    z = torch.randn(BATCH, DIM)
    t = torch.tensor(0.3)
    v = probability_flow(denoise, LinearSchedule())(z, t)
    ab = 0.1 + 0.8 * 0.3
    eps_hat = (z - ab**0.5 * u_hat) / (1 - ab) ** 0.5
    expected = 0.8 / (2 * ab**0.5) * u_hat - 0.8 / (2 * (1 - ab) ** 0.5) * eps_hat
    torch.testing.assert_close(v, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(seen["t"], torch.full((BATCH,), 0.3))


def test_dpm_solver_2m_is_exact_for_a_perfect_data_prediction():
    """With û = u, every state is α_t u + σ_t ε for the ε of the start (DDIM's and DPM-Solver's
    exactness): a wrong σ ratio, a wrong sign of e^(−h) − 1 or α_s for α_t breaks it."""
    from noprop_core import dpm_solver_2m

    schedule = LinearSchedule()
    u, eps = torch.randn(BATCH, DIM), torch.randn(BATCH, DIM)
    grid = torch.linspace(0, 1, 7, dtype=torch.float64)
    alpha_bar = schedule.alpha_bar(grid)
    z_0 = alpha_bar[0].sqrt().float() * u + (1 - alpha_bar[0]).sqrt().float() * eps
    states = dpm_solver_2m(lambda z, t: u, schedule, z_0, 6)
    assert len(states) == 7
    for k, state in enumerate(states):
        expected = alpha_bar[k].sqrt().float() * u + (1 - alpha_bar[k]).sqrt().float() * eps
        torch.testing.assert_close(state, expected, rtol=1e-5, atol=1e-5)


def test_dpm_solver_2m_follows_its_multistep_recurrence_with_a_varying_prediction():
    """Recomputed by hand in float64, with a prediction that depends on z and t, so that the
    second-order combination (1 + 1/2r) û_s − 1/(2r) û_prev and the ratio r = h_prev / h show."""
    from noprop_core import dpm_solver_2m

    schedule = LinearSchedule()
    weight = torch.tensor([[0.5, -1.0, 0.2], [0.3, 0.8, -0.6], [1.1, 0.0, 0.4]])

    def predict(z, t):
        return torch.tanh(z @ weight) * (1 + t[:, None])

    z_0 = torch.randn(BATCH, DIM)
    states = dpm_solver_2m(predict, schedule, z_0, 4)
    t = [k / 4 for k in range(5)]
    alpha = [(0.1 + 0.8 * s) ** 0.5 for s in t]
    sigma = [(0.9 - 0.8 * s) ** 0.5 for s in t]
    lam = [torch.log(torch.tensor(a / s, dtype=torch.float64)).item() for a, s in zip(alpha, sigma)]
    z, previous, h_previous = z_0.double(), None, None
    for i in range(1, 5):
        h = lam[i] - lam[i - 1]
        u_hat = predict(z.float(), torch.full((BATCH,), t[i - 1])).double()
        if previous is None:
            combined = u_hat
        else:
            r = h_previous / h
            combined = (1 + 1 / (2 * r)) * u_hat - previous / (2 * r)
        z = sigma[i] / sigma[i - 1] * z - alpha[i] * (torch.exp(torch.tensor(-h, dtype=torch.float64)) - 1) * combined
        torch.testing.assert_close(states[i].double(), z, rtol=1e-5, atol=1e-5)
        previous, h_previous = u_hat, h


def test_dpm_solver_2m_converges_at_second_order_where_euler_is_first_order():
    """On the probability flow of a fixed-û-per-z denoiser, halving the step divides the error
    against a fine reference by about 4 for DPM-Solver++(2M) and about 2 for Euler."""
    from noprop_core import dpm_solver_2m

    schedule = LinearSchedule()
    weight = torch.tensor([[0.5, -1.0, 0.2], [0.3, 0.8, -0.6], [1.1, 0.0, 0.4]], dtype=torch.float64)

    def predict(z, t):
        return torch.tanh(z @ weight)

    z_0 = torch.randn(BATCH, DIM, dtype=torch.float64)
    exact = integrate(probability_flow(predict, schedule), z_0, 4000, "heun")[-1]

    def error(states):
        return (states[-1] - exact).abs().max().item()

    dpm = [error(dpm_solver_2m(predict, schedule, z_0, n)) for n in (8, 16, 32)]
    euler = [error(integrate(probability_flow(predict, schedule), z_0, n, "euler")) for n in (8, 16, 32)]
    assert 3.0 < dpm[1] / dpm[2] < 5.0 and dpm[2] < euler[2] / 5
    assert 1.6 < euler[1] / euler[2] < 2.4


def test_dopri5_solves_a_linear_ode_to_its_tolerance_and_records_the_grid():
    """dz/dt = A z (t-dependent scale) has a closed form; the adaptive solver meets it within
    its tolerance and returns the state at every point asked for."""
    a = torch.tensor([[-1.0, 2.0], [-2.0, -1.0]], dtype=torch.float64)
    z_0 = torch.tensor([[1.0, 0.5], [-0.3, 2.0]], dtype=torch.float64)
    calls = []

    def velocity(z, t):
        calls.append(float(t))
        return z @ a.T

    states = integrate(velocity, z_0, 4, "dopri5")
    assert len(states) == 5
    for k, state in enumerate(states):
        expected = z_0 @ torch.linalg.matrix_exp(a * (k / 4)).T
        torch.testing.assert_close(state, expected, rtol=5e-3, atol=5e-3)
    assert 6 < len(calls) < 200 and min(calls) >= 0 and max(calls) <= 1


def test_the_adaptive_solver_keeps_both_tolerances_it_is_given():
    """The same solve as torchdiffeq's dopri5 with rtol = atol = tolerance, counted in velocity
    calls, for a state far above 1 (where rtol decides) and far below it (where atol does)."""
    import torch
    from torchdiffeq import odeint

    from noprop_core.diffusion.samplers import adaptive

    def counted(calls):
        def velocity(z, t):
            calls.append(1)
            return 4 * z * torch.cos(6 * t)  # errors grow with the state: rtol decides above 1

        return velocity

    for scale in (100.0, 1e-3):
        z = torch.full((2, 3), scale, dtype=torch.float64)
        ours, reference = [], []
        got = adaptive(counted(ours), z, [0.0, 0.5, 1.0], tolerance=1e-2)
        times = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
        expected = odeint(
            lambda t, s, calls=reference: counted(calls)(s, t),
            z,
            times,
            method="dopri5",
            rtol=1e-2,
            atol=1e-2,
            options={"step_t": times},
        )
        assert len(ours) == len(reference)
        torch.testing.assert_close(got[-1], expected[-1])
