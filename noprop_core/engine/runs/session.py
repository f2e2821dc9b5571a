"""A run from start to finish: validate, build, train, evaluate, and write the run directory
(or resume one; or train a seed group's new seeds together). ``noprop run`` and
``noprop_core.train`` both come here."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs
import torch

from noprop_core.engine import run_directory
from noprop_core.engine.training.evaluation import confusion_matrix, final_accuracy_runs, train_examples
from noprop_core.engine.training.experiment import Experiment, build_experiment, resolve_device
from noprop_core.engine.trained.inference import inference_card
from noprop_core.engine.training.metrics import collect_metrics
from noprop_core.engine.training.progress import Progress
from noprop_core.engine.training.seed_stack import SeedStack, unstackable
from noprop_core.engine.training.smoke import smoke_recipe
from noprop_core.engine.training.tracker_process import isolated
from noprop_core.engine.training.trainer import Trainer, TrainingInterrupted
from noprop_core.errors import NopropError, RunInterrupted, RunPreempted
from noprop_core.plugin.registry import Registry
from noprop_core.recipe.loading import dump_recipe, load_recipe, override_recipe, recipe_to_dict
from noprop_core.recipe.schema import Recipe
from noprop_core.speed.distributed import setup
from noprop_core.speed.threads import busy_hint

EpochCallback = Callable[[dict[str, Any]], bool]


# Slurm sends one of these before a job's time limit or when it is preempted (submitit: SIGUSR2).
PREEMPTION_SIGNALS = (signal.SIGUSR1, signal.SIGUSR2)


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

    signals = (signal.SIGINT, signal.SIGTERM, *PREEMPTION_SIGNALS)
    previous = {s: signal.signal(s, request_stop) for s in signals}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def interrupted(trainers: list[Trainer], message: str) -> RunInterrupted:
    """The error a requested stop ends with: a requeue (``RunPreempted``) when a preemption
    signal asked for it."""
    preempted = any(trainer.stop_signal in PREEMPTION_SIGNALS for trainer in trainers)
    return RunPreempted(f"{message} (preempted: exit {RunPreempted.exit_code}, to be requeued)") if preempted \
        else RunInterrupted(message)


def run(recipe_path: Path, registry: Registry, **options: Any) -> tuple[Path, dict[str, Any]]:
    """Train one recipe end to end; returns the run directory and its metrics. ``options`` are
    ``prepare``'s (overrides, out_dir, progress, started, smoke, group)."""
    session = prepare(recipe_path, registry, **options)
    return session.run_dir, _train(session)


def prepare(
    recipe_path: Path,
    registry: Registry,
    *,
    overrides: Sequence[str] = (),
    out_dir: Path | None = None,
    progress: Progress | None = None,
    started: float | None = None,
    smoke: bool = False,
    group: str | None = None,
    recipe: Recipe | None = None,
    on_epoch: EpochCallback | None = None,
) -> RunSession:
    """Validate, write the run directory's recipe, build the experiment and its trainer.

    ``smoke``: a few batches and a short evaluation with the recipe's real code, standing in
    synthetic data for absent files (see noprop_core.engine.training.smoke); ``group``: the seed group the
    run belongs to (an Aim hparam); ``recipe``: a recipe built in Python (``recipe_path`` then only
    names the run); ``on_epoch``: called with each epoch's record once it is saved, and the run
    stops (checkpoint saved, ``RunInterrupted``) when it returns True (a sweep's pruning)."""
    started = time.perf_counter() if started is None else started
    if recipe is None:
        recipe = load_recipe(recipe_path, registry, list(overrides))
    else:
        recipe = override_recipe(recipe, registry, list(overrides), str(recipe_path))
    if smoke:
        recipe = smoke_recipe(recipe)
    device = resolve_device(recipe.device)  # before anything is written
    distributed = setup(recipe.speed.distributed, device.type)  # under torchrun only
    if distributed is not None and device.type == "cuda":
        device = torch.device("cuda", distributed.local_rank)
    run_dir = out_dir or run_directory.default_run_dir(recipe_path)
    new_dir = None
    if distributed is None or distributed.is_main:  # only rank 0 writes
        new_dir = run_directory.NewRunDir(run_dir)
        progress = progress or Progress()
    else:
        progress = Progress(stream=open(os.devnull, "w"))  # noqa: SIM115 - lives as long as the process
    try:
        if new_dir is not None:
            resolved = run_dir / run_directory.RECIPE
            run_directory.write_text(resolved, dump_recipe(recipe, registry, header=f"# noprop run {resolved}"))
        experiment = build_experiment(
            recipe, registry, device, stand_in=smoke, notify=progress.message, distributed=distributed
        )
        if new_dir is not None:  # with the choices the device made (order = "auto"…)
            run_directory.write_text(
                resolved, dump_recipe(experiment.recipe, registry, header=f"# noprop run {resolved}")
            )
        announce_speed_path(experiment, progress)
        trainer = Trainer(experiment, progress)
    except BaseException:
        if new_dir is not None:
            new_dir.abandon()
        raise
    return RunSession(str(recipe_path), run_dir, experiment, trainer, registry, started, group, new_dir,
                      on_epoch=on_epoch)


