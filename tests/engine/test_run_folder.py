"""One run per folder, nothing left behind by a failed start, and a resume that checks its recipe."""

from __future__ import annotations

import errno
import json
import math
import os
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest
import torch

from conftest import REPO
from helpers import NOPROP, deterministic_history
from noprop_core.engine import run_directory
from noprop_core.engine.training.trainer import rescale_cosine
from noprop_core.errors import REQUEUE_EXIT_CODE, NopropError

SMALL = [
    "--set",
    "data.subset=300",
    "--set",
    "variant.timesteps=3",
    "--set",
    "tracker.name=none",
    "--set",
    "eval.every=1",
    "--set",
    'train.lr_schedule="constant"',
]


def noprop(*args: str, umask: int | None = None, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "NOPROP_DISABLE_PLUGIN_AUTOLOAD": "1", **env}
    preexec = (lambda: os.umask(umask)) if umask is not None else None
    return subprocess.run(
        [NOPROP, *args], cwd=REPO, env=environment, capture_output=True, text=True, timeout=600, preexec_fn=preexec
    )


def test_two_runs_into_one_folder_one_runs_the_other_exits_2_at_once(tmp_path):
    out = tmp_path / "shared"
    env = {**os.environ, "NOPROP_DISABLE_PLUGIN_AUTOLOAD": "1"}
    log = tmp_path / "first.log"  # a file, not a pipe: a thousand epochs of progress must never block the run
    with log.open("w") as sink:
        first = subprocess.Popen(
            [NOPROP, "run", *SMALL, "--set", "train.epochs=1000", "--set", "seed=1", "--out", str(out)],
            cwd=REPO,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while not (out / "checkpoint.pt").exists():  # the first run is training
            assert first.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.02)
        second = noprop("run", *SMALL, "--set", "train.epochs=1", "--set", "seed=2", "--out", str(out))
        assert second.returncode == 2, second.stderr
        # One line and nothing else: the second run trained nothing and did not wait for the first, which still
        # runs (a thousand epochs; ordering, not a clock, so a loaded machine cannot make this flaky).
        assert second.stderr.strip() == (
            f"noprop: error: {out}: in use by process {first.pid}; wait for it to end or "
            "choose another directory (wanted it for a new run)"
        )
        assert first.poll() is None
        first.send_signal(signal.SIGUSR2)  # stop it with a checkpoint rather than wait for its thousand epochs
        assert first.wait(timeout=600) == REQUEUE_EXIT_CODE, log.read_text()
    finally:
        first.kill()
        first.wait()
    assert "seed = 1" in (out / "recipe.toml").read_text()
    checkpoint = torch.load(out / "checkpoint.pt", weights_only=True)
    assert checkpoint["recipe"]["seed"] == 1 and checkpoint["recipe"]["train"]["epochs"] == 1000


