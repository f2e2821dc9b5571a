"""Nothing lost at any instant: a sweep worker or a seed group killed (SIGKILL, nothing cleaned
up) at each named point of a trial's or a seed's life (``noprop_core.engine.fault_points``), then
the same command again, ends with exactly the planned work done: every planned trial complete
with its folder and a best.toml that runs; every seed finished and in protocol.json. The kill is
deterministic (``NOPROP_KILL_AT``), not timed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from helpers import NOPROP
from noprop_core.engine.fault_points import KILL_AT, SEED_GROUP_POINTS, SWEEP_POINTS

SWEEP = """recipe = "digits_dt"
set = ["data.validation=287", "data.subset=600", "train.epochs=2", "train.max_batches=2", "variant.timesteps=2",
       "eval.train_subset=50", "tracker.name=\\"none\\"", "device=\\"cpu\\""]
method = "random"
trials = 2
[space]
"train.lr" = { type = "log_float", low = 3e-4, high = 1e-2 }
"""
GROUP = ["--set", "data.subset=600", "--set", "train.epochs=2", "--set", "train.max_batches=2"]
GROUP += ["--set", "variant.timesteps=2", "--set", "eval.train_subset=50", "--set", "tracker.name=none"]


def noprop(*args: str, cwd: Path, kill_at: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "NOPROP_DISABLE_PLUGIN_AUTOLOAD": "1", "NOPROP_JOBS": "2"}
    env.pop(KILL_AT, None)
    if kill_at is not None:
        env[KILL_AT] = kill_at
    return subprocess.run([NOPROP, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
@pytest.mark.parametrize("point", SWEEP_POINTS)
def test_a_sweep_killed_at_each_point_ends_with_every_planned_trial(point, tmp_path):
    (tmp_path / "s.toml").write_text(SWEEP)
    killed = noprop("sweep", "s.toml", "--out", "out", cwd=tmp_path, kill_at=point)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    again = noprop("sweep", "s.toml", "--out", "out", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    summary = json.loads((tmp_path / "out" / "sweep.json").read_text())
    trials = summary["trials"]
    assert [t["state"] for t in trials] == ["complete", "complete"] and summary["states"]["running"] == 0
    for trial in trials:
        metrics = json.loads((tmp_path / "out" / trial["run_dir"] / "metrics.json").read_text())
        assert metrics["epochs_completed"] == 2 and metrics["test_accuracy_runs"]
        assert trial["objective"] == pytest.approx(metrics["validation_accuracy"])
    assert len({t["run_dir"] for t in trials}) == 2
    best = noprop("run", "out/best.toml", "--smoke", "--out", "best", cwd=tmp_path)
    assert best.returncode == 0, best.stderr[-2000:]


@pytest.mark.slow
@pytest.mark.parametrize("launch", [[], ["--jobs", "2"]], ids=["in-process", "local-launcher"])
@pytest.mark.parametrize("point", SEED_GROUP_POINTS)
def test_a_seed_group_killed_at_each_point_ends_with_every_seed(point, launch, tmp_path):
    command = ["run", "digits_dt", "--seeds", "0", "1", "--out", "g", *GROUP, *launch]
    killed = noprop(*command, cwd=tmp_path, kill_at=point)
    # Killed itself, or (through a launcher) told that a killed seed's job failed.
    assert killed.returncode in (-signal.SIGKILL, 2), killed.stderr[-2000:]
    again = noprop(*command, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    protocol = json.loads((tmp_path / "g" / "protocol.json").read_text())
    assert protocol["seeds"] == [0, 1] and [run["seed"] for run in protocol["runs"]] == [0, 1]
    for seed in (0, 1):
        metrics = json.loads((tmp_path / "g" / f"seed-{seed}" / "metrics.json").read_text())
        assert metrics["epochs_completed"] == 2 and metrics["test_accuracy_runs"] and metrics["seed"] == seed
