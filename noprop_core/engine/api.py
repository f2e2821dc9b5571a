"""Training and using runs from Python: ``train``, ``resume``, ``load_run`` and the ``Run`` they
return. The same engine functions ``noprop run``, ``eval``, ``predict`` and ``export`` call, with
the same run folders and the same one-line ``NopropError``s.

    import noprop_core as noprop
    run = noprop.train("digits_dt", overrides=["train.epochs=3"])
    run.metrics["test_accuracy"], run.history[-1]["loss"]
    run.predict(images)          # images in [0, 1], (B, C, H, W) → class indices
    run.evaluate(steps=20)       # another number of inference steps, logged in evaluations.json
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
from torch import Tensor

from noprop_core.engine import run_directory
from noprop_core.engine.report.plots import write_plots
from noprop_core.engine.report.table import Row, RunSummary, group_rows, load_runs, markdown_table
from noprop_core.engine.runs.fresh import RunOptions, start_run
from noprop_core.engine.runs.resume import resume_run
from noprop_core.engine.runs.seed_group import (
    GroupPlan,
    launch_seed_groups,
    plan_seed_group,
    run_seed_group_here,
    seed_dir,
)
from noprop_core.engine.sweep.driver import SweepResult, refuse_trial_outside_its_sweep, run_sweep
from noprop_core.engine.trained.inference import TrainedModel, load_model
from noprop_core.engine.training.progress import Progress
from noprop_core.errors import NopropError
from noprop_core.plugin.kinds import BY_NAME
from noprop_core.plugin.launcher import Launcher
from noprop_core.plugin.manager import load_registry
from noprop_core.plugin.registry import Registry
from noprop_core.recipe import loading
from noprop_core.recipe.launcher import build_launcher, launcher_config
from noprop_core.recipe.loading import default_recipe_path, one_seed, override_recipe
from noprop_core.recipe.schema import Recipe
from noprop_core.recipe.shipped import resolve_recipe_path


@attrs.define
class Run:
    """A run folder, finished or not: what it measured, and its trained model to use."""

    run_dir: Path
    registry: Registry = attrs.field(factory=load_registry, repr=False)
    final_metrics: dict[str, Any] | None = attrs.field(default=None, repr=False)  # as training returned them
    _models: dict[Any, TrainedModel] = attrs.field(factory=dict, repr=False)

    @property
    def metrics(self) -> dict[str, Any]:
        """metrics.json as it is now (after every epoch, then with the final evaluation); a
        distributed run's other ranks, which write nothing, get what their training returned."""
        try:
            return json.loads((self.run_dir / run_directory.METRICS).read_text())
        except (OSError, ValueError) as exc:
            if self.final_metrics is not None:
                return self.final_metrics
            raise NopropError(f"{self.run_dir / run_directory.METRICS}: unreadable ({exc})") from None

    @property
    def history(self) -> list[dict[str, Any]]:
        """One record per epoch: losses per block and term, test accuracy where evaluated."""
        return self.metrics["history"]

    @property
    def recipe(self) -> Recipe:
        return loading.load_recipe(self.run_dir / run_directory.RECIPE, self.registry)

    def model(self, *, steps: int | None = None, device: str = "cpu") -> TrainedModel:
        """The run's trained model (its last checkpoint); loaded once per ``steps`` and ``device``."""
        key = (steps, device)
        if key not in self._models:
            self._models[key] = load_model(self.run_dir, self.registry, device=device, steps=steps)
        return self._models[key]

    def predict(self, images: Any, *, steps: int | None = None) -> Tensor:
        """Class indices of images as users hold them: a torch tensor, numpy array or PIL image,
        or a list of them; (B, C, H, W) or one image without the batch axis (then a 0-d result);
        uint8 pixels read as 0–255, floats as 0–1; standardised as the training data was."""
        return self.model(steps=steps).classify(images)

    def predict_proba(self, images: Any, *, steps: int | None = None) -> Tensor:
        """Class probabilities of images, taken as ``predict`` takes them."""
        return self.model(steps=steps).class_probabilities(images)

    def evaluate(
        self, *, steps: int | None = None, sampler: str | None = None, runs: int | None = None
    ) -> dict[str, Any]:
        """Test accuracy of the checkpoint (``noprop eval``): with another number of inference
        ``steps`` or ``sampler``, over ``runs`` inference runs with independent noise."""
        from noprop_core.engine.trained.reevaluation import evaluate_run

        return evaluate_run(self.run_dir, self.registry, steps=steps, sampler=sampler, inference_runs=runs)

    def export(self, format: str, path: str | Path | None = None, *, steps: int | None = None) -> Path:  # noqa: A002
        """The model as ``safetensors``, ``onnx`` or ``torchscript`` (``noprop export``); returns the file."""
        from noprop_core.engine.trained.export import FORMATS, export

        if format not in FORMATS:
            raise NopropError(f"export: unknown format {format!r}; expected one of {', '.join(FORMATS)}")
        suffix = {"torchscript": "pt"}.get(format, format)
        out = Path(path) if path is not None else self.run_dir / f"model.{suffix}"
        return export(self.model(steps=steps), format, out)["path"]

    def plot(self, out_dir: str | Path | None = None) -> list[Path]:
        """``noprop report --plot`` for this run: accuracy, losses, chain accuracy, schedule
        (PNG files in ``out_dir``, by default RUN_DIR/plots); returns the files written."""
        from noprop_core.engine.report.plots import write_plots
        from noprop_core.engine.report.table import load_summary

        return write_plots([load_summary(self.run_dir)], Path(out_dir) if out_dir else self.run_dir / "plots")


