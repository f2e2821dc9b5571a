"""Inference samplers: run the chain of blocks, or integrate an ODE, from noise to a label embedding.

Names a recipe may use: ``ancestral`` (the stochastic DT update z_t = a_t û + b_t z_{t−1} + √c_t ε
on a grid), ``euler`` and ``heun`` (first- and second-order ODE solvers on [0, 1]), ``dopri5``
(adaptive, torchdiffeq) and ``dpm2`` (DPM-Solver++(2M) on the probability flow of a schedule).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from noprop_core.diffusion.choices import ODE_SOLVERS
from noprop_core.diffusion.gaussian import posterior_step
from noprop_core.diffusion.schedule import DiscreteSchedule, NoiseSchedule, time_derivative

Velocity = Callable[[Tensor, Tensor], Tensor]  # v(z, t) with t a scalar tensor


def dt_chain(
    denoise: Callable[[int, Tensor], Tensor],
    chain: DiscreteSchedule,
    batch: int,
    dim: int,
    *,
    device: torch.device,
    generator: torch.Generator | None = None,
) -> list[Tensor]:
    """z_0 ~ N(0, I); z_t = a_t û_t(z_{t−1}) + b_t z_{t−1} + √c_t ε for t = 1..T.

    ``denoise(t, z_prev)`` returns û for step t. Returns [z_0, z_1, ..., z_T].
    """
    z = torch.randn((batch, dim), generator=generator, device=device)
    states = [z]
    for t in range(1, chain.steps + 1):
        z = posterior_step(denoise(t, z), z, chain.a[t - 1], chain.b[t - 1], chain.c[t - 1], generator)
        states.append(z)
    return states


def integrate(velocity: Velocity, z: Tensor, grid: int | Sequence[float] | Tensor, method: str) -> list[Tensor]:
    """Solve dz/dt = velocity(z, t) along ``grid``: a number of equal steps from t = 0 to 1, or
    the points to step through in order (times, or noise levels σ falling from σ_max: any
    monotone grid). Returns the state at every point of the grid."""
    if method not in ODE_SOLVERS:
        raise ValueError(f"unknown ODE solver {method!r}; expected one of {ODE_SOLVERS}")
    points = [k / grid for k in range(grid + 1)] if isinstance(grid, int) else [float(p) for p in grid]
    if method == "dopri5":
        return adaptive(velocity, z, points)
    states = [z]
    for start, end in zip(points, points[1:]):
        t, h = torch.tensor(start, device=z.device), end - start
        slope = velocity(z, t)
        if method == "euler":
            z = z + h * slope
        else:  # Heun: trapezoid of the slopes at both ends of the step
            z_end = z + h * slope
            z = z + 0.5 * h * (slope + velocity(z_end, torch.tensor(end, device=z.device)))
        states.append(z)
    return states


def probability_flow(denoise: Callable[[Tensor, Tensor], Tensor], schedule: NoiseSchedule) -> Velocity:
    """The deterministic (probability-flow) ODE of q(z_t | y) = N(√ᾱ u, (1 − ᾱ) I) with û for u:

    z = √ᾱ(t) û + √(1 − ᾱ(t)) ε̂  ⇒  dz/dt = (d√ᾱ/dt) û + (d√(1 − ᾱ)/dt) ε̂,  ε̂ = (z − √ᾱ û)/√(1 − ᾱ).
    """

    def velocity(z: Tensor, t: Tensor) -> Tensor:
        t64 = t.to(torch.float64).reshape(1)
        alpha_bar = schedule.alpha_bar(t64)
        d_mean = time_derivative(lambda s: schedule.alpha_bar(s).sqrt(), t64)
        d_std = time_derivative(lambda s: (1 - schedule.alpha_bar(s)).sqrt(), t64)
        u_hat = denoise(z, t.expand(len(z)))
        noise = (z - alpha_bar.sqrt().float() * u_hat) / (1 - alpha_bar).sqrt().float()
        return d_mean.float() * u_hat + d_std.float() * noise

    return velocity


ADAPTIVE_TOLERANCE = 1e-3  # relative and absolute error per step of ``dopri5``


def adaptive(velocity: Velocity, z: Tensor, points: list[float], tolerance: float = ADAPTIVE_TOLERANCE) -> list[Tensor]:
    """Dormand–Prince (torchdiffeq's ``dopri5``) from points[0] to points[-1], its steps chosen
    to keep the error below ``tolerance``; the states at ``points``."""
    from torchdiffeq import odeint

    times = torch.tensor(points, dtype=z.dtype, device=z.device)
    # step_t: every step ends on a grid point rather than past it (the velocity is not defined
    # beyond the last one: a schedule's t > 1).
    options = {"step_t": times}
    solved = odeint(
        lambda t, state: velocity(state, t), z, times, method="dopri5", rtol=tolerance, atol=tolerance, options=options
    )
    return list(solved.unbind(0))


def dpm_solver_2m(
    denoise: Callable[[Tensor, Tensor], Tensor], schedule: NoiseSchedule, z: Tensor, steps: int
) -> list[Tensor]:
    """DPM-Solver++(2M) (Lu et al. 2022) from t = 0 to 1 in ``steps`` equal steps of t, on the
    probability flow of q(z_t | y) = N(α_t u, σ_t² I), α_t = √ᾱ(t), σ_t = √(1 − ᾱ(t)), with
    ``denoise(z, t)`` the data prediction û. With λ = log(α/σ) and h = λ_t − λ_s:

        z_t = (σ_t / σ_s) z_s − α_t (e^(−h) − 1) D,
        D = û_s (the first step), else (1 + 1/(2r)) û_s − 1/(2r) û_prev, r = h_prev / h.

    One ``denoise`` call per step. Returns the state at every point of the grid."""
    grid = torch.linspace(0, 1, steps + 1, dtype=torch.float64, device=z.device)
    alpha_bar = schedule.alpha_bar(grid).double()
    alpha, sigma = alpha_bar.sqrt(), (1 - alpha_bar).sqrt()
    log_ratio = alpha.log() - sigma.log()
    states, previous, h_previous = [z], None, None
    for i in range(1, steps + 1):
        h = (log_ratio[i] - log_ratio[i - 1]).item()
        u_hat = denoise(z, grid[i - 1].to(z.dtype).expand(len(z)))
        combined = u_hat
        if previous is not None and h_previous is not None:
            r = h_previous / h
            combined = (1 + 1 / (2 * r)) * u_hat - previous / (2 * r)
        z = (sigma[i] / sigma[i - 1]).item() * z - (alpha[i] * math.expm1(-h)).item() * combined
        states.append(z)
        previous, h_previous = u_hat, h
    return states
