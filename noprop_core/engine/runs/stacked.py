"""A seed group's new seeds trained in this process: stacked into one computation where the
variant's update is fused (``training.seed_stack``), else one after another."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import attrs

from noprop_core.engine.runs.fresh import RunOptions, prepare_run
from noprop_core.engine.runs.session import RunSession, announce_speed_path, run_to_end
from noprop_core.engine.runs.signals import interrupted, stop_gracefully
from noprop_core.engine.training.progress import Progress
from noprop_core.engine.training.seed_stack import SeedStack, unstackable
from noprop_core.engine.training.trainer import TrainingInterrupted
from noprop_core.errors import NopropError
from noprop_core.plugin.registry import Registry

FreshRuns = list[tuple[list[str], Path]]  # each new seed's overrides and run directory


def run_seeds_here(
    recipe_path: Path, registry: Registry, runs: FreshRuns, options: RunOptions, stack: str = "auto"
) -> list[dict[str, Any]]:
    """Train several seeds of one recipe (``runs``: each seed's overrides, complete, and run
    directory; ``options``: what else they share). ``stack``: "auto" stacks on a GPU only (a CPU
    is compute-bound already: stacking gains nothing there, docs/speed.md), "on" wherever the
    update is fused (refused in one line where it is not), "off" never. Returns each run's metrics."""
    progress = options.display()  # one display for the group's new seeds

    def prepared(overrides: list[str], run_dir: Path, shown: Progress = progress) -> RunSession:
        return prepare_run(
            recipe_path, registry, attrs.evolve(options, overrides=overrides, out_dir=run_dir, progress=shown)
        )

    if stack == "on":
        return run_forced_stack([prepared(*run, shown=Progress(stream=io.StringIO())) for run in runs], progress)
    first = prepared(*runs[0])
    reason = "--stack-seeds off" if stack == "off" else None
    if stack == "auto" and first.experiment.device.type != "cuda":
        reason = "on a CPU stacking gains nothing (--stack-seeds on forces it)"
    if reason is not None:  # decided before the other seeds are built: each is prepared when its turn comes
        progress.message(f"seeds one after another ({reason})")
        return [run_to_end(first), *(run_to_end(prepared(*run)) for run in runs[1:])]
    sessions = [first, *(prepared(*run) for run in runs[1:])]
    reason = unstackable([session.trainer for session in sessions])
    if reason is None:
        return run_stacked(sessions, progress)
    progress.message(f"seeds one after another ({reason})")
    # Each run's wall time starts with its own training, not with the group's set-up.
    return [run_to_end(attrs.evolve(session, started=time.perf_counter())) for session in sessions]


def run_forced_stack(sessions: list[RunSession], progress: Progress) -> list[dict[str, Any]]:
    """``--stack-seeds on``: the sessions, prepared quietly, stacked; where they cannot be, one
    error line and their folders undone (nothing was shown before it)."""
    reason = unstackable([session.trainer for session in sessions])
    if reason is not None:
        for session in sessions:
            session.failed()
            session.release()
        raise NopropError(f"--stack-seeds on: the seeds cannot be stacked ({reason}); use auto or off")
    sessions[0].trainer.progress = progress
    announce_speed_path(sessions[0].experiment, progress)
    return run_stacked(sessions, progress)


def run_stacked(sessions: list[RunSession], progress: Progress) -> list[dict[str, Any]]:
    """Train prepared sessions as one stacked computation, then conclude each."""
    trainers = [session.trainer for session in sessions]
    seeds = ", ".join(str(session.experiment.recipe.seed) for session in sessions)
    progress.message(
        f"seeds {seeds} stacked: {len(sessions)} × {len(trainers[0].variant.units)} blocks in one computation"
    )
    for trainer in trainers[1:]:  # one progress display: the first run's
        trainer.progress = Progress(stream=io.StringIO())
    try:
        train_stacked(sessions, progress)
        return [session.conclude() for session in sessions]
    finally:
        for session in sessions:
            session.release()


def train_stacked(sessions: list[RunSession], progress: Progress) -> None:
    """The stacked training itself: a requested stop saves every seed's checkpoint; a failure
    undoes the folders of seeds with none."""
    trainers = [session.trainer for session in sessions]
    session_of = dict(zip(map(id, trainers), sessions))  # trainers are not hashable by value
    try:
        for session in sessions:
            session.start()
        with progress, stop_gracefully(trainers, progress):
            SeedStack(trainers).fit(on_epoch_end=lambda trainer: session_of[id(trainer)].end_epoch(trainer))
    except TrainingInterrupted:
        for session in sessions:
            session.save(session.trainer)
        message = (
            f"stopped after {trainers[0].step} steps; every seed's checkpoint saved. Continue with the same "
            "command (each seed resumes from its checkpoint)"
        )
        raise interrupted(trainers, message) from None
    except BaseException:
        for session in sessions:
            session.failed()
        raise
    finally:
        for session in sessions:
            session.trainer.tracker.close()
