"""A preemption signal mid-epoch: the job checkpoints inside the epoch, exits asking to be
requeued, is started again by its launcher and resumes; its losses equal an uninterrupted run's.
`local` requeues by itself; `slurm` through submitit's protocol (its SIGUSR2 handler, here on
submitit's local executor; tests/integration/test_slurm_cluster.py does it on a real cluster)."""

from __future__ import annotations

import os
import signal

import pytest
from launch_helpers import SEED_RUN, noprop_process, outcome, parent_of, start, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("launch") / "whole"
    process = start(*SEED_RUN, "--out", str(out), "--launcher", "local")
    _, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr
    return outcome(out / "seed-0")


def preempt_and_finish(launcher: list[str], out, signal_whom) -> str:
    process = start(*SEED_RUN, "--out", str(out), *launcher)
    wait_for(out / "seed-0" / "checkpoint.pt", process)  # an epoch done: the signal lands in a later one
    os.kill(signal_whom(noprop_process(out / "seed-0")), signal.SIGUSR2)
    _, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr
    log = (out / "seed-0.log").read_text()
    assert "preempted: exit 75, to be requeued" in log and "stopped in epoch" in log
    return stderr


def test_the_local_launcher_requeues_a_preempted_seed_and_it_resumes_exactly(uninterrupted, tmp_path):
    stderr = preempt_and_finish(["--launcher", "local"], tmp_path / "g", signal_whom=lambda pid: pid)
    assert "preempted with a checkpoint; started again (1 of 3 requeues)" in stderr
    assert outcome(tmp_path / "g" / "seed-0") == uninterrupted


def test_submitits_protocol_requeues_a_preempted_seed_and_it_resumes_exactly(uninterrupted, tmp_path):
    # The signal goes to submitit's job process, the `noprop` command's parent, as Slurm sends it.
    out = tmp_path / "g"
    preempt_and_finish(["--launcher", "slurm", "--launcher-set", 'executor="local"'], out, signal_whom=parent_of)
    submitit_log = "".join(path.read_text() for path in (out / "slurm").glob("*/*_log.out"))
    assert "this job is preempted" in submitit_log or "Requeued job" in submitit_log
    assert outcome(out / "seed-0") == uninterrupted