@attrs.define
class SeedGroup:
    """A recipe trained once per seed: each seed's ``Run`` and the pooled protocol.json."""

    out: Path
    protocol: dict[str, Any]
    runs: list[Run]


ProgressChoice = bool | Callable[[], Progress]


def _display(progress: ProgressChoice) -> Progress | Callable[[], Progress]:
    """True: one line per epoch on stderr; False: nothing; a callable: a new display per run."""
    if callable(progress):
        return progress
    return Progress() if progress else Progress(stream=io.StringIO())


def _notify(progress: ProgressChoice) -> Callable[[str], None]:
    if not progress:
        return lambda text: None
    return lambda text: print(text, file=sys.stderr)


def _recipe_source(recipe: str | Path | Recipe | None) -> tuple[Path, Recipe | None]:
    """The path that names the run, and the recipe when it was built in Python."""
    if isinstance(recipe, Recipe):
        return Path(f"{recipe.data.name}_{recipe.variant.name}.toml"), recipe
    if recipe is None:
        return default_recipe_path(), None
    return resolve_recipe_path(Path(recipe)), None


def train(
    recipe: str | Path | Recipe | None = None,
    *,
    overrides: Sequence[str] = (),
    out: str | Path | None = None,
    seeds: Sequence[int] | None = None,
    progress: ProgressChoice = True,
    registry: Registry | None = None,
    jobs: int = 1,
    stack_seeds: str = "auto",
    smoke: bool = False,
    group: str | None = None,
    started: float | None = None,
    on_epoch: Callable[[dict[str, Any]], bool] | None = None,
    launcher: Launcher | None = None,
) -> Run | SeedGroup:
    """Train ``recipe`` (a file, a shipped recipe's name, a ``Recipe``; default ``digits_dt``)
    to the end, as ``noprop run`` does: a ``Run`` for one seed, a ``SeedGroup`` for ``seeds``
    (or a recipe with ``seeds = [...]``). ``overrides`` are ``--set`` lines (``"train.epochs=3"``);
    ``progress``: one line per epoch on stderr (False: quiet). A seed group's new seeds train
    in this process, stacked as ``stack_seeds`` says, or as jobs of ``launcher`` (``jobs`` > 1:
    the `local` launcher with that many workers).
    ``smoke``: a few batches with the recipe's real code (of a seed group, the first seed).
    ``on_epoch(record)``: told every epoch's record once saved; returning True stops the run
    (its checkpoint saved, ``RunInterrupted`` raised), as a sweep's pruner does."""
    registry = registry or load_registry()
    launcher = _launcher(launcher, registry, jobs)
    recipe_path, built = _recipe_source(recipe)
    loaded = _load(recipe_path, built, registry, overrides)
    group_seeds = list(seeds) if seeds is not None else loaded.seeds
    overrides = [*overrides, *(one_seed(group_seeds[0]) if group_seeds and smoke else [])]
    options = RunOptions(
        overrides=overrides,
        out_dir=Path(out) if out is not None else None,
        progress=_display(progress),
        started=started,
        smoke=smoke,
        group=group,
        recipe=built,
        on_epoch=on_epoch,
    )
    if group_seeds and not smoke:  # a smoke test checks the code path: the group's first seed is enough
        plan = plan_seed_group(
            recipe_path, loaded, seeds=group_seeds, overrides=overrides, out=options.out_dir, notify=_notify(progress)
        )
        return _train_seed_group(plan, registry, options, launcher, stack_seeds, _notify(progress))
    run_dir, metrics = start_run(recipe_path, registry, options)
    return Run(run_dir, registry, final_metrics=metrics)


