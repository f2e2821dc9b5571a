"""One trial of a sweep: its run (a fresh run folder, a seed group's, or an interrupted trial's
folder resumed), its objective told to the study, and what a failure, a prune or a stop records."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from noprop_core.engine import fault_points, run_directory
from noprop_core.engine.runs.fresh import RunOptions, start_run
from noprop_core.engine.runs.resume import resume_run
from noprop_core.engine.runs.seed_group import plan_seed_group, run_seed_group_here, seed_dir
from noprop_core.engine.sweep.study import queue_again
from noprop_core.engine.training.progress import Progress
from noprop_core.errors import NopropError, RunInterrupted
from noprop_core.plugin.registry import Registry
from noprop_core.recipe.loading import load_recipe, one_seed
from noprop_core.recipe.sweep import Sweep

if TYPE_CHECKING:
    import optuna


@attrs.frozen(kw_only=True)
class TrialRun:
    """What a trial trains: the sweep's recipe with the trial's overrides, into its folder."""

    sweep: Sweep
    recipe_path: Path
    registry: Registry
    overrides: list[str]
    folder: Path
    notify: Callable[[str], None]
    progress: Progress | Callable[[], Progress] | bool | None = None  # each run's display (RunOptions.progress)


def run_trial(study: optuna.Study, trial: optuna.Trial, run: TrialRun) -> None:
    """Train the trial and tell the study its result: its objective, pruned, or failed with its
    one-line error. A stop by a signal queues the trial again (the next worker resumes it)."""
    import optuna

    pruned: list[int] = []
    started = time.perf_counter()
    try:
        values = train_or_resume(run, pruning(trial, run.sweep, pruned))
    except RunInterrupted:
        if not pruned:  # a signal (Ctrl-C, a preemption): the next worker resumes this trial
            queue_again(study, trial, run.folder.name)
            run.notify(
                f"trial {trial.number}: stopped with a checkpoint; its parameters are queued again ({run.folder.name})"
            )
            raise
        trial.set_user_attr("wall_seconds", time.perf_counter() - started)
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        run.notify(f"trial {trial.number}: pruned after epoch {pruned[0]}")
        return
    except Exception as exc:  # noqa: BLE001 - one trial's failure, recorded; the sweep goes on
        fail(study, trial, exc, run.notify)
        return
    tell(study, trial, values, run, time.perf_counter() - started)


def pruning(trial: optuna.Trial, sweep: Sweep, pruned: list[int]) -> Callable[[dict[str, Any]], bool]:
    """The runs' epoch callback: reports the objective to the study; True (stop) when the
    pruner says so, the epoch noted in ``pruned``."""

    def on_epoch(record: dict[str, Any]) -> bool:
        value = record.get(sweep.objective)
        if value is None or sweep.pruner == "none":
            return False
        trial.report(value, record["epoch"])
        if trial.should_prune():
            pruned.append(record["epoch"])
            return True
        return False

    return on_epoch


def fail(study: optuna.Study, trial: optuna.Trial, exc: Exception, notify: Callable[[str], None]) -> None:
    import optuna

    line = exc.lines()[0] if isinstance(exc, NopropError) else f"internal error: {type(exc).__name__}: {exc}"
    trial.set_user_attr("error", " ".join(line.split())[:300])
    study.tell(trial, state=optuna.trial.TrialState.FAIL)
    notify(f"trial {trial.number}: failed: {line}")


def tell(study: optuna.Study, trial: optuna.Trial, values: list[Any], run: TrialRun, wall: float) -> None:
    """The trial's objective (the mean over its seeds) told to the study."""
    import optuna

    objective = run.sweep.objective
    fault_points.reached("after_result")
    trial.set_user_attr("wall_seconds", wall)
    if any(value is None for value in values):
        trial.set_user_attr("error", f"metrics.json has no {objective}")
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        raise NopropError(f"{run.folder}: objective {objective} missing from metrics.json")
    value = sum(float(v) for v in values) / len(values)
    fault_points.reached("before_tell")
    study.tell(trial, value)
    fault_points.reached("after_tell")
    run.notify(f"trial {trial.number}: {objective} {value:.2f}")


def run_folders(folder: Path, seeds: list[int]) -> list[Path]:
    """The run folders of a trial: its own, or its seeds' in a seed group's folder."""
    return [folder] if len(seeds) == 1 else [seed_dir(folder, seed) for seed in seeds]


def train_or_resume(run: TrialRun, on_epoch: Callable[[dict[str, Any]], bool]) -> list[Any]:
    """Train the trial (or resume its folder) to the end; returns the objective of each seed."""
    seeds, folder = run.sweep.seeds, run.folder
    options = RunOptions(progress=run.progress, on_epoch=on_epoch, out_dir=folder, group=folder.parent.name)
    if len(seeds) > 1:  # a seed group: finished seeds kept, interrupted ones resumed
        recipe = load_recipe(run.recipe_path, run.registry, run.overrides)
        plan = plan_seed_group(
            run.recipe_path, recipe, seeds=seeds, overrides=run.overrides, out=folder, notify=run.notify
        )
        run_seed_group_here(plan, run.registry, attrs.evolve(options, group=folder.name), stack="auto")
    elif (folder / run_directory.CHECKPOINT).is_file():  # an interrupted trial, tried again
        resume_run(folder, run.registry, progress=options.display(), on_epoch=on_epoch)
    else:
        if folder.exists():  # started, but gone before its first checkpoint
            shutil.rmtree(folder)
        start_run(run.recipe_path, run.registry, attrs.evolve(options, overrides=[*run.overrides, *one_seed(seeds[0])]))
    metrics = [json.loads((path / run_directory.METRICS).read_text()) for path in run_folders(folder, seeds)]
    return [m.get(run.sweep.objective) for m in metrics]
