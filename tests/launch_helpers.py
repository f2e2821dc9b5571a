"""Running `noprop` through a launcher in tests: the seed run to preempt, and finding its process."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

from conftest import REPO
from helpers import NOPROP, deterministic_history

# 6 epochs of 14 steps on 400 digits: long enough for a signal to land inside an epoch.
SEED_RUN = [
    "run",
    "digits_dt",
    "--seeds",
    "0",
    "--set",
    "train.epochs=6",
    "--set",
    "data.subset=400",
    "--set",
    "variant.timesteps=3",
    "--set",
    'tracker.name="none"',
]


def start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    environment = {**os.environ, "NOPROP_DISABLE_PLUGIN_AUTOLOAD": "1", **(env or {})}
    return subprocess.Popen(
        [NOPROP, *args], cwd=REPO, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def wait_for(path: Path, process: subprocess.Popen[str], seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.02)


def noprop_process(run_dir: Path) -> int:
    """The pid of the `noprop run` process training into ``run_dir``."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            arguments = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"noprop_core.cli" in arguments and str(run_dir).encode() in arguments:
            return int(entry.name)
    raise AssertionError(f"no noprop process trains into {run_dir}")


def parent_of(pid: int) -> int:
    return int((Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[1])


def signal_pending(pid: int, signum: int) -> bool:
    """Whether ``signum`` waits, undelivered, on process ``pid`` (one held by SIGSTOP)."""
    status = dict(line.split(":\t", 1) for line in (Path("/proc") / str(pid) / "status").read_text().splitlines())
    return any(int(status[field], 16) & (1 << (signum - 1)) for field in ("SigPnd", "ShdPnd"))


def outcome(run_dir: Path) -> dict:
    """What must match between a preempted-then-requeued run and an uninterrupted one."""
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return {
        "history": deterministic_history(metrics["history"]),
        **{key: metrics[key] for key in ("test_accuracy", "train_accuracy", "epochs_completed")},
    }