def _launcher(launcher: Launcher | None, registry: Registry, jobs: int) -> Launcher | None:
    """The launcher a seed group's jobs go to: the given one, or with ``jobs`` > 1 the local one."""
    if jobs < 1:
        raise NopropError(f"--jobs: expected a number >= 1, got {jobs}")
    return launcher or (default_launcher(registry, workers=jobs) if jobs > 1 else None)


def _load(recipe_path: Path, built: Recipe | None, registry: Registry, overrides: Sequence[str]) -> Recipe:
    if built is not None:
        return override_recipe(built, registry, list(overrides), str(recipe_path))
    return loading.load_recipe(recipe_path, registry, list(overrides))


def _train_seed_group(
    plan: GroupPlan,
    registry: Registry,
    options: RunOptions,
    launcher: Launcher | None,
    stack_seeds: str,
    notify: Callable[[str], None],
) -> SeedGroup:
    """The seed group's seeds, as jobs of ``launcher`` or in this process."""
    if launcher is not None and options.recipe is not None:
        plan.abandon_if_empty()
        raise NopropError("launcher: jobs train recipe files; save the recipe to a file first")
    if launcher is not None:
        [(group_dir, protocol)] = launch_seed_groups([plan], launcher, notify)
    else:
        group_dir, protocol = run_seed_group_here(plan, registry, options, stack_seeds)
    return SeedGroup(group_dir, protocol, [Run(seed_dir(group_dir, seed), registry) for seed in plan.seeds])


def train_groups(
    recipes: Sequence[str | Path],
    *,
    seeds: Sequence[int],
    out: str | Path,
    launcher: Launcher | None = None,
    overrides: Sequence[str] = (),
    registry: Registry | None = None,
    progress: bool = True,
) -> list[SeedGroup]:
    """Several recipes' seed groups, OUT/<recipe name>/ each, as the jobs of one launch (one
    array job on a cluster): the paper's protocol, ``nox -s paper -- --launcher slurm``."""
    registry = registry or load_registry()
    launcher = launcher or default_launcher(registry, workers=1)
    notify = _notify(progress)
    plans = []
    for recipe in recipes:
        recipe_path = resolve_recipe_path(Path(recipe))
        loaded = loading.load_recipe(recipe_path, registry, list(overrides))
        plans.append(
            plan_seed_group(
                recipe_path,
                loaded,
                seeds=list(seeds),
                overrides=list(overrides),
                out=Path(out) / recipe_path.stem,
                notify=notify,
            )
        )
    done = launch_seed_groups(plans, launcher, notify)
    return [
        SeedGroup(group_dir, protocol, [Run(seed_dir(group_dir, seed), registry) for seed in seeds])
        for group_dir, protocol in done
    ]


