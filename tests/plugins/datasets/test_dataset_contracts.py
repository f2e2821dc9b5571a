"""The dataset contract kit on the bundled digits set (the others need files: tests/plugins/datasets)."""

from __future__ import annotations

from noprop_core.testing import DatasetContract


class TestDigits(DatasetContract):
    name = "digits"
