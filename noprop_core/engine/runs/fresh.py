"""A fresh run: validate the recipe, make its folder, build the experiment and its trainer, then
train it to the end (``runs.session``). ``noprop run`` and ``noprop_core.train`` come here."""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
import torch

from noprop_core.engine import run_directory
from noprop_core.engine.runs.session import EpochCallback, RunSession, announce_speed_path, run_to_end
from noprop_core.engine.training.experiment import build_experiment, resolve_device
from noprop_core.engine.training.progress import Progress
from noprop_core.engine.training.smoke import smoke_recipe
from noprop_core.engine.training.trainer import Trainer
from noprop_core.plugin.registry import Registry
from noprop_core.recipe.loading import dump_recipe, load_recipe, override_recipe
from noprop_core.recipe.schema import Recipe
from noprop_core.speed.distributed import Distributed, setup


@attrs.frozen(kw_only=True)
class RunOptions:
    """How to start a fresh run of a recipe, besides the recipe itself."""

    overrides: Sequence[str] = ()  # --set lines
    out_dir: Path | None = None  # default: runs/<recipe>-<UTC time>/
    # A display, or a function that makes one (a new display per run); True or None: one line per
    # epoch on stderr; False: nothing.
    progress: Progress | Callable[[], Progress] | bool | None = None
    started: float | None = None  # perf_counter() the run's wall time counts from (default: now)
    # A few batches and a short evaluation with the recipe's real code, standing in synthetic
    # data for absent files (``training.smoke``).
    smoke: bool = False
    group: str | None = None  # the seed group the run belongs to (an Aim hparam)
    recipe: Recipe | None = None  # a recipe built in Python (the recipe path then only names the run)
    # Told each epoch's record once saved; the run stops (checkpoint saved, ``RunInterrupted``)
    # when it returns True (a sweep's pruning).
    on_epoch: EpochCallback | None = None

    def display(self) -> Progress:
        """The progress display for a run started with these options."""
        if self.progress is None or self.progress is True:
            return Progress()
        if self.progress is False:
            return Progress(stream=io.StringIO())
        return self.progress() if callable(self.progress) else self.progress


def start_run(
    recipe_path: Path, registry: Registry, options: RunOptions | None = None, **fields: Any
) -> tuple[Path, dict[str, Any]]:
    """Train one recipe end to end; returns the run directory and its metrics. ``options``, or
    its ``fields`` as keywords."""
    session = prepare_run(recipe_path, registry, options or RunOptions(**fields))
    return session.run_dir, run_to_end(session)


def resolved_recipe(recipe_path: Path, registry: Registry, options: RunOptions) -> Recipe:
    """The recipe to run: loaded (or the one built in Python), overridden, shrunk for a smoke run."""
    overrides = list(options.overrides)
    if options.recipe is None:
        recipe = load_recipe(recipe_path, registry, overrides)
    else:
        recipe = override_recipe(options.recipe, registry, overrides, str(recipe_path))
    return smoke_recipe(recipe) if options.smoke else recipe


def prepare_run(recipe_path: Path, registry: Registry, options: RunOptions) -> RunSession:
    """Validate, make the run folder (only rank 0 of a distributed run writes), build the
    experiment and its trainer, and write the resolved recipe as the device resolved it."""
    started = time.perf_counter() if options.started is None else options.started
    recipe = resolved_recipe(recipe_path, registry, options)
    device = resolve_device(recipe.device)  # before anything is written
    distributed = setup(recipe.speed.distributed, device.type)  # under torchrun only
    if distributed is not None and device.type == "cuda":
        device = torch.device("cuda", distributed.local_rank)
    run_dir = options.out_dir or run_directory.default_run_dir(recipe_path)
    writes = distributed is None or distributed.is_main
    new_dir = run_directory.NewRunDir(run_dir) if writes else None
    progress = options.display() if writes else Progress(stream=io.StringIO())
    try:
        trainer = build_trainer(recipe, registry, device, distributed, options.smoke, progress)
        if new_dir is not None:  # with the choices the device made (order = "auto"…)
            resolved = run_dir / run_directory.RECIPE
            header = f"# noprop run {resolved}"
            run_directory.write_text(resolved, dump_recipe(trainer.experiment.recipe, registry, header=header))
    except BaseException:
        if new_dir is not None:
            new_dir.abandon()
        raise
    return RunSession(
        recipe_path=str(recipe_path),
        run_dir=run_dir,
        experiment=trainer.experiment,
        trainer=trainer,
        registry=registry,
        started=started,
        group=options.group,
        new_dir=new_dir,
        on_epoch=options.on_epoch,
    )


def build_trainer(
    recipe: Recipe,
    registry: Registry,
    device: torch.device,
    distributed: Distributed | None,
    stand_in: bool,
    progress: Progress,
) -> Trainer:
    experiment = build_experiment(
        recipe, registry, device, stand_in=stand_in, notify=progress.message, distributed=distributed
    )
    announce_speed_path(experiment, progress)
    return Trainer(experiment, progress)