def test_a_start_that_fails_before_training_leaves_no_folder(tmp_path):
    out = tmp_path / "nested" / "run"
    result = noprop(
        "run",
        "--set",
        "data.name=mnist",
        "--set",
        f"data.root={tmp_path / 'empty'}",
        "--set",
        "data.download=false",
        "--out",
        str(out),
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert not out.exists()
    existing = tmp_path / "made-by-the-user"
    existing.mkdir()
    (existing / "notes.txt").write_text("mine")
    again = noprop(
        "run",
        "--set",
        "data.name=mnist",
        "--set",
        f"data.root={tmp_path / 'empty'}",
        "--set",
        "data.download=false",
        "--out",
        str(existing),
    )
    assert again.returncode == 2
    assert sorted(p.name for p in existing.iterdir()) == ["notes.txt"]  # the user's folder and file stay


@pytest.fixture(scope="module")
def two_epochs(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("resume") / "two"
    result = noprop("run", *SMALL, "--set", "train.epochs=2", "--out", str(out), umask=0o027)
    assert result.returncode == 0, result.stderr
    return out


def test_run_files_follow_the_umask(two_epochs):
    assert not (two_epochs / ".lock").exists()  # removed when the run ends
    for name in ("recipe.toml", "checkpoint.pt", "metrics.json"):
        assert stat.S_IMODE((two_epochs / name).stat().st_mode) == 0o640, name


def test_resuming_a_finished_run_changes_nothing(two_epochs):
    before = {p.name: p.read_bytes() for p in two_epochs.iterdir() if p.name != ".lock"}
    result = noprop("run", "--resume", str(two_epochs))
    assert result.returncode == 0, result.stderr
    assert "finished; nothing to do" in result.stdout
    assert {p.name: p.read_bytes() for p in two_epochs.iterdir() if p.name != ".lock"} == before


def test_an_edited_recipe_that_changes_the_model_or_optimizer_is_refused(two_epochs, tmp_path):
    copy = tmp_path / "edited"
    copy.mkdir()
    for path in two_epochs.iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    recipe = copy / "recipe.toml"
    recipe.write_text(recipe.read_text().replace("lr = 0.002", "lr = 0.003"))
    result = noprop("run", "--resume", str(copy), "--set", "variant.timesteps=4", "--set", "train.epochs=3")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith(
        f"noprop: error: {recipe}: cannot change mid-run: train.lr (0.002 in the "
        "checkpoint, 0.003 now), variant.timesteps (3 in the checkpoint, 4 now)"
    )
    assert json.loads((copy / "metrics.json").read_text())["epochs_completed"] == 2


def test_training_a_finished_run_further_equals_training_that_long_from_the_start(two_epochs, tmp_path):
    longer = tmp_path / "longer"
    longer.mkdir()
    for path in two_epochs.iterdir():
        (longer / path.name).write_bytes(path.read_bytes())
    resumed = noprop("run", "--resume", str(longer), "--set", "train.epochs=4")
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming {longer}: 2 of 4 epochs done" in resumed.stderr
    whole = tmp_path / "whole"
    assert noprop("run", *SMALL, "--set", "train.epochs=4", "--out", str(whole)).returncode == 0
    extended, straight = (json.loads((d / "metrics.json").read_text()) for d in (longer, whole))
    assert deterministic_history(extended["history"]) == deterministic_history(straight["history"])
    assert extended["test_accuracy"] == straight["test_accuracy"]
    assert extended["recipe_changes"] == [{"epoch": 3, "key": "train.epochs", "from": 2, "to": 4}]
    assert "epochs = 4" in (longer / "recipe.toml").read_text()


def test_eval_keeps_its_result_when_evaluations_json_is_corrupt_and_clears_stale_temporaries(two_epochs, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    for path in two_epochs.iterdir():
        (run / path.name).write_bytes(path.read_bytes())
    (run / "evaluations.json").write_text("{not json")
    (run / ".checkpoint.pt.k2j3h4").write_bytes(b"half a checkpoint from a killed write")
    result = noprop("eval", str(run))
    assert result.returncode == 0, result.stderr
    evaluations = json.loads((run / "evaluations.json").read_text())
    assert len(evaluations) == 1 and evaluations[0]["epoch"] == 2
    aside = [p for p in run.iterdir() if p.name.startswith("evaluations.json.corrupt-")]
    assert len(aside) == 1 and aside[0].read_text() == "{not json"
    assert not (run / ".checkpoint.pt.k2j3h4").exists()


def test_a_failed_write_leaves_the_previous_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "metrics.json"
    run_directory.write_json(target, {"epoch": 1})

    def disk_full(_fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(run_directory.os, "fsync", disk_full)
    with pytest.raises(
        NopropError, match=r"cannot write \(No space left on device\); the previous metrics.json, if any, is intact"
    ):
        run_directory.write_json(target, {"epoch": 2})
    assert json.loads(target.read_text()) == {"epoch": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_a_rescaled_cosine_schedule_follows_the_new_length_from_where_it_is():
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=0.3)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=4)
    for _ in range(2):
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.15)  # half way down a 4-epoch cosine
    rescale_cosine(scheduler, 10)
    for epoch in range(2, 10):
        assert optimizer.param_groups[0]["lr"] == pytest.approx(0.3 * (1 + math.cos(math.pi * epoch / 10)) / 2)
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)
