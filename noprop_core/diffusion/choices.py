"""The names of the maths' options, without torch: recipe configs validate against them before
any model is built (``noprop validate`` does not import torch)."""

from __future__ import annotations

ODE_SOLVERS = ("euler", "heun")
CT_SAMPLERS = ("ancestral", *ODE_SOLVERS)
PREDICTION_TARGETS = ("embedding", "noise")  # what a continuous-time block predicts
