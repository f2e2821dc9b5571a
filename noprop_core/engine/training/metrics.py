"""metrics.json: what a run reports about itself, rewritten after every epoch."""

from __future__ import annotations

import platform
from typing import Any

import torch

from noprop_core import __version__
from noprop_core.engine.training.evaluation import peak_memory_bytes, schedule_curve
from noprop_core.engine.training.experiment import Experiment
from noprop_core.engine.training.trainer import Trainer


def collect_metrics(recipe_path: str, experiment: Experiment, trainer: Trainer, wall_seconds: float) -> dict[str, Any]:
    recipe = experiment.recipe
    history = [record.as_dict() for record in trainer.history]
    examples = trainer.examples_per_epoch() * len(history)
    return {
        "recipe": recipe_path,
        "variant": recipe.variant.name,
        "dataset": recipe.data.name,
        "backbone": recipe.model.backbone.name,
        "embedding": recipe.model.embedding.name,
        "schedule": recipe.model.schedule.name if recipe.model.schedule is not None else None,
        "seed": recipe.seed,
        "device": str(experiment.device),
        "speed_path": experiment.speed.describe(experiment.variant),
        "threads": experiment.threads.count,
        "threads_reason": experiment.threads.reason,
        "epochs_completed": len(history),
        "train_accuracy": None,
        "train_accuracy_examples": None,
        "test_accuracy": history[-1]["test_accuracy"] if history else None,
        "validation_accuracy": history[-1]["validation_accuracy"] if history else None,
        # The last evaluation's nearest-class-embedding accuracy of the head's state, and the gap.
        "nearest_embedding_accuracy": last_evaluated(history, "nearest_embedding_accuracy"),
        "readout_gap": last_evaluated(history, "readout_gap"),
        "test_examples": len(experiment.splits.test_labels),
        "data_stand_in": experiment.data_stand_in,
        "data_placement": experiment.data_placement,
        "train_examples": len(experiment.splits.train_labels),
        "wall_seconds": wall_seconds,
        "train_seconds": trainer.train_seconds,
        # Training compute (``training.compute``): block passes, and FLOPs (None: not all counted).
        "train_block_passes": trainer.compute.block_passes,
        "train_flops": trainer.compute.totals()["flops"],
        # One example passed through all T blocks counts once; evaluation time is excluded.
        "train_examples_per_second": examples / trainer.train_seconds if trainer.train_seconds else None,
        "peak_memory_bytes": peak_memory_bytes(experiment.device),
        "noprop_version": __version__,
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "schedule_curve": schedule_curve(experiment.variant, experiment.device),
        "history": history,
    }


def last_evaluated(history: list[dict[str, Any]], key: str) -> Any:
    """``key`` of the last epoch that was evaluated (None when none was, or it has none)."""
    evaluated = [record for record in history if record.get("test_accuracy") is not None]
    return evaluated[-1].get(key) if evaluated else None
