"""The type checker over the core (strict) and the first-party plugins, in one run: zero errors.
The settings are in pyproject.toml ([tool.mypy])."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import REPO

pytestmark = pytest.mark.slow  # ~35 s from a cold cache


def test_mypy_finds_no_error(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "cache"), "noprop_core", "plugins"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found" in result.stdout
