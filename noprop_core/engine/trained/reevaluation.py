"""`noprop eval`: re-evaluate a finished run, optionally with another sampler or number of steps."""

from __future__ import annotations

import io
import json
import statistics
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import attrs

from noprop_core.engine import run_directory
from noprop_core.engine.trained.inference import run_recipe
from noprop_core.engine.training.evaluation import accuracy, accuracy_runs, train_examples
from noprop_core.engine.training.experiment import Experiment, build_experiment
from noprop_core.engine.training.progress import EvaluationProgress
from noprop_core.plugin.registry import Registry
from noprop_core.recipe.schema import Recipe

EVALUATIONS = run_directory.EVALUATIONS


def evaluate_run(
    run_dir: Path,
    registry: Registry,
    *,
    steps: int | None = None,
    sampler: str | None = None,
    inference_runs: int | None = None,
    notify: Callable[[str], None] = lambda text: None,
    progress: EvaluationProgress | None = None,
) -> dict[str, Any]:
    """Test accuracy of a run's checkpoint; the result is appended to RUN_DIR/evaluations.json.

    ``inference_runs``: repeat inference with independent noise, on the test set and the
    ``eval.train_subset`` training images; with the run's own sampler and steps, metrics.json
    then gets the runs and their means as a finished run with ``eval.inference_runs`` would.
    ``progress`` is told the images to evaluate, then each minibatch done."""
    run_directory.require_run_dir(run_dir)
    with run_directory.RunDirLock(run_dir, "noprop eval"):
        with progress or EvaluationProgress(io.StringIO()) as shown:
            job = EvaluationJob.prepare(run_dir, registry, steps, sampler, inference_runs)
            job.announce(notify, shown)
            result = job.evaluate(shown)
            append_evaluation(run_dir / EVALUATIONS, result, notify)
            if job.repeats_the_runs_own and inference_runs is not None:
                record_in_metrics(run_dir / run_directory.METRICS, result, inference_runs, notify)
            return result


@attrs.frozen
class EvaluationJob:
    """A checkpoint loaded into the model its recipe builds (with another sampler or steps where
    asked), ready to evaluate."""

    run_dir: Path
    recipe: Recipe
    experiment: Experiment
    epoch: int
    inference_runs: int | None
    repeats_the_runs_own: bool  # the run's own sampler and steps: metrics.json may take the result

    @classmethod
    def prepare(
        cls, run_dir: Path, registry: Registry, steps: int | None, sampler: str | None, runs: int | None
    ) -> EvaluationJob:
        recipe, overrides = run_recipe(run_dir, registry, steps=steps, sampler=sampler)
        checkpoint = run_directory.load_checkpoint(run_dir / run_directory.CHECKPOINT)
        experiment = build_experiment(recipe, registry)
        run_directory.load_model_state(experiment.variant, checkpoint["model"], run_dir / run_directory.CHECKPOINT)
        return cls(run_dir, recipe, experiment, checkpoint["epoch"], runs, not overrides)

    @property
    def train_count(self) -> int:
        return train_examples(self.recipe, self.experiment.splits)

    def announce(self, notify: Callable[[str], None], progress: EvaluationProgress) -> None:
        inference, splits, runs = self.recipe.variant.inference(), self.experiment.splits, self.inference_runs
        notify(
            f"evaluating {self.run_dir} (epoch {self.epoch}, {inference.sampler or 'its'} "
            f"sampler, {inference.steps or 'its'} steps): {len(splits.test_labels)} test images"
            + (f" and {self.train_count} training images × {runs} inference runs" if runs else "")
        )
        test = len(splits.test_labels)
        progress.start((test + self.train_count) * runs if runs else test)

    def evaluate(self, progress: EvaluationProgress) -> dict[str, Any]:
        """Test accuracy (one inference run, or the mean of ``inference_runs``, each kept)."""
        started, recipe, splits = time.perf_counter(), self.recipe, self.experiment.splits
        settings: dict[str, Any] = {"batch_size": recipe.eval.batch_size, "seed": recipe.seed, "done": progress}
        variant, count, runs = self.experiment.variant, self.train_count, self.inference_runs
        repeated: dict[str, Any] = {}
        if runs is None:
            test = accuracy(variant, splits.test_images, splits.test_labels, **settings)
        else:
            test_runs = accuracy_runs(variant, splits.test_images, splits.test_labels, runs=runs, **settings)
            train_images, train_labels = splits.train_images[:count], splits.train_labels[:count]
            train_runs = accuracy_runs(variant, train_images, train_labels, runs=runs, **settings)
            repeated = {"test_accuracy_runs": test_runs, "train_accuracy_runs": train_runs}
            test = statistics.fmean(test_runs)
        inference = recipe.variant.inference()
        return {
            "test_accuracy": test,
            **repeated,
            "sampler": inference.sampler,
            "steps": inference.steps,
            "epoch": self.epoch,
            "seconds": time.perf_counter() - started,
            "utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }


def record_in_metrics(metrics_path: Path, result: dict[str, Any], runs: int, notify: Callable[[str], None]) -> None:
    """The run's own inference repeated: metrics.json gets the runs and their means, as a run
    finished with ``eval.inference_runs`` would."""
    if not metrics_path.is_file():
        return
    try:
        metrics = json.loads(metrics_path.read_text())
    except (OSError, ValueError):
        notify(f"noprop: warning: {metrics_path}: unreadable; the result is in {EVALUATIONS} only")
        return
    metrics.update(
        test_accuracy_runs=result["test_accuracy_runs"],
        train_accuracy_runs=result["train_accuracy_runs"],
        inference_runs=runs,
        test_accuracy=result["test_accuracy"],
        train_accuracy=statistics.fmean(result["train_accuracy_runs"]),
    )
    run_directory.write_json(metrics_path, metrics)


def append_evaluation(log: Path, result: dict[str, Any], notify: Callable[[str], None]) -> None:
    """Append ``result`` to the evaluations list, atomically. A file that is not such a list is
    kept beside it (``.corrupt-<time>``) rather than lost or left to lose this result."""
    history: Any = []
    if log.is_file():
        try:
            history = json.loads(log.read_text())
        except (OSError, ValueError):
            history = None
        if not isinstance(history, list):
            aside = log.with_name(f"{log.name}.corrupt-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}")
            log.rename(aside)
            notify(f"noprop: warning: {log}: not a list of evaluations; kept as {aside.name}, starting a new one")
            history = []
    run_directory.write_json_list(log, [*history, result])
