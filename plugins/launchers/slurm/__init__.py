"""`slurm`: jobs submitted to a Slurm cluster through submitit, as one array job.

Each job asks for ``cpus_per_job`` CPUs and ``gpus_per_job`` GPUs for ``time_minutes`` on
``partition``; ``workers`` of them run at once (the array's parallelism). Before a time limit
or on preemption Slurm signals the job (SIGUSR2, ``signal_delay_s`` ahead): submitit's handler
asks the `noprop` process to checkpoint at once (within its epoch), then requeues the job, which
resumes from the checkpoint. ``executor = "local"`` runs the same jobs through submitit's local
executor on this machine (the same checkpoint and requeue protocol, no cluster needed).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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
    one_of,
    run_job,
    sharing_cpus,
    stop_for_requeue,
)


@attrs.frozen(kw_only=True)
class SlurmLauncherConfig(LauncherConfig):
    partition: str | None = None  # None: the cluster's default partition
    time_minutes: int = attrs.field(default=60, validator=at_least(1))  # per job; it is requeued past it
    cpus_per_job: int = attrs.field(default=2, validator=at_least(1))
    gpus_per_job: int = attrs.field(default=0, validator=at_least(0))
    mem_gb: float | None = None  # None: the partition's default
    signal_delay_s: int = attrs.field(default=90, validator=at_least(0))  # SIGUSR2 this long before the limit
    folder: str = "slurm"  # submitit's job files and logs, under the sweep's or the group's folder
    setup: list[str] = attrs.field(factory=list)  # shell lines run before each job (module load …, source …)
    sbatch: dict[str, Any] = attrs.field(factory=dict)  # more #SBATCH options, e.g. { account = "lab" }
    executor: str = attrs.field(default="slurm", validator=one_of("slurm", "local"))


class NopropJob:
    """What submitit runs: one `noprop` command in a child process. submitit calls
    ``checkpoint`` from its SIGUSR2 handler; it stops the command with a checkpoint and hands
    back the same job to requeue (the command resumes once the checkpoint exists)."""

    def __init__(self, job: Job, environment: dict[str, str] | None = None) -> None:
        self.job = job
        self.environment = environment or {}
        self._process: subprocess.Popen[bytes] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"job": self.job, "environment": self.environment, "_process": None}

    def _started(self, process: subprocess.Popen[bytes]) -> None:
        self._process = process

    def __call__(self) -> int:
        code = run_job(self.job, {**os.environ, **self.environment}, started=self._started)
        if code == REQUEUE_EXIT_CODE:
            # Slurm signals every process of the job at once, and the command takes at least a step to stop:
            # submitit's handler has nearly always run by now. Should its signal still be on the way, wait for
            # it (the handler requeues and exits); a command stopped by a signal sent to it alone fails below.
            time.sleep(60)
        if code != 0:
            raise NopropError(JobOutcome(self.job, code).error())
        return code

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        import submitit

        stop_for_requeue(self._process)
        return submitit.helpers.DelayedSubmission(NopropJob(self.job, self.environment))


class SlurmLauncher(Launcher):
    config: SlurmLauncherConfig

    def describe(self) -> str:
        where = (
            "submitit's local executor"
            if self.config.executor == "local"
            else f"Slurm partition {self.config.partition or '(default)'}"
        )
        return (
            f"{where}: {self.config.cpus_per_job} CPU(s), {self.config.gpus_per_job} GPU(s), "
            f"{self.config.time_minutes} min per job, {self.config.workers} at a time"
        )

    def executor(self, folder: Path) -> Any:
        import submitit

        config = self.config
        if config.executor == "local":
            local = submitit.LocalExecutor(folder=folder / "%j", max_num_timeout=config.max_requeues)
            local.update_parameters(
                timeout_min=config.time_minutes,
                gpus_per_node=config.gpus_per_job,
                tasks_per_node=1,
                nodes=1,
                signal_delay_s=config.signal_delay_s,
            )
            return local
        try:
            executor = submitit.SlurmExecutor(folder=folder / "%j", max_num_timeout=config.max_requeues)
        except RuntimeError as exc:
            raise NopropError(
                f"launcher slurm: {' '.join(str(exc).split())} (is `sbatch` on PATH? "
                "executor = 'local' runs the jobs here)"
            ) from None
        options: dict[str, Any] = {
            "time": config.time_minutes,
            "cpus_per_task": config.cpus_per_job,
            "ntasks_per_node": 1,
            "nodes": 1,
            "job_name": "noprop",
            "array_parallelism": config.workers,
            "signal_delay_s": config.signal_delay_s,
            "setup": list(config.setup),
            "additional_parameters": dict(config.sbatch),
        }
        if config.gpus_per_job:
            options["gpus_per_node"] = config.gpus_per_job
        if config.partition:
            options["partition"] = config.partition
        if config.mem_gb is not None:
            options["mem"] = f"{int(config.mem_gb * 1024)}MB"
        executor.update_parameters(**options)
        return executor

    def launch(self, jobs: Sequence[Job], notify) -> list[JobOutcome]:
        if not jobs:
            return []
        folder = jobs[0].log.parent / self.config.folder
        executor = self.executor(folder)
        # submitit's local executor starts every job at once: they share the CPUs.
        environment = sharing_cpus(len(jobs)) if self.config.executor == "local" else {}
        with executor.batch():
            handles = [executor.submit(NopropJob(job, environment)) for job in jobs]
        ids = sorted({handle.job_id.split("_")[0] for handle in handles})
        notify(f"submitted {len(jobs)} job(s) ({', '.join(ids)}) to {self.describe()}; files: {folder}")
        outcomes = []
        for job, handle in zip(jobs, handles):
            try:
                handle.result()
                outcomes.append(JobOutcome(job, 0))
            except Exception:  # noqa: BLE001 - submitit's wrapped failure; the job's log says what
                outcomes.append(JobOutcome(job, 1))
        return outcomes


def build(config: SlurmLauncherConfig) -> SlurmLauncher:
    return SlurmLauncher(config)


@hookimpl
def noprop_register_launchers(registry) -> None:
    registry.add(
        "slurm",
        build,
        config=SlurmLauncherConfig,
        description="jobs as a Slurm array job through submitit; preempted jobs checkpoint and requeue",
    )