def default_launcher(registry: Registry, *, workers: int) -> Launcher:
    """The default launcher (this machine's) with ``workers`` jobs at a time."""
    name = BY_NAME["launcher"].default
    return build_launcher(launcher_config({"name": name, "workers": workers}, registry, "--jobs"), registry)


def resume(
    run_dir: str | Path,
    *,
    epochs: int | None = None,
    progress: bool = True,
    registry: Registry | None = None,
    on_epoch: Callable[[dict[str, Any]], bool] | None = None,
) -> Run:
    """Continue a run from its last checkpoint (``noprop run --resume``); ``epochs``: train a
    finished run further, to this many epochs in all."""
    registry = registry or load_registry()
    refuse_trial_outside_its_sweep(Path(run_dir))
    overrides = [f"train.epochs={epochs}"] if epochs is not None else []
    display = _display(progress)
    progress_now = display() if callable(display) else display
    run_dir, _ = resume_run(Path(run_dir), registry, overrides=overrides, progress=progress_now, on_epoch=on_epoch)
    return Run(run_dir, registry)


def load_recipe(recipe: str | Path, overrides: Sequence[str] = (), registry: Registry | None = None) -> Recipe:
    """A recipe (a file, or a shipped recipe's name, e.g. "mnist_dt") validated, with ``overrides``
    (``--set`` lines) applied: what ``train`` takes, and what ``noprop validate --show`` prints."""
    return loading.load_recipe(resolve_recipe_path(Path(recipe)), registry or load_registry(), list(overrides))


def sweep(
    sweep_file: str | Path,
    *,
    out: str | Path | None = None,
    launcher: Launcher | None = None,
    progress: ProgressChoice = True,
    registry: Registry | None = None,
) -> SweepResult:
    """Run a sweep file to its trial budget (``noprop sweep``): OUT/sweep.json, OUT/best.toml and a
    run folder per trial; ``result.summary["best"]`` is the best trial. Run it again to continue."""
    path = Path(sweep_file)
    if not path.is_file():
        raise NopropError(f"{path}: no such sweep file")
    return run_sweep(
        path,
        registry or load_registry(),
        out=Path(out) if out is not None else None,
        notify=_notify(progress),
        progress=_display(progress),
        launcher=launcher,
    )


@attrs.frozen
class Report:
    """Runs side by side with the papers' values (``noprop report``): one row per configuration
    (seeds pooled), as a Markdown table or plots."""

    runs: list[RunSummary]
    rows: list[Row]

    def markdown(self) -> str:
        return markdown_table(self.rows)

    def plot(self, out_dir: str | Path) -> list[Path]:
        """accuracy, losses, chain accuracy, schedules… as PNG files in ``out_dir``; returns them."""
        return write_plots(self.runs, Path(out_dir), self.rows)


def report(*run_dirs: str | Path, registry: Registry | None = None, progress: bool = True) -> Report:
    """Run folders and seed groups side by side (``noprop report``); folders that hold no run are
    skipped with a warning on stderr (``progress=False``: quietly), and none at all is an error."""
    paths = [Path(path) for path in run_dirs]
    runs = load_runs(paths, warn=_notify(progress), registry=registry or load_registry())
    return Report(runs, group_rows(runs))


def load_run(run_dir: str | Path, registry: Registry | None = None) -> Run:
    """A run folder written by ``noprop run`` or ``train``, to read and use."""
    run_dir = Path(run_dir)
    run_directory.require_run_dir(run_dir)
    return Run(run_dir, registry or load_registry())


__all__ = ["Run", "SeedGroup", "Report", "train", "resume", "load_run", "load_recipe", "sweep", "report"]
