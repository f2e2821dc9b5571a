"""The names of the training orders and head starts, without torch (recipe configs validate against them)."""

from __future__ import annotations

# "sequential": one unit per minibatch in turn (Algorithm 1); "simultaneous": every unit on each minibatch.
UPDATE_ORDERS = ("sequential", "simultaneous")
# How the head p̂(y | z) starts: "embedding", as the nearest-class-embedding classifier
# (``start_at_nearest_embedding``); "default", PyTorch's random start.
HEAD_INITS = ("embedding", "default")