def run_stacked(
    recipe_path: Path, registry: Registry, runs: list[tuple[list[str], Path]], *, group: str, progress: Progress,
    stack: str = "auto", recipe: Recipe | None = None, on_epoch: EpochCallback | None = None,
) -> list[dict[str, Any]]:
    """Train several seeds of one recipe (``runs``: each seed's overrides and run directory)
    together: stacked into one computation where the update is fused (``SeedStack``), else
    one after another. ``stack``: "auto" stacks on a GPU only (a CPU is compute-bound already:
    stacking gains nothing there, ``benchmarks/seeds.py`` and docs/speed.md), "on" wherever the
    update is fused, "off" never. Returns each run's metrics."""

    def prepared(overrides: list[str], run_dir: Path) -> RunSession:
        return prepare(recipe_path, registry, overrides=overrides, out_dir=run_dir, progress=progress, group=group,
                       recipe=recipe, on_epoch=on_epoch)

    first = prepared(*runs[0])
    reason = "--stack-seeds off" if stack == "off" else None
    if stack == "auto" and first.experiment.device.type != "cuda":
        reason = "on a CPU stacking gains nothing (--stack-seeds on forces it)"
    if reason is not None:  # decided before the other seeds are built: each is prepared when its turn comes
        progress.message(f"seeds one after another ({reason})")
        return [_train(first), *(_train(prepared(*run)) for run in runs[1:])]
    sessions = [first, *(prepared(*run) for run in runs[1:])]
    trainers = [session.trainer for session in sessions]
    reason = unstackable(trainers)
    if reason is not None:
        progress.message(f"seeds one after another ({reason})")
        # Each run's wall time starts with its own training, not with the group's set-up.
        return [_train(attrs.evolve(session, started=time.perf_counter())) for session in sessions]
    progress.message(f"seeds {', '.join(str(s.experiment.recipe.seed) for s in sessions)} stacked: "
                     f"{len(sessions)} × {len(trainers[0].variant.units)} blocks in one computation")
    for trainer in trainers[1:]:  # one progress display: the first run's
        trainer.progress = Progress(stream=open(os.devnull, "w"))  # noqa: SIM115 - lives as long as the run
    by_trainer = {id(session.trainer): session for session in sessions}
    try:
        for session in sessions:
            session.start()
        with progress, stop_gracefully(trainers, progress):
            SeedStack(trainers).fit(on_epoch_end=lambda trainer: by_trainer[id(trainer)].end_epoch(trainer))
    except TrainingInterrupted:
        for session in sessions:
            session.save(session.trainer)
        raise interrupted(trainers,
            f"stopped after {trainers[0].step} steps; every seed's checkpoint saved. Continue with the same "
            "command (each seed resumes from its checkpoint)"
        ) from None
    except BaseException:
        for session in sessions:
            session.failed()
        raise
    finally:
        for session in sessions:
            session.trainer.tracker.close()
    try:
        return [session.conclude() for session in sessions]
    finally:
        for session in sessions:
            session.release()


def announce_speed_path(experiment: Experiment, progress: Progress) -> None:
    """The speed path this run took, and a hint when a faster faithful one exists here."""
    recipe, device = experiment.recipe, experiment.device
    progress.message(f"speed: {experiment.speed.describe(experiment.variant)}")
    hint = recipe.variant.faster_path(device.type)
    if hint:
        progress.message(f"hint: {hint}")
    if device.type == "cpu" and experiment.threads.count is not None:
        hint = busy_hint(experiment.threads.count)
        if hint:
            progress.message(hint)


