"""The `slurm` launcher on a real one-node Slurm cluster (tests/slurm_cluster.py): a 4-trial sweep
on the digits as an array of 2 workers sharing the study, and a seed preempted with Slurm's own
signal mid-epoch, requeued by submitit and resumed to the uninterrupted run's losses.

Where the daemons cannot start (not root, packages missing), both run on submitit's local
executor instead — the same launcher code and requeue protocol without the cluster — and the
test says so with a warning naming what failed."""

from __future__ import annotations

import json
import os
import signal
import time
import warnings

import optuna
import pytest
from launch_helpers import SEED_RUN, noprop_process, outcome, parent_of, signal_pending, start, wait_for
from slurm_cluster import OneNodeSlurm

pytestmark = pytest.mark.slow

FAST = '["data.validation=287", "train.epochs=2", "train.max_batches=3", "tracker.name=\\"none\\"", "device=\\"cpu\\""]'


@pytest.fixture(scope="module")
def cluster():
    slurm = OneNodeSlurm()
    reason = slurm.start()
    if reason is not None:
        slurm.stop()
        warnings.warn(
            f"no one-node Slurm cluster ({reason}): the slurm launcher runs on submitit's local executor", stacklevel=1
        )
        yield None
        return
    try:
        yield slurm
    finally:
        slurm.stop()


def launcher_options(cluster) -> list[str]:
    options = ["--launcher", "slurm", "--launcher-set", "cpus_per_job=1", "--launcher-set", "time_minutes=10"]
    return options + ([] if cluster is not None else ["--launcher-set", 'executor="local"'])


def test_a_sweep_runs_its_trials_as_slurm_jobs_sharing_one_study(cluster, tmp_path):
    sweep = tmp_path / "digits.toml"
    sweep.write_text(
        f'recipe = "digits_dt"\nset = {FAST}\nmethod = "random"\ntrials = 4\n\n'
        '[space]\n"train.lr" = { type = "log_float", low = 3e-4, high = 1e-2 }\n'
    )
    out = tmp_path / "out"
    process = start(
        "sweep",
        str(sweep),
        "--out",
        str(out),
        *launcher_options(cluster),
        "--launcher-set",
        "workers=2",
        env=cluster.env if cluster else None,
    )
    _, stderr = process.communicate(timeout=900)
    assert process.returncode == 0, stderr[-3000:]
    summary = json.loads((out / "sweep.json").read_text())
    assert [trial["state"] for trial in summary["trials"]] == ["complete"] * 4
    folders = [trial["run_dir"] for trial in summary["trials"]]
    assert sorted(folders) == [f"trial-{n}" for n in range(4)]  # every trial once, in its own folder
    for folder in folders:
        assert json.loads((out / folder / "metrics.json").read_text())["epochs_completed"] == 2
    study = optuna.load_study(study_name="digits", storage=f"sqlite:///{out / 'study.db'}")
    assert len(study.trials) == 4
    assert (out / "best.toml").is_file()
    workers = sorted(path.name for path in (out / "slurm").iterdir() if path.is_dir())
    assert len(workers) >= 2, workers  # one submitit folder per worker job
    if cluster is not None:
        assert "Slurm partition" in stderr  # went through sbatch, not the local executor
        assert cluster.run("squeue", "-h").stdout.strip() == ""  # nothing left on the cluster


def test_a_seed_preempted_by_slurm_is_requeued_and_resumes_exactly(cluster, tmp_path):
    reference = start(*SEED_RUN, "--out", str(tmp_path / "whole"), "--launcher", "local")
    _, stderr = reference.communicate(timeout=600)
    assert reference.returncode == 0, stderr
    out = tmp_path / "g"
    process = start(*SEED_RUN, "--out", str(out), *launcher_options(cluster), env=cluster.env if cluster else None)
    wait_for(out / "seed-0" / "checkpoint.pt", process)  # an epoch done: the signal lands inside a later one
    if cluster is not None:
        job = cluster.run("squeue", "-h", "-o", "%i").stdout.split()[0]
        # Held still until Slurm's signal waits on it: a busy cluster's latency cannot let the run finish first.
        noprop = noprop_process(out / "seed-0")
        os.kill(noprop, signal.SIGSTOP)
        try:
            assert cluster.run("scancel", "--signal=USR2", job).returncode == 0  # what Slurm sends before a limit
            for _ in range(600):
                if signal_pending(noprop, signal.SIGUSR2):
                    break
                time.sleep(0.1)
            assert signal_pending(noprop, signal.SIGUSR2), "Slurm's signal did not reach the noprop process"
        finally:
            os.kill(noprop, signal.SIGCONT)
        requeued = False
        for _ in range(120):  # Slurm holds a requeued job ~2 minutes (BeginTime): start it now instead
            if cluster.run("squeue", "-h", "-o", "%T", "-j", job).stdout.strip() == "PENDING":
                requeued = cluster.run("scontrol", "update", f"JobId={job}", "StartTime=now").returncode == 0
                break
            time.sleep(0.5)
        assert requeued, "the job was not requeued"
    else:  # SIGUSR2 to submitit's job process, as Slurm sends it
        os.kill(parent_of(noprop_process(out / "seed-0")), signal.SIGUSR2)
    _, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr[-3000:]
    assert "preempted: exit 75, to be requeued" in (out / "seed-0.log").read_text()
    assert outcome(out / "seed-0") == outcome(tmp_path / "whole" / "seed-0")


def test_the_cluster_helper_reports_why_it_cannot_start_without_root(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    slurm = OneNodeSlurm()
    try:
        assert slurm.start() == "not root: the daemons run as root"
    finally:
        slurm.stop()
