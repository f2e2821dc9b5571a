"""The code's shape is checked, not described: the formatter owns the layout, and the engine's
top level stays a map of its jobs."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from conftest import REPO

SOURCES = ("noprop_core", "plugins", "tests", "benchmarks", "tools", "examples", "noxfile.py")


def ruff() -> str:
    found = shutil.which("ruff", path=str(REPO / ".venv" / "bin")) or shutil.which("ruff")
    assert found, "ruff is a dev dependency: pip install -e '.[dev]'"
    return found


@pytest.mark.parametrize("command", [["format", "--check"], ["check"]], ids=["format", "lint"])
def test_ruff_finds_nothing_to_change(command):
    result = subprocess.run([ruff(), *command, *SOURCES], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


def test_no_line_is_kept_from_the_formatter():
    markers = ("fmt: " + "skip", "fmt: " + "off")  # split, so that this file holds neither
    held = [
        f"{path.relative_to(REPO)}:{number}"
        for folder in SOURCES
        for path in sorted((REPO / folder).rglob("*.py") if (REPO / folder).is_dir() else [REPO / folder])
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if any(marker in line for marker in markers)
    ]
    assert held == []
