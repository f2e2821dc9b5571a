"""How many intra-op threads a run uses: ``[speed] threads = "auto" | "torch" | N``.

PyTorch starts one thread per core it sees. When other work shares those cores, small per-block
operations wait for every thread hand-off and a run takes several times longer than with one
thread (``benchmarks/under_load.py``). ``"auto"`` (the default) picks:

1. ``OMP_NUM_THREADS`` when the user set it: an explicit choice wins.
2. Otherwise the CPUs this process may really use: its CPU affinity, capped by a cgroup CPU
   quota (``cpu.max`` or ``cpu.cfs_quota_us``), not ``os.cpu_count()``;
3. divided among the noprop processes started together (``NOPROP_JOBS``, set by ``--jobs`` and
   by nox sessions run side by side; ``LOCAL_WORLD_SIZE`` under torchrun);
4. at most one thread per ``WORK_PER_THREAD`` input values of a minibatch (C·H·W × batch size).
   Below that a second thread gains little on a quiet machine and loses much on a shared one
   (digits, 8·8 × 64 = 4 096 values; measured in docs/speed.md and docs/measurements.md).

The rule reads nothing that changes from one start to the next (not the machine's load), so a
fixed seed gives the same numbers on every rerun: CPU results depend on the thread count, since
reductions split their work per thread. When other work keeps CPUs busy at the start, the run
says so and suggests ``speed.threads = 1``. The choice is printed in the run's summary and
written to metrics.json (``threads``, ``threads_reason``). ``"torch"`` leaves PyTorch's own
default; a number sets it.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from pathlib import Path

import attrs

WORK_PER_THREAD = 8192
JOBS_ENV = "NOPROP_JOBS"


def sharing_cpus(jobs: int) -> dict[str, str]:
    """The environment that tells noprop processes started together that ``jobs`` of them share
    this machine's CPUs: the thread policy gives each its share (what launchers set)."""
    return {JOBS_ENV: str(jobs)}


@attrs.frozen
class ThreadChoice:
    count: int | None  # None: PyTorch's default left in place
    reason: str


def _cgroup_quota(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """CPUs allowed by a cgroup quota (v2 ``cpu.max``, v1 ``cpu.cfs_quota_us``), None if unlimited."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return None if quota_us <= 0 else quota_us / period_us
    except (OSError, ValueError):
        return None


def usable_cpus() -> int:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = _cgroup_quota()
    if quota is not None:
        cpus = min(cpus, max(1, math.floor(quota)))
    return max(1, cpus)


def busy_cpus(samples: int = 5, interval: float = 0.02) -> float:
    """CPUs other work keeps busy now: runnable tasks other than this one (``/proc/loadavg``'s
    fourth field), the median of a few samples. Not the load average: it lags by a minute and
    counts tasks waiting for I/O (0.85–1.0 on an idle container here)."""
    counts = []
    for index in range(samples):
        try:
            counts.append(int(Path("/proc/loadavg").read_text().split()[3].split("/")[0]) - 1)
        except (OSError, ValueError, IndexError):
            return 0.0
        if index + 1 < samples:
            time.sleep(interval)
    return float(max(0, statistics.median(counts)))


def _jobs() -> int:
    for name in (JOBS_ENV, "LOCAL_WORLD_SIZE"):
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) >= 1:
            return int(value)
    return 1


def choose_threads(
    setting: str | int, *, values_per_batch: int, cpus: int | None = None, jobs: int | None = None
) -> ThreadChoice:
    if setting == "torch":
        return ThreadChoice(None, "speed.threads = 'torch': PyTorch's default")
    if isinstance(setting, int):
        return ThreadChoice(setting, f"speed.threads = {setting}")
    omp = os.environ.get("OMP_NUM_THREADS", "").strip()
    if omp.isdigit() and int(omp) >= 1:
        return ThreadChoice(int(omp), f"OMP_NUM_THREADS={omp}")
    cpus = usable_cpus() if cpus is None else cpus
    jobs = _jobs() if jobs is None else jobs
    share = max(1, cpus // jobs)
    by_work = max(1, values_per_batch // WORK_PER_THREAD)
    return ThreadChoice(
        min(share, by_work),
        f"auto: {cpus} usable CPU(s) / {jobs} job(s); {values_per_batch} values per minibatch, "
        f"one thread per {WORK_PER_THREAD}",
    )


def busy_hint(threads: int, busy: float | None = None) -> str | None:
    """A one-line hint when other work keeps CPUs busy and the run uses several threads."""
    busy = busy_cpus() if busy is None else busy
    if threads > 1 and busy >= 1:
        return (
            f"other work keeps {busy:.0f} CPU(s) busy; with {threads} threads this run may be much slower "
            "than with one: --set speed.threads=1"
        )
    return None


def apply_threads(choice: ThreadChoice) -> int:
    """Set the choice in PyTorch; returns the thread count now in effect."""
    import torch

    if choice.count is not None:
        torch.set_num_threads(choice.count)
    return torch.get_num_threads()
