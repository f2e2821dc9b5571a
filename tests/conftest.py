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
# Runs track into Aim by default: keep the tests' Aim runs out of the working directory, in a
# folder of this session's own that goes when the session ends.
TESTS_AIM_REPO = None if "NOPROP_AIM_REPO" in os.environ else tempfile.mkdtemp(prefix="noprop-tests-aim-")
if TESTS_AIM_REPO:
    os.environ["NOPROP_AIM_REPO"] = TESTS_AIM_REPO

from noprop_core.plugin.manager import load_registry  # noqa: E402
from noprop_core.speed.threads import JOBS_ENV, usable_cpus  # noqa: E402

# pytest-xdist's workers are noprop processes started together: their runs (in the worker and in
# the `noprop` commands it starts) divide the CPUs among them through the thread policy, as `--jobs`
# does, instead of each taking every CPU while the other worker computes too.
XDIST_WORKERS = os.environ.get("PYTEST_XDIST_WORKER_COUNT", "")
if XDIST_WORKERS.isdigit() and int(XDIST_WORKERS) > 1 and JOBS_ENV not in os.environ:
    os.environ[JOBS_ENV] = XDIST_WORKERS
    torch.set_num_threads(max(1, usable_cpus() // int(XDIST_WORKERS)))  # tests that compute outside a run

REPO = Path(__file__).resolve().parents[1]
SHARED_MNIST = REPO.parent / "shared" / "data" / "MNIST"


def pytest_sessionfinish(session, exitstatus):
    if TESTS_AIM_REPO:
        shutil.rmtree(TESTS_AIM_REPO, ignore_errors=True)


@pytest.fixture(scope="session")
def registry():
    return load_registry()


@pytest.fixture
def seeded():
    torch.manual_seed(1234)


def find_mnist() -> Path | None:
    """The folder holding MNIST/raw: under $NOPROP_DATA (as the CLI looks), else ../shared/data."""
    candidates = [Path(os.environ["NOPROP_DATA"]) / "MNIST"] if os.environ.get("NOPROP_DATA") else []
    for folder in [*candidates, SHARED_MNIST]:
        if (folder / "raw").is_dir() and any((folder / "raw").glob("*-ubyte*")):
            return folder
    return None


@pytest.fixture(scope="session")
def mnist_root(tmp_path_factory) -> Path:
    """A data root holding a copy of the md5-exact MNIST files (see find_mnist); tests that
    need the real files skip without them."""
    found = find_mnist()
    if found is None:
        pytest.skip(f"MNIST files found neither under $NOPROP_DATA nor at {SHARED_MNIST}/raw")
    root = tmp_path_factory.mktemp("data")
    shutil.copytree(found, root / "MNIST")
    return root


@pytest.fixture(scope="session")
def data_root_or_stand_in(tmp_path_factory) -> tuple[Path, bool]:
    """(data root, whether MNIST is real there): a copy of the real files where they exist,
    else an empty root, on which smoke runs stand in FakeData of MNIST's shape (and say so)."""
    found = find_mnist()
    root = tmp_path_factory.mktemp("data")
    if found is not None:
        shutil.copytree(found, root / "MNIST")
    return root, found is not None
