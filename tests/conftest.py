"""Shared fixtures. Entry-point autoload is limited to noprop's own plugins here, so that
whatever else is installed in the environment cannot change a test's outcome."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
import torch

os.environ["NOPROP_DISABLE_PLUGIN_AUTOLOAD"] = "1"
# Runs track into Aim by default: keep the tests' Aim runs out of the working directory.
os.environ.setdefault("NOPROP_AIM_REPO", tempfile.mkdtemp(prefix="noprop-tests-aim-"))

from noprop_core.plugin.manager import load_registry  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_MNIST = REPO.parent / "shared" / "data" / "MNIST"


@pytest.fixture(scope="session")
def registry():
    return load_registry()


@pytest.fixture
def seeded():
    torch.manual_seed(1234)


@pytest.fixture(scope="session")
def mnist_root(tmp_path_factory) -> Path:
    """A data root holding a copy of the md5-exact MNIST files from ../shared/data."""
    if not (SHARED_MNIST / "raw").is_dir():
        pytest.skip(f"MNIST files not found at {SHARED_MNIST}/raw")
    root = tmp_path_factory.mktemp("data")
    shutil.copytree(SHARED_MNIST, root / "MNIST")
    return root
