"""Distributed training on CPU: torchrun, 2 processes, gloo. Block sharding reproduces the
single-process run; data parallelism trains and keeps the ranks' models identical."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO
from helpers import deterministic_history

RECIPE = str(REPO / "recipes" / "digits_dt.toml")
COMMON = [
    "--set",
    "train.epochs=2",
    "--set",
    "data.subset=300",
    "--set",
    "variant.timesteps=3",
    "--set",
    "variant.order=simultaneous",
    "--set",
    "variant.fused=false",
    "--set",
    "tracker.name=none",
    "--set",
    "eval.train_subset=100",
]


def environment() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def single_process(out, *extra):
    result = subprocess.run(
        [sys.executable, "-m", "noprop_core.cli", "run", RECIPE, *COMMON, *extra, "--out", str(out)],
        env=environment(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads((out / "metrics.json").read_text())


def two_processes(out, *extra):
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "noprop_core.cli",
        "run",
        RECIPE,
        *COMMON,
        *extra,
        "--out",
        str(out),
    ]
    result = subprocess.run(command, env=environment(), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads((out / "metrics.json").read_text())


@pytest.mark.slow
def test_block_sharding_over_two_processes_reproduces_one_process(tmp_path):
    alone = single_process(tmp_path / "one")
    sharded = two_processes(tmp_path / "two")
    assert sharded["world_size"] == 2 and alone["world_size"] == 1
    # Every unit's losses, gathered from its owner, equal the single-process run's; shared
    # gradients are summed in another order across ranks, hence a float tolerance.
    for mine, theirs in zip(deterministic_history(sharded["history"]), deterministic_history(alone["history"])):
        for unit, terms in theirs["loss_per_unit"].items():
            assert mine["loss_per_unit"][unit] == pytest.approx(terms, rel=1e-4, abs=1e-6), unit
        assert mine["test_accuracy"] == pytest.approx(theirs["test_accuracy"], abs=1.0)


@pytest.mark.slow
def test_data_parallel_over_two_processes_trains(tmp_path):
    metrics = two_processes(tmp_path / "data", "--set", "speed.distributed=data")
    assert metrics["world_size"] == 2 and metrics["epochs_completed"] == 2
    first, second = (record["loss"]["denoise"] for record in metrics["history"])
    assert second < first


def test_block_sharding_refuses_the_sequential_order(tmp_path):
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "noprop_core.cli",
        "run",
        RECIPE,
        "--set",
        "variant.order=sequential",
        "--set",
        "variant.fused=false",
        "--set",
        "tracker.name=none",
        "--out",
        str(tmp_path / "run"),
    ]
    result = subprocess.run(command, env=environment(), capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "speed.distributed: 'blocks' shards several units trained in the simultaneous order" in result.stderr
