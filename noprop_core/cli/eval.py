"""`noprop eval`: re-evaluate a finished run, optionally with another sampler or number of steps."""

from __future__ import annotations

import json
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from noprop_core.engine import run_directory
from noprop_core.engine.evaluation import accuracy, accuracy_runs
from noprop_core.engine.experiment import build_experiment
from noprop_core.errors import NopropError
from noprop_core.plugin.registry import Registry
from noprop_core.recipe.loading import load_recipe

EVALUATIONS = "evaluations.json"


def evaluate_run(
    run_dir: Path,
    registry: Registry,
    *,
    steps: int | None = None,
    sampler: str | None = None,
    inference_runs: int | None = None,
) -> dict[str, Any]:
    """Test accuracy of a run's checkpoint; the result is appended to RUN_DIR/evaluations.json.

    ``inference_runs``: repeat inference with independent noise, on the test set and the
    ``eval.train_subset`` training images; with the run's own sampler and steps, metrics.json
    then gets the runs and their means as a finished run with ``eval.inference_runs`` would."""  # fmt: skip
    recipe_path = run_dir / run_directory.RECIPE
    if not recipe_path.is_file():
        raise NopropError(f"{run_dir}: not a run directory (no {run_directory.RECIPE})")
    recipe = load_recipe(recipe_path, registry)
    inference = recipe.variant.inference()
    overrides = []
    for option, value, key in (("steps", steps, inference.steps_key), ("sampler", sampler, inference.sampler_key)):
        if value is None:
            continue
        if key is None:
            raise NopropError(f"--{option}: variant '{recipe.variant.name}' has no {option} to change")
        overrides.append(f"variant.{key}={json.dumps(value)}")  # a TOML literal; the recipe schema validates it
    recipe = load_recipe(recipe_path, registry, overrides)
    inference = recipe.variant.inference()
    checkpoint = run_directory.load_checkpoint(run_dir / run_directory.CHECKPOINT)
    experiment = build_experiment(recipe, registry)
    experiment.variant.load_state_dict(checkpoint["model"])
    started = time.perf_counter()
    splits = experiment.splits
    settings = {"batch_size": recipe.eval.batch_size, "seed": recipe.seed}
    runs: dict[str, Any] = {}
    if inference_runs is None:
        test = accuracy(experiment.variant, splits.test_images, splits.test_labels, **settings)
    else:
        count = recipe.eval.train_subset or len(splits.train_labels)
        runs = {
            "test_accuracy_runs": accuracy_runs(
                experiment.variant, splits.test_images, splits.test_labels, runs=inference_runs, **settings
            ),  # fmt: skip
            "train_accuracy_runs": accuracy_runs(
                experiment.variant,
                splits.train_images[:count],
                splits.train_labels[:count],
                runs=inference_runs,
                **settings,
            ),  # fmt: skip
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
    log = run_dir / EVALUATIONS
    history = json.loads(log.read_text()) if log.is_file() else []
    run_directory.write_json_list(log, [*history, result])
    metrics_path = run_dir / run_directory.METRICS
    if runs and not overrides and metrics_path.is_file():  # the run's own inference, repeated
        metrics = json.loads(metrics_path.read_text())
        metrics.update(runs, inference_runs=inference_runs, test_accuracy=test,
                       train_accuracy=statistics.fmean(runs["train_accuracy_runs"]))  # fmt: skip
        run_directory.write_json(metrics_path, metrics)
    return result
