"""Resuming a run from its last checkpoint, with the same state as if it had never stopped; a
resumed run may change only the keys marked ``CHANGEABLE_ON_RESUME`` (e.g. ``train.epochs``, to
train a finished run further), each change recorded with the epoch it applies from."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from noprop_core.engine import run_directory
from noprop_core.engine.runs.fresh import build_trainer
from noprop_core.engine.runs.session import EpochCallback, RunSession, run_to_end
from noprop_core.engine.training.experiment import resolve_device
from noprop_core.engine.training.progress import Progress
from noprop_core.engine.training.trainer import Trainer
from noprop_core.errors import NopropError
from noprop_core.plugin.registry import Registry
from noprop_core.recipe.loading import dump_recipe, load_recipe, recipe_to_dict
from noprop_core.recipe.schema import Recipe, changeable_on_resume


@attrs.frozen(kw_only=True)
class ResumePoint:
    """What a run folder holds to resume from: the recipe to continue with, the checkpoint, and
    the keys that recipe changes."""

    recipe: Recipe
    checkpoint: dict[str, Any]
    changes: list[dict[str, Any]]

    @property
    def epochs_done(self) -> int:
        return len(self.checkpoint["history"])


def resume_run(
    run_dir: Path,
    registry: Registry,
    *,
    overrides: Sequence[str] = (),
    progress: Progress | None = None,
    on_epoch: EpochCallback | None = None,
) -> tuple[Path, dict[str, Any] | None]:
    """Continue a run from its last checkpoint. ``overrides`` (and edits of RUN_DIR/recipe.toml)
    may change only what a run can change mid-way. Returns the metrics, or None when the run had
    finished and nothing was changed."""
    started = time.perf_counter()
    run_directory.require_run_dir(run_dir, "--resume ")
    lock = run_directory.RunDirLock(run_dir, "--resume")
    try:
        point = resume_point(run_dir, registry, overrides)
        if not point.changes and run_directory.concluded(run_dir, point.epochs_done, point.recipe.train.epochs):
            lock.release()
            return run_dir, None
        trainer = restored_trainer(run_dir, registry, point, progress or Progress())
    except BaseException:
        lock.release()
        raise
    session = RunSession(
        recipe_path=point.checkpoint["recipe_path"],
        run_dir=run_dir,
        experiment=trainer.experiment,
        trainer=trainer,
        registry=registry,
        started=started - point.checkpoint["wall_seconds"],
        lock=lock,
        recipe_changes=(*point.checkpoint.get("recipe_changes", ()), *point.changes),
        on_epoch=on_epoch,
    )
    return run_dir, run_to_end(session)


def resume_point(run_dir: Path, registry: Registry, overrides: Sequence[str]) -> ResumePoint:
    """The recipe to continue with (RUN_DIR/recipe.toml and ``overrides``, written back when they
    change it), the checkpoint, and the changes, checked against what may change mid-run."""
    recipe_file = run_dir / run_directory.RECIPE
    recipe = load_recipe(recipe_file, registry, list(overrides))
    checkpoint = run_directory.load_checkpoint(run_dir / run_directory.CHECKPOINT)
    done = len(checkpoint["history"])
    after = recipe_to_dict(recipe, registry)
    changes = resume_changes(checkpoint["recipe"], after, str(recipe_file), done + 1, changeable_on_resume(recipe))
    if done > recipe.train.epochs:
        raise NopropError(
            f"{recipe_file}: train.epochs: {recipe.train.epochs} is below the {done} epochs already trained"
        )
    if changes:
        run_directory.write_text(recipe_file, dump_recipe(recipe, registry, header=f"# noprop run {recipe_file}"))
    return ResumePoint(recipe=recipe, checkpoint=checkpoint, changes=changes)


def restored_trainer(run_dir: Path, registry: Registry, point: ResumePoint, progress: Progress) -> Trainer:
    """The experiment built again (on the smoke run's stand-in data if it had one) and the
    trainer with the checkpoint's state, announced on ``progress``."""
    recipe, checkpoint = point.recipe, point.checkpoint
    stand_in = checkpoint.get("data_stand_in", False)
    trainer = build_trainer(recipe, registry, resolve_device(recipe.device), None, stand_in, progress)
    try:
        trainer.load_state_dict(checkpoint)
    except (RuntimeError, KeyError, ValueError, TypeError, IndexError) as exc:
        raise NopropError(
            f"{run_dir / run_directory.CHECKPOINT}: does not fit the run's recipe "
            f"({type(exc).__name__}: {str(exc).splitlines()[0][:160]})"
        ) from None
    position = trainer.position
    inside = ""
    if position is not None:
        inside = f", inside epoch {position.epoch} at phase {position.phase + 1}, batch {position.batches_done}"
    progress.message(
        f"resuming {run_dir}: {point.epochs_done} of {recipe.train.epochs} epochs done{inside} ({trainer.step} steps)"
    )
    for change in point.changes:
        progress.message(f"from epoch {change['epoch']}: {change['key']} = {change['to']!r} (was {change['from']!r})")
    return trainer


def resume_changes(
    before: dict[str, Any], after: dict[str, Any], origin: str, epoch: int, changeable: Sequence[str]
) -> list[dict[str, Any]]:
    """The keys that differ between the checkpoint's recipe and the one to resume with, each as
    {"epoch", "key", "from", "to"}; a one-line error listing those outside ``changeable``
    (keys, or sections ending in ".")."""
    old, new = flatten(before), flatten(after)
    differing = sorted(key for key in old.keys() | new.keys() if old.get(key) != new.get(key))
    frozen = [key for key in differing if not key.startswith(tuple(changeable))]
    if frozen:
        shown = ", ".join(f"{key} ({old.get(key)!r} in the checkpoint, {new.get(key)!r} now)" for key in frozen)
        allowed = ", ".join(key + "*" if key.endswith(".") else key for key in changeable)
        raise NopropError(
            f"{origin}: cannot change mid-run: {shown}; start a new run for that (resume may change {allowed})"
        )
    return [{"epoch": epoch, "key": key, "from": old.get(key), "to": new.get(key)} for key in differing]


def flatten(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} → {"a.b": 1}."""
    flat: dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