def resume(
    run_dir: Path,
    registry: Registry,
    *,
    overrides: Sequence[str] = (),
    progress: Progress | None = None,
    on_epoch: EpochCallback | None = None,
) -> tuple[Path, dict[str, Any] | None]:
    """Continue a run from its last checkpoint, with the same state as if it had never stopped.

    ``overrides`` (and edits of RUN_DIR/recipe.toml) may change only what a run can change
    mid-way (``resume_changes``), e.g. ``train.epochs`` to train a finished run further.
    Returns the metrics, or None when the run had finished and nothing was changed."""
    started = time.perf_counter()
    recipe_file = run_dir / run_directory.RECIPE
    run_directory.require_run_dir(run_dir, "--resume ")
    lock = run_directory.RunDirLock(run_dir, "--resume")
    try:
        recipe = load_recipe(recipe_file, registry, list(overrides))
        checkpoint = run_directory.load_checkpoint(run_dir / run_directory.CHECKPOINT)
        done = len(checkpoint["history"])
        changes = resume_changes(checkpoint["recipe"], recipe_to_dict(recipe, registry), str(recipe_file), done + 1)
        if done > recipe.train.epochs:
            raise NopropError(f"{recipe_file}: train.epochs: {recipe.train.epochs} is below the {done} epochs "
                              "already trained")
        if not changes and finished(run_dir, done, recipe.train.epochs):
            return run_dir, None
        if changes:
            run_directory.write_text(recipe_file, dump_recipe(recipe, registry, header=f"# noprop run {recipe_file}"))
        progress = progress or Progress()
        stand_in = checkpoint.get("data_stand_in", False)  # a smoke run resumes on the same stand-in
        experiment = build_experiment(
            recipe, registry, resolve_device(recipe.device), stand_in=stand_in, notify=progress.message
        )
        announce_speed_path(experiment, progress)
        trainer = Trainer(experiment, progress)
        try:
            trainer.load_state_dict(checkpoint)
        except (RuntimeError, KeyError, ValueError, TypeError, IndexError) as exc:
            raise NopropError(f"{run_dir / run_directory.CHECKPOINT}: does not fit the run's recipe "
                              f"({type(exc).__name__}: {str(exc).splitlines()[0][:160]})") from None
        position = trainer.current
        inside = (f", inside epoch {position.epoch} at phase {position.phase + 1}, batch {position.batches_done}"
                  if position else "")
        progress.message(f"resuming {run_dir}: {done} of {recipe.train.epochs} epochs done{inside} "
                         f"({trainer.step} steps)")
        for change in changes:
            progress.message(f"from epoch {change['epoch']}: {change['key']} = {change['to']!r} "
                             f"(was {change['from']!r})")
    except BaseException:
        lock.release()
        raise
    session = RunSession(checkpoint["recipe_path"], run_dir, experiment, trainer, registry,
                         started - checkpoint["wall_seconds"], lock=lock,
                         recipe_changes=(*checkpoint.get("recipe_changes", ()), *changes), on_epoch=on_epoch)
    return run_dir, _train(session)


# Keys a resumed run may change: how long it trains, how it is evaluated and tracked, where its
# data lives and how it is read. Everything else shapes the model, data or optimizer state.
CHANGEABLE_ON_RESUME = ("train.epochs", "eval.", "tracker.", "speed.threads", "data.root", "data.download",
                        "data.workers")


def resume_changes(before: dict[str, Any], after: dict[str, Any], origin: str, epoch: int) -> list[dict[str, Any]]:
    """The keys that differ between the checkpoint's recipe and the one to resume with, each as
    {"epoch", "key", "from", "to"}; a one-line error listing those that cannot change mid-run."""
    old, new = _flatten(before), _flatten(after)
    differing = sorted(key for key in old.keys() | new.keys() if old.get(key) != new.get(key))
    frozen = [key for key in differing if not key.startswith(CHANGEABLE_ON_RESUME)]
    if frozen:
        shown = ", ".join(f"{key} ({old.get(key)!r} in the checkpoint, {new.get(key)!r} now)" for key in frozen)
        raise NopropError(f"{origin}: cannot change mid-run: {shown}; start a new run for that "
                          f"(resume may change {', '.join(key + '*' if key.endswith('.') else key for key in CHANGEABLE_ON_RESUME)})")
    return [{"epoch": epoch, "key": key, "from": old.get(key), "to": new.get(key)} for key in differing]


