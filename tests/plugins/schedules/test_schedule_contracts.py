"""The schedule contract kit (noprop_core.testing) on every first-party schedule."""

from __future__ import annotations

from noprop_core.testing import ScheduleContract


class TestCosine(ScheduleContract):
    name = "cosine"


class TestLearnableGamma(ScheduleContract):
    name = "learnable_gamma"
