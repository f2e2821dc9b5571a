"""`noprop run`: validate, build, train, evaluate, and write the run directory."""

from __future__ import annotations

import platform
import resource
import sys
import time
from pathlib import Path
from typing import Any

import torch

import noprop_core
from noprop_core import rundir
from noprop_core.experiment import Experiment, build_experiment, resolve_device
from noprop_core.progress import Progress
from noprop_core.recipe import Recipe, dump_recipe, load_recipe, recipe_to_dict
from noprop_core.registry import Registry
from noprop_core.training import Trainer


def peak_memory_bytes(device: torch.device) -> int:
    """CUDA's peak allocation on a GPU; otherwise the process's peak resident set size."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # Linux reports KiB


def collect_metrics(recipe_path: Path, experiment: Experiment, trainer: Trainer, started: float) -> dict[str, Any]:
    recipe = experiment.recipe
    history = [record.as_dict() for record in trainer.history]
    examples = len(experiment.splits.train_labels) * len(history)
    return {
        "recipe": str(recipe_path),
        "variant": recipe.variant.name,
        "dataset": recipe.data.name,
        "backbone": recipe.model.backbone.name,
        "embedding": recipe.model.embedding.name,
        "schedule": recipe.model.schedule.name,
        "seed": recipe.seed,
        "device": str(experiment.device),
        "epochs_completed": len(history),
        "train_accuracy": None,
        "train_accuracy_examples": None,
        "test_accuracy": history[-1]["test_accuracy"] if history else None,
        "test_examples": len(experiment.splits.test_labels),
        "train_examples": len(experiment.splits.train_labels),
        "wall_seconds": time.perf_counter() - started,
        "train_seconds": trainer.train_seconds,
        # One example passed through all T blocks counts once; evaluation time is excluded.
        "train_examples_per_second": examples / trainer.train_seconds if trainer.train_seconds else None,
        "peak_memory_bytes": peak_memory_bytes(experiment.device),
        "noprop_version": noprop_core.__version__,
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "history": history,
    }


def checkpoint_state(trainer: Trainer, registry: Registry) -> dict[str, Any]:
    return {
        "epoch": len(trainer.history),
        "recipe": recipe_to_dict(trainer.recipe, registry),
        "model": trainer.variant.state_dict(),
        "unit_optimizers": {u: o.state_dict() for u, o in trainer.unit_optimizers.items() if o is not None},
        "shared_optimizer": trainer.shared_optimizer.state_dict() if trainer.shared_optimizer else None,
        "lr_schedulers": [scheduler.state_dict() for scheduler in trainer.lr_schedulers],
        "history": [record.as_dict() for record in trainer.history],
    }


def run(
    recipe_path: Path,
    registry: Registry,
    *,
    overrides: list[str] = (),
    out_dir: Path | None = None,
    progress: Progress | None = None,
    started: float | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Train one recipe end to end; returns the run directory and its metrics."""
    started = time.perf_counter() if started is None else started
    progress = progress or Progress()
    registry.raise_if_broken()
    recipe: Recipe = load_recipe(recipe_path, registry, list(overrides))
    device = resolve_device(recipe.device)  # before anything is written
    run_dir = rundir.prepare_run_dir(out_dir or rundir.default_run_dir(recipe_path))
    resolved = run_dir / rundir.RECIPE
    rundir.write_text(resolved, dump_recipe(recipe, registry, header=f"# noprop run {resolved}"))

    experiment = build_experiment(recipe, registry, device)
    tracker = registry.build("tracker", recipe.tracker, experiment=recipe_path.stem, run_dir=run_dir)
    trainer = Trainer(experiment, progress, tracker)

    def save(trainer: Trainer) -> None:
        rundir.save_checkpoint(run_dir / rundir.CHECKPOINT, checkpoint_state(trainer, registry))
        rundir.write_json(run_dir / rundir.METRICS, collect_metrics(recipe_path, experiment, trainer, started))

    try:
        tracker.start(recipe_to_dict(recipe, registry))
        with progress:
            trainer.fit(on_epoch_end=save)
        train_accuracy, train_count = trainer.train_accuracy()
        tracker.track(train_accuracy, name="accuracy", step=trainer.step, epoch=len(trainer.history), context={"subset": "train"})
    finally:
        tracker.close()
    metrics = collect_metrics(recipe_path, experiment, trainer, started)
    metrics.update(train_accuracy=train_accuracy, train_accuracy_examples=train_count, tracker_run=tracker.run_id)
    rundir.write_json(run_dir / rundir.METRICS, metrics)
    return run_dir, metrics
