"""One run being trained, fresh or resumed: its folder, its trainer, and the bookkeeping around
training — the tracker started, a checkpoint and metrics.json after every epoch, the final
evaluation, and the folder undone or unlocked at the end."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from noprop_core.engine import fault_points, run_directory
from noprop_core.engine.runs.signals import interrupted, stop_gracefully
from noprop_core.engine.trained.inference import inference_card
from noprop_core.engine.training.evaluation import confusion_matrix, final_accuracy_runs, train_examples
from noprop_core.engine.training.experiment import Experiment
from noprop_core.engine.training.metrics import collect_metrics
from noprop_core.engine.training.progress import Progress
from noprop_core.engine.training.tracker_process import isolated
from noprop_core.engine.training.trainer import Trainer, TrainingInterrupted
from noprop_core.plugin.registry import Registry
from noprop_core.plugin.tracker import Tracker
from noprop_core.recipe.loading import recipe_to_dict
from noprop_core.speed.threads import busy_hint

EpochCallback = Callable[[dict[str, Any]], bool]  # told each saved epoch's record; True stops the run


@attrs.frozen(kw_only=True)
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
    on_epoch: EpochCallback | None = None

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
        """The tracker started with the recipe (and the seed group) as its hparams."""
        recipe = self.experiment.recipe
        if self.writes:
            self.trainer.tracker = self.make_tracker()
        group = {"group": self.group} if self.group else {}
        self.trainer.tracker.start({**recipe_to_dict(recipe, self.registry), **group})

    def make_tracker(self) -> Tracker:
        """The recipe's tracker; one that records anything runs in a child process, so that a
        stalled tracker cannot block training (``training.tracker_process``)."""
        config = self.experiment.recipe.tracker
        options: dict[str, Any] = {"experiment": Path(self.recipe_path).stem, "run_dir": self.run_dir}
        if config.records_nothing:
            return self.registry.build("tracker", config, **options)
        factory = self.registry.get("tracker", config.name).factory
        return isolated(factory, config, notify=self.trainer.progress.message, **options)

    def end_epoch(self, trainer: Trainer) -> None:
        self.save(trainer)
        fault_points.reached("mid_training")
        if self.on_epoch is not None and self.on_epoch(trainer.history[-1].as_dict()):
            trainer.stop_requested = True  # stops after the next step, with a checkpoint

    def save(self, trainer: Trainer) -> None:
        """The checkpoint and metrics.json, after every epoch and on a requested stop."""
        if not self.writes:
            return
        experiment, wall = self.experiment, time.perf_counter() - self.started
        state = {
            **trainer.state_dict(),
            "epoch": len(trainer.history),
            "recipe_path": self.recipe_path,
            "wall_seconds": wall,
            "recipe": recipe_to_dict(experiment.recipe, self.registry),
            "data_stand_in": experiment.data_stand_in,
            "recipe_changes": list(self.recipe_changes),
            "inference": inference_card(experiment.splits),
        }
        run_directory.save_checkpoint(self.run_dir / run_directory.CHECKPOINT, state)
        run_directory.write_json(self.run_dir / run_directory.METRICS, self.metrics(trainer, wall))

    def metrics(self, trainer: Trainer, wall: float) -> dict[str, Any]:
        metrics = collect_metrics(self.recipe_path, self.experiment, trainer, wall)
        return {**metrics, "recipe_changes": list(self.recipe_changes)}

    def conclude(self) -> dict[str, Any]:
        """The final evaluation (``eval.inference_runs``) and the finished run's metrics.json."""
        recipe = self.experiment.recipe
        if recipe.eval.inference_runs > 1:
            self.trainer.progress.message(
                f"final evaluation: {recipe.eval.inference_runs} inference runs with independent noise"
            )
        metrics = {**self.metrics(self.trainer, time.perf_counter() - self.started), **self.final_evaluation()}
        if self.writes:
            run_directory.write_json(self.run_dir / run_directory.METRICS, metrics)
        fault_points.reached("after_seed")
        return metrics

    def final_evaluation(self) -> dict[str, Any]:
        """The fields the end of a run adds to metrics.json."""
        experiment, trainer = self.experiment, self.trainer
        recipe, splits = experiment.recipe, experiment.splits
        # The last epoch is always evaluated: its evaluation is inference run 0.
        runs = final_accuracy_runs(experiment.variant, splits, recipe, trainer.history[-1])
        return {
            "test_accuracy": statistics.fmean(runs["test_accuracy_runs"]),
            "train_accuracy": statistics.fmean(runs["train_accuracy_runs"]),
            **runs,
            "inference_runs": recipe.eval.inference_runs,
            "train_accuracy_examples": train_examples(recipe, splits),
            "tracker_run": trainer.tracker.run_id,
            **trainer.tracker.metrics_fields(),
            "world_size": experiment.distributed.world_size if experiment.distributed else 1,
            # The final test evaluation's classes (inference run 0, the run's seed): rows true, columns predicted.
            "confusion_matrix": confusion_matrix(
                experiment.variant,
                splits.test_images,
                splits.test_labels,
                splits.num_classes,
                batch_size=recipe.eval.batch_size,
                seed=recipe.seed,
            ),
        }


def run_to_end(session: RunSession) -> dict[str, Any]:
    """Train a prepared session's remaining epochs and conclude it; returns its metrics. A
    requested stop saves a checkpoint and raises ``RunInterrupted`` (``RunPreempted``)."""
    trainer = session.trainer
    try:
        try:
            session.start()
            with trainer.progress, stop_gracefully([trainer], trainer.progress):
                trainer.fit(on_epoch_end=session.end_epoch)
        except TrainingInterrupted:
            session.save(trainer)
            position = trainer.position
            assert position is not None  # interrupted inside an epoch
            message = (
                f"stopped in epoch {position.epoch} after {trainer.step} steps; checkpoint saved. "
                f"Continue with: noprop run --resume {session.run_dir}"
            )
            raise interrupted([trainer], message) from None
        except BaseException:
            session.failed()
            raise
        finally:
            trainer.tracker.close()
        return session.conclude()
    finally:
        session.release()


def announce_speed_path(experiment: Experiment, progress: Progress) -> None:
    """The speed path this run took, and a hint when a faster faithful one exists here."""
    recipe, device = experiment.recipe, experiment.device
    progress.message(f"speed: {experiment.speed.describe(experiment.variant)}")
    faster = recipe.variant.faster_path(device.type)
    if faster:
        progress.message(f"hint: {faster}")
    busy = busy_hint(experiment.threads.count) if device.type == "cpu" and experiment.threads.count else None
    if busy:
        progress.message(busy)
