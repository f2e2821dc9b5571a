"""An outside plugin end to end: examples/noprop-mlp-mixer is built and installed (into a
temporary folder put on PYTHONPATH, so the test environment itself is left as it was), then
found by `noprop plugins`, used by `noprop run`, and its own tests pass."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from conftest import REPO

EXAMPLE = REPO / "examples" / "noprop-mlp-mixer"


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory):
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(EXAMPLE),
        ],
        check=True,
        capture_output=True,
    )
    env = {k: v for k, v in os.environ.items() if k != "NOPROP_DISABLE_PLUGIN_AUTOLOAD"}  # third-party autoload on
    env["PYTHONPATH"] = os.pathsep.join([str(target), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def noprop(env, *args, cwd=REPO):
    return subprocess.run(
        [sys.executable, "-m", "noprop_core.cli", *args], env=env, cwd=cwd, capture_output=True, text=True
    )


@pytest.mark.slow
def test_noprop_plugins_lists_it_with_its_distribution(plugin_env):
    result = noprop(plugin_env, "plugins")
    assert result.returncode == 0, result.stderr
    assert "backbone\tmlp_mixer\tnoprop-mlp-mixer\t0.1.0\t" in result.stdout


@pytest.mark.slow
def test_its_recipe_runs_through_noprop_run(plugin_env, tmp_path):
    recipe = EXAMPLE / "recipes" / "digits_dt_mixer.toml"
    result = noprop(
        plugin_env,
        "run",
        str(recipe),
        "--set",
        "train.epochs=1",
        "--set",
        "data.subset=200",
        "--set",
        "variant.timesteps=2",
        "--out",
        str(tmp_path / "run"),
    )
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["backbone"] == "mlp_mixer" and metrics["epochs_completed"] == 1
    assert 0 <= metrics["test_accuracy"] <= 100


@pytest.mark.slow
def test_its_own_tests_pass_on_the_contract_kit(plugin_env):
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        env=plugin_env,
        cwd=EXAMPLE,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    passed = re.search(r"(\d+) passed", result.stdout)
    assert passed and int(passed.group(1)) >= 10, result.stdout[-500:]
