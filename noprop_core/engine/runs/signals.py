"""Stopping a run on a signal: after the current step, with a checkpoint (Ctrl-C, SIGTERM), or
for a requeue (Slurm's SIGUSR1 / SIGUSR2 before a time limit or a preemption)."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from typing import Any

from noprop_core.engine.training.progress import Progress
from noprop_core.engine.training.trainer import Trainer
from noprop_core.errors import RunInterrupted, RunPreempted

# Slurm sends one of these before a job's time limit or when it is preempted (submitit: SIGUSR2).
PREEMPTION_SIGNALS = (signal.SIGUSR1, signal.SIGUSR2)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, *PREEMPTION_SIGNALS)


@contextlib.contextmanager
def stop_gracefully(trainers: list[Trainer], progress: Progress) -> Iterator[None]:
    """The first Ctrl-C, SIGTERM, SIGUSR1 or SIGUSR2 asks the trainers to stop after the current
    step (so the checkpoints are consistent, also within an epoch); a second Ctrl-C interrupts at
    once. The signal is kept on the trainers: a preemption signal makes the stop a requeue."""

    def request_stop(signum: int, _frame: Any) -> None:
        if trainers[0].stop_requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        for trainer in trainers:
            trainer.stop_requested = True
            trainer.stop_signal = trainer.stop_signal or signum
        progress.message(f"{signal.Signals(signum).name}: stopping after this step and saving a checkpoint")

    previous = {s: signal.signal(s, request_stop) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def interrupted(trainers: list[Trainer], message: str) -> RunInterrupted:
    """The error a requested stop ends with: a requeue (``RunPreempted``) when a preemption
    signal asked for it."""
    if any(trainer.stop_signal in PREEMPTION_SIGNALS for trainer in trainers):
        return RunPreempted(f"{message} (preempted: exit {RunPreempted.exit_code}, to be requeued)")
    return RunInterrupted(message)
