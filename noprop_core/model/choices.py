"""The names of the training orders, without torch (recipe configs validate against them)."""

from __future__ import annotations

# "sequential": one unit per minibatch in turn (Algorithm 1); "simultaneous": every unit on each minibatch.
UPDATE_ORDERS = ("sequential", "simultaneous")
