"""speed.threads: the rule of ``"auto"`` (noprop_core.speed.threads), its inputs read from the
machine (affinity, cgroup quota, /proc/loadavg), the recipe key, and what a run records."""

from __future__ import annotations

import os

import pytest
import torch

from helpers import digits_trainer
from noprop_core.errors import NopropError
from noprop_core.recipe.loading import load_recipe
from noprop_core.speed import threads
from noprop_core.speed.threads import WORK_PER_THREAD, busy_hint, choose_threads

DIGITS = 8 * 8 * 64  # the default recipe's values per minibatch
MNIST = 28 * 28 * 128


@pytest.fixture(autouse=True)
def no_omp(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv(threads.JOBS_ENV, raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)


@pytest.mark.parametrize(
    ("values", "cpus", "jobs", "expected"),
    [
        (DIGITS, 2, 1, 1),  # tiny work: one thread even on a free machine
        (MNIST, 2, 1, 2),  # enough work for both CPUs
        (MNIST, 16, 1, 12),  # 100 352 // 8 192 = 12: no more threads than the work feeds
        (MNIST, 16, 4, 4),  # four jobs share 16 CPUs
        (MNIST, 2, 3, 1),  # more jobs than CPUs: one each
        (2 * WORK_PER_THREAD - 1, 8, 1, 1),
        (2 * WORK_PER_THREAD, 8, 1, 2),
    ],
)
def test_auto_rule(values, cpus, jobs, expected):
    choice = choose_threads("auto", values_per_batch=values, cpus=cpus, jobs=jobs)
    assert choice.count == expected
    assert f"{cpus} usable" in choice.reason and f"{jobs} job" in choice.reason


def test_explicit_settings_win(monkeypatch):
    assert choose_threads(3, values_per_batch=DIGITS, cpus=2, jobs=1).count == 3
    assert choose_threads("torch", values_per_batch=MNIST, cpus=2, jobs=1).count is None
    monkeypatch.setenv("OMP_NUM_THREADS", "5")
    choice = choose_threads("auto", values_per_batch=DIGITS, cpus=2, jobs=1)
    assert (choice.count, choice.reason) == (5, "OMP_NUM_THREADS=5")


def test_jobs_come_from_the_environment(monkeypatch):
    monkeypatch.setenv(threads.JOBS_ENV, "2")
    assert choose_threads("auto", values_per_batch=MNIST, cpus=8).count == 4
    monkeypatch.setenv(threads.JOBS_ENV, "junk")  # ignored, not a crash
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    assert choose_threads("auto", values_per_batch=MNIST, cpus=8).count == 2


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"cpu.max": "150000 100000\n"}, 1.5),
        ({"cpu.max": "max 100000\n"}, None),
        ({"cpu/cpu.cfs_quota_us": "300000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 3.0),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
        ({}, None),
    ],
)
def test_cgroup_quota(tmp_path, files, expected):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert threads._cgroup_quota(tmp_path) == expected


def test_usable_cpus_are_the_affinity_capped_by_the_quota(monkeypatch):
    monkeypatch.setattr(threads, "_cgroup_quota", lambda: 1.5)
    assert threads.usable_cpus() == 1
    monkeypatch.setattr(threads, "_cgroup_quota", lambda: None)
    assert threads.usable_cpus() == len(os.sched_getaffinity(0))


def test_busy_hint():
    assert busy_hint(2, busy=0.0) is None
    assert busy_hint(1, busy=3.0) is None  # one thread already
    assert "speed.threads=1" in busy_hint(2, busy=1.0)


def test_busy_cpus_sees_a_busy_process():
    import subprocess
    import sys
    import time

    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        assert threads.busy_cpus() >= 1
    finally:
        spinner.kill()
        spinner.wait()


@pytest.mark.parametrize("value", ['"many"', "0", "true", "2.5", "-1"])
def test_bad_settings_are_one_line_errors(registry, value):
    with pytest.raises(NopropError, match=r"digits_dt.toml: speed.threads: expected"):
        load_recipe("recipes/digits_dt.toml", registry, [f"speed.threads={value}"])


def test_a_run_applies_and_records_its_choice(registry):
    before = torch.get_num_threads()
    try:
        trainer = digits_trainer(registry, "speed.threads=1", "train.epochs=1")
        assert torch.get_num_threads() == 1
        assert trainer.experiment.threads.count == 1
        assert trainer.experiment.threads.reason == "speed.threads = 1"
    finally:
        torch.set_num_threads(before)
