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

from noprop_core.engine import run_directory
from noprop_core.engine.trained.inference import run_recipe
from noprop_core.engine.training.evaluation import accuracy, accuracy_runs, train_examples
from noprop_core.engine.training.experiment import build_experiment
from noprop_core.engine.training.progress import EvaluationProgress
from noprop_core.plugin.registry import Registry

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
            return _evaluate_locked(run_dir, registry, steps, sampler, inference_runs, notify, shown)


def _evaluate_locked(
    run_dir: Path,
    registry: Registry,
    steps: int | None,
    sampler: str | None,
    inference_runs: int | None,
    notify: Callable[[str], None],
    progress: EvaluationProgress,
) -> dict[str, Any]:
    recipe, overrides = run_recipe(run_dir, registry, steps=steps, sampler=sampler)
    inference = recipe.variant.inference()
    checkpoint = run_directory.load_checkpoint(run_dir / run_directory.CHECKPOINT)
    experiment = build_experiment(recipe, registry)
    run_directory.load_model_state(experiment.variant, checkpoint["model"], run_dir / run_directory.CHECKPOINT)
    started = time.perf_counter()
    splits = experiment.splits
    train_count = train_examples(recipe, splits)
    notify(
        f"evaluating {run_dir} (epoch {checkpoint['epoch']}, {inference.sampler or 'its'} sampler, "
        f"{inference.steps or 'its'} steps): {len(splits.test_labels)} test images"
        + (f" and {train_count} training images × {inference_runs} inference runs" if inference_runs else "")
    )
    progress.start(
        (len(splits.test_labels) + train_count) * inference_runs if inference_runs else len(splits.test_labels)
    )
    settings: dict[str, Any] = {"batch_size": recipe.eval.batch_size, "seed": recipe.seed, "done": progress}
    runs: dict[str, Any] = {}
    if inference_runs is None:
        test = accuracy(experiment.variant, splits.test_images, splits.test_labels, **settings)
    else:
        runs = {
            "test_accuracy_runs": accuracy_runs(
                experiment.variant, splits.test_images, splits.test_labels, runs=inference_runs, **settings
            ),
            "train_accuracy_runs": accuracy_runs(
                experiment.variant,
                splits.train_images[:train_count],
                splits.train_labels[:train_count],
                runs=inference_runs,
                **settings,
            ),
        }
        test = statistics.fmean(runs["test_accuracy_runs"])
    result = {
        "test_accuracy": test,
        **runs,
        "sampler": inference.sampler,
        "steps": inference.steps,
        "epoch": checkpoint["epoch"],
        "seconds": time.perf_counter() - started,
        "utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    append_evaluation(run_dir / EVALUATIONS, result, notify)
    metrics_path = run_dir / run_directory.METRICS
    if runs and not overrides and metrics_path.is_file():  # the run's own inference, repeated
        try:
            metrics = json.loads(metrics_path.read_text())
        except (OSError, ValueError):
            notify(f"noprop: warning: {metrics_path}: unreadable; the result is in {EVALUATIONS} only")
            return result
        metrics.update(
            runs,
            inference_runs=inference_runs,
            test_accuracy=test,
            train_accuracy=statistics.fmean(runs["train_accuracy_runs"]),
        )
        run_directory.write_json(metrics_path, metrics)
    return result


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
