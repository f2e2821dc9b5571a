"""The head contract kit on the first-party heads."""

from __future__ import annotations

from noprop_core.testing import HeadContract


class TestSoftmax(HeadContract):
    name = "softmax"


class TestRadial(HeadContract):
    name = "radial"
    config = {"sigma": 0.5}
