"""Tracking can never stall a run: the tracker lives in its own process (noprop_core.engine.training.tracker_process).

The stand-in for "an Aim repository on a full disk whose flush waits forever" is a real
third-party tracker plugin whose every write blocks forever (a tmpfs cannot be mounted in CI).
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import REPO
from helpers import NOPROP, install_distribution

SMALL = ["--set", "data.subset=200", "--set", "variant.timesteps=2", "--set", "eval.train_subset=50"]

STUCK_TRACKER = """
import time

import attrs

from noprop_core import Tracker, TrackerConfig, hookimpl


@attrs.frozen(kw_only=True)
class StuckConfig(TrackerConfig):
    pass


class StuckTracker(Tracker):
    def track(self, value, **where):
        time.sleep(10**6)  # a write that never returns


def build(config, *, experiment, run_dir, **_context):
    return StuckTracker()


@hookimpl
def noprop_register_trackers(registry):
    registry.add("stuck", build, config=StuckConfig)
"""


@pytest.fixture
def stuck_tracker_env(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    install_distribution(site, "noprop-stuck-tracker", "stuck_tracker", STUCK_TRACKER)
    env = {k: v for k, v in os.environ.items() if k != "NOPROP_DISABLE_PLUGIN_AUTOLOAD"}
    return {**env, "PYTHONPATH": os.pathsep.join([str(site), *sys.path]), "NOPROP_TRACKER_TIMEOUT": "3"}


def test_a_tracker_that_blocks_forever_is_detached_and_the_run_finishes(stuck_tracker_env, tmp_path):
    out = tmp_path / "run"
    result = subprocess.run(
        [NOPROP, "run", *SMALL, "--set", "train.epochs=2", "--set", "tracker.name=stuck", "--out", str(out)],
        cwd=REPO,
        env=stuck_tracker_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "noprop: warning: tracker 'stuck' detached: it did not finish within 3 s" in result.stderr
    assert "Traceback" not in result.stderr
    assert json.loads((out / "metrics.json").read_text())["epochs_completed"] == 2


def test_sigterm_stops_a_run_whose_tracker_is_stuck_within_seconds(stuck_tracker_env, tmp_path):
    out = tmp_path / "run"
    process = subprocess.Popen(
        [NOPROP, "run", *SMALL, "--set", "train.epochs=200", "--set", "tracker.name=stuck", "--out", str(out)],
        cwd=REPO,
        env=stuck_tracker_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not (out / "checkpoint.pt").exists():  # the tracker is stuck since the first epoch's end
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)  # the step in progress, a checkpoint, the 3 s tracker wait
    assert process.returncode == 130, stderr
    assert torch.load(out / "checkpoint.pt", weights_only=True)["epoch"] < 200  # stopped, not waited out
    assert "noprop: stopped:" in stderr and "noprop: error" not in stderr
    assert "Continue with: noprop run --resume" in stderr


def test_a_held_aim_lock_delays_tracking_only_by_the_bounded_wait(tmp_path):
    from noprop_plugins.trackers.aim_tracker.tracker import init_lock_path

    repo = tmp_path / "aim"
    with open(init_lock_path(repo.absolute()), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process is opening this repository, forever
        env = {**os.environ, "NOPROP_DISABLE_PLUGIN_AUTOLOAD": "1"}
        result = subprocess.run(
            [
                NOPROP,
                "run",
                *SMALL,
                "--set",
                "train.epochs=1",
                "--aim-repo",
                str(repo),
                "--set",
                "tracker.lock_wait=2",
                "--out",
                str(tmp_path / "run"),
            ],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert result.returncode == 0, result.stderr
    assert f"noprop: waiting up to 2 s for another process opening Aim repository {repo}" in result.stderr
    assert "still held after 2 s" in result.stderr  # then training goes on untracked, saying so
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["epochs_completed"] == 1 and metrics["aim_run_hash"] is None


def children(pid: int) -> list[int]:
    found = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat_file.parent.name))
    return found


def test_a_killed_run_leaves_no_tracker_process_behind(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "NOPROP_DISABLE_PLUGIN_AUTOLOAD": "1"}
    process = subprocess.Popen(
        [NOPROP, "run", *SMALL, "--set", "train.epochs=200", "--aim-repo", str(tmp_path / "aim"), "--out", str(out)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not (out / "checkpoint.pt").exists():
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    trackers = children(process.pid)
    assert trackers, "the tracker runs in a child process"
    process.kill()
    process.wait()
    deadline = time.monotonic() + 60
    while any(
        Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]
        for pid in trackers
    ):
        assert time.monotonic() < deadline, "the tracker process outlived the run"
        time.sleep(0.1)
