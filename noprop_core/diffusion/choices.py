"""The names of the maths' options, without torch: recipe configs validate against them before
any model is built (``noprop validate`` does not import torch)."""

from __future__ import annotations

# Fixed-step solvers of an ODE on [0, 1], and "dopri5": Dormand–Prince, adaptive (torchdiffeq),
# its steps chosen by the error tolerance (``steps`` only sets where states are recorded).
ODE_SOLVERS = ("euler", "heun", "dopri5")
# NoProp-CT also has "ancestral" (the DT update on a grid) and "dpm2" (DPM-Solver++(2M): a
# second-order multistep solver of the probability flow, one block call per step).
CT_SAMPLERS = ("ancestral", "dpm2", *ODE_SOLVERS)
PREDICTION_TARGETS = ("embedding", "noise")  # what a continuous-time block predicts
# How a noise-target block forms ε̂: "free" (its output is ε̂ ∈ ℝ^d) or "posterior" (class logits
# and a residual r̂ ∈ ℝ^d: ε̂ = (z − √ᾱ softmax(logits) · W_Embed) / √(1 − ᾱ) + r̂).
NOISE_FORMS = ("free", "posterior")
# How NoProp-CT draws t: "uniform" (the paper, t ~ U(0, 1)) or "importance" (p(t) ∝ SNR′(t),
# the weight divided by p(t): the same objective in expectation, lower variance).
TIME_SAMPLING = ("uniform", "importance")
# How DiffusionBlocks weights its cross-entropy by w(σ): "example" (Eq. 5: mean of w(σ_i)·CE_i)
# or "batch_mean" (the reference code: mean(w)·mean(CE) over the minibatch).
WEIGHTINGS = ("example", "batch_mean")
