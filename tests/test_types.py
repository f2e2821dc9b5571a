"""The type checker over the core (strict) and the first-party plugins: zero errors. The commands
and their settings are in pyproject.toml ([tool.mypy])."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import REPO

pytestmark = pytest.mark.slow  # ~1 min from a cold cache


@pytest.mark.parametrize(
    "arguments",
    [["--strict", "--no-warn-return-any", "noprop_core"], ["plugins"]],
    ids=["core-strict", "plugins"],
)
def test_mypy_finds_no_error(arguments, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "cache"), *arguments],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found" in result.stdout
