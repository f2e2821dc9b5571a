"""`learnable_gamma`: the trainable noise schedule of NoProp-CT (paper Appendix B).

SNR(t) = exp(−γ(t)), ᾱ(t) = σ(−γ(t)), with γ decreasing in t:

    γ̄(t) = (γ̃(t) − γ̃(0)) / (γ̃(1) − γ̃(0)),     γ(t) = γ_0 + (γ_1 − γ_0)(1 − γ̄(t)),

so γ(0) = γ_1 and γ(1) = γ_0 exactly. γ̃ is a two-layer network with positive weights
(Kingma et al. 2021 keep them positive with abs(); here softplus, which is never 0, so γ̃ is
*strictly* increasing for any parameter values):

    γ̃(t) = softplus(a)·t + Σ_j softplus(v_j) · sigmoid(softplus(w_j)·t + b_j).

Choices (the paper gives none):
- hidden width 64: a monotone function of one variable needs few units, and the network is
  evaluated on a batch of scalars, so its cost is nil next to the block;
- initial endpoints γ_1 = 3, γ_0 = −3: ᾱ(0) = σ(−3) ≈ 0.047, ᾱ(1) = σ(3) ≈ 0.95. Chosen by
  measurement against ±7 (noprop's earlier start), ±5, the DT cosine chain's range and VDM's
  (docs/methods.md): the loss weight SNR′(t) grows with SNR(1), and a wide clean end puts nearly
  all of it at t → 1, where the block learns to copy z instead of reading the image. Earlier
  starts stay reachable with ``gamma_0`` / ``gamma_1``. The trainable endpoints keep γ_1 > γ_0
  by γ_1 = γ_0 + softplus(δ).
"""

from __future__ import annotations

import attrs

from noprop_core import ScheduleConfig, at_least, hookimpl


@attrs.frozen(kw_only=True)
class LearnableGammaConfig(ScheduleConfig):
    gamma_0: float = -3.0  # γ at t = 1 (clean end)
    gamma_1: float = 3.0  # γ at t = 0 (noisy end); must exceed gamma_0
    hidden: int = attrs.field(default=64, validator=at_least(1))
    # Learning rate of the schedule's parameters; 0: the recipe's train.lr.
    lr: float = attrs.field(default=0.0, validator=at_least(0))


def build(config: LearnableGammaConfig):
    from .schedule import build as implementation  # torch: imported when the plugin is used

    return implementation(config)


@hookimpl
def noprop_register_schedules(registry) -> None:
    registry.add(
        "learnable_gamma", build, config=LearnableGammaConfig, description="trainable monotone γ(t) (Appendix B)"
    )
