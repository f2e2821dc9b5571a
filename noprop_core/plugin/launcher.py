"""The launcher contract: where `noprop` jobs run (torch-free).

A job is one `noprop` command line — a seed's run, a sweep's worker — with its log file. A
launcher plugin (kind ``launcher``, table ``[launcher]``) runs a list of jobs to their end and
says how each ended. A job that exits with ``REQUEUE_EXIT_CODE`` stopped with a checkpoint (a
preemption or time-limit signal); the launcher starts it again, and it resumes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import attrs

from noprop_core.plugin.config import LauncherConfig

Notify = Callable[[str], None]


@attrs.frozen
class Job:
    """One `noprop` command: ``arguments`` start it; once ``resumable`` exists (a checkpoint),
    ``resume_arguments`` (when given) continue it instead."""

    name: str
    arguments: list[str]
    log: Path
    resume_arguments: list[str] | None = None
    resumable: Path | None = None

    def command(self) -> list[str]:
        """The command line to run now: ``python -m noprop_core.cli`` and the job's arguments."""
        resume = self.resume_arguments is not None and self.resumable is not None and self.resumable.exists()
        arguments = self.resume_arguments if resume and self.resume_arguments is not None else self.arguments
        return [sys.executable, "-m", "noprop_core.cli", *arguments]


@attrs.frozen
class JobOutcome:
    job: Job
    exit_code: int
    starts: int = 1  # 1 + how many times it was requeued

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def error(self) -> str:
        """The job's failure as one line: its log's last line."""
        try:
            lines = [line for line in self.job.log.read_text(errors="replace").splitlines() if line.strip()]
        except OSError:
            lines = []
        return f"{self.job.name} exited with {self.exit_code}: {lines[-1] if lines else '(no output)'}; log: {self.job.log}"


class Launcher:
    """Runs jobs; the base class's ``launch`` is the contract."""

    def __init__(self, config: LauncherConfig) -> None:
        self.config = config  # ``workers``: jobs at once (a sweep starts this many workers)

    def launch(self, jobs: Sequence[Job], notify: Notify) -> list[JobOutcome]:
        """Run every job to its end (requeueing those that ask for it) and return how each ended,
        in the order given."""
        raise NotImplementedError

    def describe(self) -> str:
        """One line for the user: where the jobs go."""
        return type(self).__name__


def run_job(
    job: Job,
    environment: Mapping[str, str] | None = None,
    started: Callable[[subprocess.Popen[bytes]], None] | None = None,
) -> int:
    """Run the job's command once, appending to its log; returns its exit status. ``started`` is
    told the child process (to forward signals to it)."""
    command = job.command()
    job.log.parent.mkdir(parents=True, exist_ok=True)
    with job.log.open("ab") as log:
        log.write(f"$ {' '.join(command[1:])}\n".encode())
        log.flush()
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=dict(environment) if environment is not None else None
        )
        if started is not None:
            started(process)
        return process.wait()


def stop_for_requeue(process: subprocess.Popen[bytes] | None, timeout: float = 600.0) -> int | None:
    """Ask a running job to checkpoint and stop (SIGUSR2, as on a preemption) and wait for it;
    its exit status, or None when it had already ended. Safe inside a signal handler that
    interrupted ``process.wait()`` (which holds the Popen's lock): it waits with ``os.waitpid``."""
    if process is None or process.returncode is not None:
        return None
    try:
        os.kill(process.pid, signal.SIGUSR2)
    except ProcessLookupError:
        return None
    deadline = time.monotonic() + timeout
    while True:
        try:
            pid, status = os.waitpid(process.pid, os.WNOHANG)
        except ChildProcessError:  # already reaped
            return None
        if pid:
            process.returncode = os.waitstatus_to_exitcode(status)
            return process.returncode
        if time.monotonic() > deadline:
            os.kill(process.pid, signal.SIGKILL)
        time.sleep(0.05)
