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
