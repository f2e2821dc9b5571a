"""The throughput benchmark runs and reports the keys others read, with sane values."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import REPO

KEYS = ("reference_block_step_ms", "sequential_block_step_ms", "fused_block_step_ms", "backprop_block_step_ms",
        "noprop_peak_bytes", "backprop_peak_bytes")  # fmt: skip


@pytest.mark.slow
def test_throughput_json_has_every_key_and_noprop_needs_less_memory():
    result = subprocess.run(
        [sys.executable, "benchmarks/throughput.py", "--json", "--batch", "32", "--steps", "1", "--repeats", "1"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    numbers = json.loads(result.stdout)
    assert all(numbers[key] > 0 for key in KEYS)
    # One block's activations against all T blocks' (parameters and Adam state are the same).
    assert numbers["noprop_peak_bytes"] < 0.6 * numbers["backprop_peak_bytes"]


@pytest.mark.slow
def test_epoch_benchmark_times_a_recipe_on_stand_in_data_of_its_shape(tmp_path):
    result = subprocess.run(
        [sys.executable, "benchmarks/epoch.py", "recipes/cifar10_dt.toml", "--examples", "96", "--epochs", "2",
         "--set", "variant.timesteps=2", "--set", "variant.order=simultaneous", "--set", "variant.fused=true",
         "--set", f'data.root="{tmp_path}"', "--set", "data.download=false", "--json"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    numbers = json.loads(result.stdout)
    assert numbers["data"] == "synthetic" and numbers["image_shape"] == [3, 32, 32]  # no CIFAR files in tmp_path
    assert numbers["train_examples"] == 96 and numbers["blocks"] == 2 and numbers["fused"] is True
    assert len(numbers["epoch_seconds"]) == 2 and all(s > 0 for s in numbers["epoch_seconds"])
    assert numbers["examples_per_second"] == pytest.approx(96 / numbers["epoch_seconds"][-1])


def test_epoch_benchmark_reports_a_bad_recipe_key_in_one_line():
    result = subprocess.run(
        [sys.executable, "benchmarks/epoch.py", "recipes/digits_dt.toml", "--set", "train.nope=1"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "epoch.py: recipes/digits_dt.toml: train.nope: unknown key (allowed here: batch_size, "
        "epochs, grad_clip, lr, lr_schedule, max_batches, optimizer, weight_decay)"
    ]
