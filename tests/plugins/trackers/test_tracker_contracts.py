"""The tracker contract kit on the first-party trackers."""

from __future__ import annotations

import pytest

from noprop_core.testing import TrackerContract


class TestNone(TrackerContract):
    name = "none"


class TestAim(TrackerContract):
    name = "aim"

    @pytest.fixture(autouse=True)
    def _repo_in_tmp(self, tmp_path, monkeypatch):
        monkeypatch.setenv("NOPROP_AIM_REPO", str(tmp_path / "aim"))
