"""The `local` launcher by value: each worker's own GPUs, the CPU share it announces, requeues
counted and bounded; a job resumes once its checkpoint exists."""

from __future__ import annotations

import threading
import time

import pytest

import noprop_plugins.launchers.local as local
from noprop_core import REQUEUE_EXIT_CODE, Job, NopropError
from noprop_plugins.launchers.local import LocalLauncher, LocalLauncherConfig


def launcher(**config) -> LocalLauncher:
    return LocalLauncher(LocalLauncherConfig(name="local", **config))


def test_each_worker_gets_gpus_of_its_own_and_the_cpu_share(monkeypatch, tmp_path):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5,6,7")
    lock, running, seen = threading.Lock(), set(), []

    def fake_run_job(job, environment, started=None):
        devices = environment["CUDA_VISIBLE_DEVICES"]
        with lock:
            assert devices not in running, "two jobs at once on the same GPUs"
            running.add(devices)
            seen.append((devices, environment["NOPROP_JOBS"]))
        time.sleep(0.05)
        with lock:
            running.discard(devices)
        return 0

    monkeypatch.setattr(local, "run_job", fake_run_job)
    outcomes = launcher(workers=2, gpus_per_job=2).launch(
        [Job(f"j{i}", [], tmp_path / f"{i}.log") for i in range(5)], notify=lambda text: None
    )
    assert [o.job.name for o in outcomes] == [f"j{i}" for i in range(5)] and all(o.ok for o in outcomes)
    assert {devices for devices, _ in seen} == {"3,5", "6,7"} and {jobs for _, jobs in seen} == {"2"}


def test_too_few_gpus_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    with pytest.raises(
        NopropError, match=r"launcher.gpus_per_job: 2 worker\(s\) × 1 GPU\(s\) need 2, this machine shows 1"
    ):
        launcher(workers=2, gpus_per_job=1).launch([Job(f"j{i}", [], tmp_path / f"{i}.log") for i in range(2)], print)


@pytest.mark.parametrize(("codes", "exit_code", "starts"), [([75, 75, 0], 0, 3), ([75, 75, 75], 75, 3), ([2], 2, 1)])
def test_a_job_asking_to_be_requeued_starts_again_up_to_max_requeues(monkeypatch, tmp_path, codes, exit_code, starts):
    returned = iter(codes)
    monkeypatch.setattr(local, "run_job", lambda job, environment, started=None: next(returned))
    told = []
    [outcome] = launcher(max_requeues=2).launch([Job("j", [], tmp_path / "j.log")], notify=told.append)
    assert (outcome.exit_code, outcome.starts) == (exit_code, starts)
    assert len(told) == min(codes.count(REQUEUE_EXIT_CODE), 2)


def test_a_job_resumes_once_its_checkpoint_exists(tmp_path):
    job = Job(
        "seed-0",
        ["run", "r.toml", "--out", "d"],
        tmp_path / "log",
        resume_arguments=["run", "--resume", "d"],
        resumable=tmp_path / "checkpoint.pt",
    )
    assert job.command()[-4:] == ["run", "r.toml", "--out", "d"]
    (tmp_path / "checkpoint.pt").write_bytes(b"")
    assert job.command()[-3:] == ["run", "--resume", "d"]
