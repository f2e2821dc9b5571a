"""`noprop eval`: re-evaluate a finished run, optionally with another sampler or number of steps."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import attrs

from noprop_core import rundir
from noprop_core.errors import NopropError
from noprop_core.experiment import build_experiment
from noprop_core.recipe import load_recipe
from noprop_core.registry import Registry
from noprop_core.training import accuracy

EVALUATIONS = "evaluations.json"


def evaluate_run(
    run_dir: Path, registry: Registry, *, steps: int | None = None, sampler: str | None = None
) -> dict[str, Any]:
    """Test accuracy of a run's checkpoint; the result is appended to RUN_DIR/evaluations.json."""
    recipe_path = run_dir / rundir.RECIPE
    if not recipe_path.is_file():
        raise NopropError(f"{run_dir}: not a run directory (no {rundir.RECIPE})")
    requested = {key: value for key, value in (("steps", steps), ("sampler", sampler)) if value is not None}
    recipe = load_recipe(recipe_path, registry)
    for key in requested:
        if key not in attrs.fields_dict(type(recipe.variant)):
            raise NopropError(f"--{key}: variant '{recipe.variant.name}' has no {key} to change")
    overrides = [f"variant.{key}={json.dumps(value)}" for key, value in requested.items()]  # TOML literals
    recipe = load_recipe(recipe_path, registry, overrides)
    checkpoint = rundir.load_checkpoint(run_dir / rundir.CHECKPOINT)
    experiment = build_experiment(recipe, registry)
    experiment.variant.load_state_dict(checkpoint["model"])
    started = time.perf_counter()
    splits = experiment.splits
    result = {
        "test_accuracy": accuracy(
            experiment.variant,
            splits.test_images,
            splits.test_labels,
            batch_size=recipe.eval.batch_size,
            seed=recipe.seed,
        ),
        "sampler": getattr(recipe.variant, "sampler", None),
        "steps": getattr(recipe.variant, "steps", getattr(recipe.variant, "timesteps", None)),
        "epoch": checkpoint["epoch"],
        "seconds": time.perf_counter() - started,
        "utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    log = run_dir / EVALUATIONS
    history = json.loads(log.read_text()) if log.is_file() else []
    rundir.write_json_list(log, [*history, result])
    return result