def _flatten(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def finished(run_dir: Path, done: int, epochs: int) -> bool:
    """The run trained all its epochs and its final evaluation is in metrics.json."""
    try:
        metrics = json.loads((run_dir / run_directory.METRICS).read_text())
    except (OSError, ValueError):
        return False
    return done >= epochs and isinstance(metrics, dict) and "test_accuracy_runs" in metrics


@attrs.frozen
class RunSession:
    """One run being trained: where it writes, what it trains, and its bookkeeping."""

    recipe_path: str
    run_dir: Path
    experiment: Experiment
    trainer: Trainer
    registry: Registry
    started: float  # perf_counter() at the run's start, less the time of earlier sessions
    group: str | None = None  # a seed group's name: an Aim hparam, so the dashboard can aggregate
    new_dir: run_directory.NewRunDir | None = None  # a fresh run's folder: undone if it fails before a checkpoint
    lock: run_directory.RunDirLock | None = None  # a resumed run's lock on its folder
    recipe_changes: tuple[dict[str, Any], ...] = ()  # keys changed on resume, with the epoch they apply from
    on_epoch: EpochCallback | None = None  # told each saved epoch's record; True stops the run

    @property
    def writes(self) -> bool:
        return self.experiment.distributed is None or self.experiment.distributed.is_main

    def failed(self) -> None:
        """Training raised: a fresh run with no checkpoint yet leaves no folder behind."""
        if self.new_dir is not None:
            self.new_dir.abandon()

    def release(self) -> None:
        for lock in (self.lock, self.new_dir.lock if self.new_dir else None):
            if lock is not None:
                lock.release()

    def start(self) -> None:
        recipe, registry = self.experiment.recipe, self.registry
        if self.writes:
            options: dict[str, Any] = {"experiment": Path(self.recipe_path).stem, "run_dir": self.run_dir}
            if recipe.tracker.records_nothing:  # nothing to isolate
                self.trainer.tracker = registry.build("tracker", recipe.tracker, **options)
            else:  # in a child process: a stalled tracker cannot block training (noprop_core.engine.training.tracker_process)
                factory = registry.get("tracker", recipe.tracker.name).factory
                self.trainer.tracker = isolated(
                    factory, recipe.tracker, notify=self.trainer.progress.message, **options
                )
        self.trainer.tracker.start(
            {**recipe_to_dict(recipe, registry), **({"group": self.group} if self.group else {})}
        )

    def end_epoch(self, trainer: Trainer) -> None:
        self.save(trainer)
        if self.on_epoch is not None and self.on_epoch(trainer.history[-1].as_dict()):
            trainer.stop_requested = True  # stops after the next step, with a checkpoint

    def save(self, trainer: Trainer) -> None:
        """The checkpoint and metrics.json, after every epoch and on a requested stop."""
        if not self.writes:
            return
        experiment, wall = self.experiment, time.perf_counter() - self.started
        state = {**trainer.state_dict(), "epoch": len(trainer.history), "recipe_path": self.recipe_path,
                 "wall_seconds": wall, "recipe": recipe_to_dict(experiment.recipe, self.registry),
                 "data_stand_in": experiment.data_stand_in, "recipe_changes": list(self.recipe_changes),
                 "inference": inference_card(experiment.splits)}
        run_directory.save_checkpoint(self.run_dir / run_directory.CHECKPOINT, state)
        run_directory.write_json(self.run_dir / run_directory.METRICS, self.metrics(trainer, wall))

    def metrics(self, trainer: Trainer, wall: float) -> dict[str, Any]:
        metrics = collect_metrics(self.recipe_path, self.experiment, trainer, wall)
        return {**metrics, "recipe_changes": list(self.recipe_changes)}

    def conclude(self) -> dict[str, Any]:
        """The final evaluation (``eval.inference_runs``) and the finished run's metrics.json."""
        experiment, trainer = self.experiment, self.trainer
        recipe, splits = experiment.recipe, experiment.splits
        if recipe.eval.inference_runs > 1:
            trainer.progress.message(
                f"final evaluation: {recipe.eval.inference_runs} inference runs with independent noise"
            )
        # The last epoch is always evaluated: its evaluation is inference run 0.
        runs = final_accuracy_runs(experiment.variant, splits, recipe, trainer.history[-1])
        metrics = self.metrics(trainer, time.perf_counter() - self.started)
        metrics.update(
            test_accuracy=statistics.fmean(runs["test_accuracy_runs"]),
            train_accuracy=statistics.fmean(runs["train_accuracy_runs"]),
            **runs,
            inference_runs=recipe.eval.inference_runs,
            train_accuracy_examples=train_examples(recipe, splits),
            tracker_run=trainer.tracker.run_id,
            **trainer.tracker.metrics_fields(),
            world_size=experiment.distributed.world_size if experiment.distributed else 1,
            # The final test evaluation's classes (inference run 0, the run's seed): rows true, columns predicted.
            confusion_matrix=confusion_matrix(
                experiment.variant,
                splits.test_images,
                splits.test_labels,
                splits.num_classes,
                batch_size=recipe.eval.batch_size,
                seed=recipe.seed,
            ),
        )
        if self.writes:
            run_directory.write_json(self.run_dir / run_directory.METRICS, metrics)
        return metrics


def _train(session: RunSession) -> dict[str, Any]:
    trainer = session.trainer
    try:
        try:
            session.start()
            with trainer.progress, stop_gracefully([trainer], trainer.progress):
                trainer.fit(on_epoch_end=session.end_epoch)
        except TrainingInterrupted:
            session.save(trainer)
            position = trainer.current
            assert position is not None  # interrupted inside an epoch
            raise interrupted([trainer],
                f"stopped in epoch {position.epoch} after {trainer.step} steps; checkpoint saved. "
                f"Continue with: noprop run --resume {session.run_dir}"
            ) from None
        except BaseException:
            session.failed()
            raise
        finally:
            trainer.tracker.close()
        return session.conclude()
    finally:
        session.release()
