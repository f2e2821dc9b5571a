"""The throughput benchmark runs and reports the keys others read, with sane values."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import REPO

KEYS = (
    "reference_block_step_ms",
    "sequential_block_step_ms",
    "fused_block_step_ms",
    "backprop_block_step_ms",
    "noprop_peak_bytes",
    "backprop_peak_bytes",
)


@pytest.mark.slow
def test_throughput_json_has_every_key_and_noprop_needs_less_memory():
    result = subprocess.run(
        [sys.executable, "benchmarks/throughput.py", "--json", "--batch", "32", "--steps", "1", "--repeats", "1"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    numbers = json.loads(result.stdout)
    assert all(numbers[key] > 0 for key in KEYS)
    # One block's activations against all T blocks' (parameters and Adam state are the same).
    assert numbers["noprop_peak_bytes"] < 0.6 * numbers["backprop_peak_bytes"]


@pytest.mark.slow
def test_epoch_benchmark_times_a_recipe_on_stand_in_data_of_its_shape(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "benchmarks/epoch.py",
            "recipes/cifar10_dt.toml",
            "--examples",
            "96",
            "--epochs",
            "2",
            "--set",
            "variant.timesteps=2",
            "--set",
            "variant.order=simultaneous",
            "--set",
            "variant.fused=true",
            "--set",
            f'data.root="{tmp_path}"',
            "--set",
            "data.download=false",
            "--json",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    numbers = json.loads(result.stdout)
    assert numbers["data"] == "synthetic" and numbers["image_shape"] == [3, 32, 32]  # no CIFAR files in tmp_path
    assert numbers["train_examples"] == 96 and numbers["blocks"] == 2 and numbers["fused"] is True
    assert len(numbers["epoch_seconds"]) == 2 and all(s > 0 for s in numbers["epoch_seconds"])
    assert numbers["examples_per_second"] == pytest.approx(96 / numbers["epoch_seconds"][-1])


def test_epoch_benchmark_reports_a_bad_recipe_key_in_one_line():
    result = subprocess.run(
        [sys.executable, "benchmarks/epoch.py", "recipes/digits_dt.toml", "--set", "train.nope=1"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "epoch.py: recipes/digits_dt.toml: train.nope: unknown key (allowed here: batch_size, "
        "epochs, grad_clip, lr, lr_schedule, max_batches, optimizer, warmup_epochs, weight_decay)"
    ]


def run_json(*args: str) -> dict:
    result = subprocess.run([sys.executable, *args, "--json"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


def test_cli_startup_benchmark_reports_times_and_no_heavy_imports():
    numbers = run_json("benchmarks/cli_startup.py", "--repeats", "1")
    assert set(numbers) == {"--help", "--version", "plugins", "validate"}
    assert all(row["median_seconds"] > 0 and row["imports"] == "" for row in numbers.values())


@pytest.mark.slow
def test_under_load_benchmark_runs_both_policies_and_stops_its_spinners():
    from pathlib import Path

    quick = ["train.max_batches=1", "eval.test_subset=32", "eval.train_subset=32", "eval.inference_runs=1"]
    numbers = run_json("benchmarks/under_load.py", "--loads", "0", "1", "--epochs", "1", *[f"--set={o}" for o in quick])
    assert numbers["overrides"] == quick
    assert set(numbers["seconds"]) == {"0", "1"} and set(numbers["seconds"]["1"]) == {"auto", "torch"}
    assert numbers["over_quiet"]["0"] == {"auto": 1.0, "torch": 1.0}
    spinners = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            spinners += [cmdline] if b"while time.time() < end" in cmdline.read_bytes() else []
        except OSError:
            pass  # the process ended meanwhile
    assert not spinners


@pytest.mark.slow
def test_seeds_benchmark_times_stacked_against_one_by_one():
    numbers = run_json(
        "benchmarks/seeds.py", "--recipe", "recipes/digits_dt.toml", "--seeds", "2", "--steps", "1", "--repeats", "1"
    )
    assert numbers["seeds"] == 2 and numbers["stacked_ms"] > 0 and numbers["one_seed_ms"] > 0
    assert numbers["stacked_over_one_seed"] == pytest.approx(numbers["stacked_ms"] / numbers["one_seed_ms"])


@pytest.mark.slow
def test_table1_cost_predicts_the_protocol_from_a_short_timing():
    numbers = run_json("benchmarks/table1_cost.py", "--match", "mnist_dt", "--batches", "1", "--eval-examples", "16")
    (row,) = numbers["rows"]
    assert row["recipe"] == "mnist_dt" and row["epochs"] == 100
    # 3 seeds × (100 epochs + the evaluations), as the docstring says
    assert row["protocol_seconds"] == pytest.approx(3 * (100 * row["epoch_seconds"] + row["evaluation_seconds"]))
    assert numbers["total_protocol_seconds"] == pytest.approx(row["protocol_seconds"])
    # The compute every run counts: DT passes each example through its 10 blocks, every epoch.
    assert row["protocol_block_passes"] == pytest.approx(3 * 100 * 60_000 * 10)
    assert row["protocol_flops"] > row["protocol_block_passes"] * 1e5  # a conv block: ≫ 1e5 FLOPs per pass


@pytest.mark.slow
def test_device_script_trains_each_recipe_for_its_share_and_summarises(tmp_path):
    """The GPU reproduction script, at a tiny budget on this CPU: each recipe trains (smoke mode,
    stand-in data where CIFAR is absent), is stopped or finishes, and is summarised."""
    result = subprocess.run(
        [
            sys.executable,
            "benchmarks/device_reproduce.py",
            "--minutes",
            "0.6",
            "--out",
            str(tmp_path),
            "--smoke",
            "--set",
            "variant.steps=4",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [row["recipe"] for row in summary] == ["cifar100_diffusion_blocks", "cifar10_ct"]
    for row in summary:
        assert row["epochs_completed"] >= 1 and row["train_wall_seconds"] <= 18 + 60, row
        assert (tmp_path / f"{row['recipe']}.train.log").read_text().strip()


@pytest.mark.slow
def test_compare_benchmark_tabulates_and_plots_a_plan(tmp_path):
    plan = tmp_path / "plan.toml"
    plan.write_text(
        'seeds = [0, 1]\ntarget = 20.0\ncommon = ["train.epochs=2", "train.max_batches=2", "eval.train_subset=50",'
        ' "data.subset=128", "eval.inference_runs=2", "eval.every=1"]\n'
        '[runs.dt]\nrecipe = "digits_dt"\nset = ["variant.timesteps=2"]\n'
    )
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "benchmarks/compare.py", str(plan), "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    (row,) = json.loads((out / "summary.json").read_text())
    assert row["test"]["n"] == 4 and len(row["epochs_to_target"]) == 2 and len(row["image_accuracy_last"]) == 2
    assert set(row["curve"]) == {"1", "2"} and (out / "accuracy.png").stat().st_size > 10_000
    assert "| dt |" in (out / "summary.md").read_text()


def test_the_protocol_on_n_devices_puts_the_longest_seeds_first(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("table1_cost", REPO / "benchmarks" / "table1_cost.py")
    cost = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cost)
    assert cost.makespan([5, 4, 3, 3, 3], 2) == 10  # longest first: 5+3 | 4+3+3 (the optimum, 9, is not LPT's)
    assert cost.makespan([1] * 6, 3) == 2 and cost.makespan([7, 1], 5) == 7
    saved = tmp_path / "table.txt"
    saved.write_text(
        "Table 1 protocol cost on cpu\nrecipe path epochs epoch evaluation protocol\n"
        "mnist_dt sequential 100 621.5s 2.0 h 57.8 h\nmnist_adjoint simultaneous 2 2199.1s 10.2 min 4.2 h\n"
        "cifar10_ct simultaneous, fused 500 62.7s 14.7 h 30.0 min\ntotal 62.5 h\n"
    )
    rows = cost.read_saved(saved)
    assert [(r["recipe"], round(r["protocol_seconds"])) for r in rows] == [
        ("mnist_dt", 208080),
        ("mnist_adjoint", 15120),
        ("cifar10_ct", 1800),
    ]
    assert cost.seed_jobs(rows)[:3] == [208080 / 3] * 3


def test_max_pool_benchmark_checks_equality_and_times_both_kernels(tmp_path):
    out = tmp_path / "max_pool.json"
    result = subprocess.run(
        [sys.executable, "benchmarks/max_pool.py", "--repeats", "1", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    results = json.loads(out.read_text())["results"]
    assert set(results) >= {"8x8, ten blocks fused", "28x28, one block"}
    for row in results.values():
        assert row["forward_backward_ms_pytorch"] > 0 and row["forward_backward_ms_noprop"] > 0
        assert row["forward_ratio"] == pytest.approx(row["forward_ms_pytorch"] / row["forward_ms_noprop"])
