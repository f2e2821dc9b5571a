"""`local`: jobs as child processes of this machine, ``workers`` at a time.

Each worker gets its share of the CPUs (``NOPROP_JOBS`` = workers, which the thread policy
divides by) or, with ``gpus_per_job``, GPUs of its own (``CUDA_VISIBLE_DEVICES``). A job that
exits asking to be requeued (a preemption signal) is started again, and resumes.
"""

from __future__ import annotations

import os
import queue
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import attrs

from noprop_core import (
    REQUEUE_EXIT_CODE,
    Job,
    JobOutcome,
    Launcher,
    LauncherConfig,
    NopropError,
    at_least,
    hookimpl,
    run_job,
    sharing_cpus,
)


@attrs.frozen(kw_only=True)
class LocalLauncherConfig(LauncherConfig):
    gpus_per_job: int = attrs.field(default=0, validator=at_least(0))  # 0: CPU jobs sharing the CPUs


def visible_gpus() -> list[str]:
    """The GPUs this process may hand out: CUDA_VISIBLE_DEVICES, else every device torch sees."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [device for device in listed.split(",") if device.strip()]
    import torch

    return [str(index) for index in range(torch.cuda.device_count())]


class LocalLauncher(Launcher):
    config: LocalLauncherConfig

    def describe(self) -> str:
        share = f"{self.config.gpus_per_job} GPU(s) each" if self.config.gpus_per_job else "sharing the CPUs"
        return f"this machine, {self.config.workers} job(s) at a time, {share}"

    def launch(self, jobs: Sequence[Job], notify) -> list[JobOutcome]:
        workers = min(self.config.workers, max(1, len(jobs)))
        devices: queue.Queue[list[str]] = queue.Queue()
        if self.config.gpus_per_job:
            gpus = visible_gpus()
            if len(gpus) < self.config.gpus_per_job * workers:
                raise NopropError(
                    f"launcher.gpus_per_job: {workers} worker(s) × {self.config.gpus_per_job} GPU(s) "
                    f"need {self.config.gpus_per_job * workers}, this machine shows {len(gpus)}"
                )
            for worker in range(workers):
                devices.put(gpus[worker * self.config.gpus_per_job : (worker + 1) * self.config.gpus_per_job])

        def run(job: Job) -> JobOutcome:
            extra = sharing_cpus(workers)
            assigned = devices.get() if self.config.gpus_per_job else []
            if assigned:
                extra["CUDA_VISIBLE_DEVICES"] = ",".join(assigned)
            try:
                starts = 0
                while True:
                    starts += 1
                    code = run_job(job, {**os.environ, **extra})
                    if code != REQUEUE_EXIT_CODE or starts > self.config.max_requeues:
                        return JobOutcome(job, code, starts)
                    notify(
                        f"{job.name}: preempted with a checkpoint; started again ({starts} of "
                        f"{self.config.max_requeues} requeues)"
                    )
            finally:
                if assigned:
                    devices.put(assigned)

        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(run, jobs))


def build(config: LocalLauncherConfig) -> LocalLauncher:
    return LocalLauncher(config)


@hookimpl
def noprop_register_launchers(registry) -> None:
    registry.add(
        "local",
        build,
        config=LocalLauncherConfig,
        description="jobs on this machine, N at a time, each with its share of CPUs or its own GPUs",
    )


__all__ = ["LocalLauncher", "LocalLauncherConfig"]
