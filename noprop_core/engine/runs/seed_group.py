"""`noprop run RECIPE --seeds 0 1 2`: the paper's protocol in one command.

One model per seed, each in its own normal run directory ``OUT/seed-<N>/`` (``--resume``,
``eval`` and ``report`` work on it), then ``OUT/protocol.json``: every seed's accuracies of
its final inference runs (``eval.inference_runs``) pooled into mean ± standard error, next to
the paper's Table 1 value with its standard error where the configuration is the paper's.

In this process, new seeds train together: on a GPU, where the update is fused, stacked into
one computation (``noprop_core.engine.training.seed_stack``: S seeds × T blocks in one pass;
``--stack-seeds on`` also on a CPU, where it gains nothing), else one after another. Through a
launcher (``--launcher``; ``--jobs N`` is the `local` one with N workers) each seed is a job:
N child processes sharing the CPUs, or an array job on a Slurm cluster. Starting the same
command again keeps finished seeds and resumes interrupted ones, each from its own checkpoint.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from noprop_core.engine import fault_points, run_directory
from noprop_core.engine.protocol import agrees, spread
from noprop_core.engine.report.paper import paper_reference
from noprop_core.engine.runs.fresh import RunOptions
from noprop_core.engine.runs.resume import resume_run
from noprop_core.engine.runs.stacked import FreshRuns, run_seeds_here
from noprop_core.errors import NopropError
from noprop_core.plugin.launcher import Job, Launcher
from noprop_core.plugin.registry import Registry
from noprop_core.recipe.loading import one_seed
from noprop_core.recipe.schema import Recipe, seed_list_problem

PROTOCOL = "protocol.json"


def seed_dir(out: Path, seed: int) -> Path:
    return out / f"seed-{seed}"


def check_seeds(seeds: list[int]) -> None:
    problem = seed_list_problem(seeds)
    if problem is not None:
        raise NopropError(f"--seeds: {problem}")


@attrs.frozen
class GroupPlan:
    """What a seed group still has to do: seeds to start, seeds to resume (the others finished)."""

    recipe_path: Path
    recipe: Recipe
    out: Path
    seeds: list[int]
    fresh: FreshRuns
    resumes: list[Path]
    made: Path | None = None  # the topmost folder this plan made (OUT, runs/…): a failed start removes it

    def abandon_if_empty(self) -> None:
        """After a failure: the folders this plan made go, when nothing was written into them."""
        run_directory.remove_empty_up_to(self.out, self.made)


def plan_seed_group(
    recipe_path: Path,
    recipe: Recipe,
    *,
    seeds: list[int],
    overrides: list[str],
    out: Path | None,
    notify: Callable[[str], None],
) -> GroupPlan:
    check_seeds(seeds)
    out = out or run_directory.default_run_dir(recipe_path)
    if out.exists() and not out.is_dir():
        raise NopropError(f"--out {out}: exists and is not a directory")
    made = run_directory.first_missing(out)
    out.mkdir(parents=True, exist_ok=True)
    fresh: FreshRuns = []
    resumes = []
    for seed in seeds:
        directory = seed_dir(out, seed)
        if run_directory.concluded(directory):
            notify(f"seed {seed}: {directory} already finished; kept")
        elif (directory / run_directory.CHECKPOINT).is_file():
            notify(f"seed {seed}: resuming {directory}")
            resumes.append(directory)
        else:
            fresh.append(([*overrides, *one_seed(seed)], directory))
    fault_points.reached("after_plan")
    return GroupPlan(recipe_path, recipe, out, seeds, fresh, resumes, made)


def conclude_seed_group(plan: GroupPlan, started: float) -> tuple[Path, dict[str, Any]]:
    protocol = summarize(plan.recipe_path, plan.recipe, plan.out, plan.seeds, time.perf_counter() - started)
    fault_points.reached("before_protocol")
    run_directory.write_json(plan.out / PROTOCOL, protocol)
    fault_points.reached("after_protocol")
    return plan.out, protocol


def run_seed_group_here(
    plan: GroupPlan, registry: Registry, options: RunOptions, stack: str
) -> tuple[Path, dict[str, Any]]:
    """Train every seed still to train in this process (resumed ones first, then the new ones
    as ``stack`` says: ``runs.stacked``), then write and return OUT/protocol.json."""
    started = time.perf_counter()
    try:
        for directory in plan.resumes:
            resume_run(directory, registry, progress=options.display(), on_epoch=options.on_epoch)
        if plan.fresh:
            # Each seed's wall time counts from its own start.
            group = attrs.evolve(options, group=plan.out.name, started=None)
            run_seeds_here(plan.recipe_path, registry, plan.fresh, group, stack)
    except BaseException:
        plan.abandon_if_empty()
        raise
    return conclude_seed_group(plan, started)


def seed_jobs(plan: GroupPlan) -> list[Job]:
    """Each seed still to train as a `noprop run` job logging to OUT/seed-N.log; a job that is
    requeued resumes its run from the checkpoint."""
    jobs = []
    for overrides, directory in plan.fresh:
        sets = [argument for override in overrides for argument in ("--set", override)]
        jobs.append(
            Job(
                f"{plan.out.name}/{directory.name}",
                [
                    "run",
                    str(plan.recipe_path.absolute()),
                    *sets,
                    "--out",
                    str(directory.absolute()),
                    "--group",
                    plan.out.name,
                ],
                directory.with_suffix(".log").absolute(),
                resume_arguments=["run", "--resume", str(directory.absolute())],
                resumable=(directory / run_directory.CHECKPOINT).absolute(),
            )
        )
    for directory in plan.resumes:
        jobs.append(
            Job(
                f"{plan.out.name}/{directory.name}",
                ["run", "--resume", str(directory.absolute())],
                directory.with_suffix(".log").absolute(),
            )
        )
    return jobs


def launch_seed_groups(
    plans: list[GroupPlan], launcher: Launcher, notify: Callable[[str], None]
) -> list[tuple[Path, dict[str, Any]]]:
    """Every group's seeds as jobs of one launch (one array job on a cluster), then each
    group's OUT/protocol.json."""
    started = time.perf_counter()
    jobs = [job for plan in plans for job in seed_jobs(plan)]
    if jobs:
        notify(f"{len(jobs)} seed run(s) to {launcher.describe()}")
        failed = [outcome for outcome in launcher.launch(jobs, notify) if not outcome.ok]
        if failed:
            more = f" ({len(failed) - 1} more failed)" if len(failed) > 1 else ""
            raise NopropError(f"seed run {failed[0].error()}{more}")
    return [conclude_seed_group(plan, started) for plan in plans]


def summarize(recipe_path: Path, recipe: Recipe, out: Path, seeds: list[int], wall_seconds: float) -> dict[str, Any]:
    runs = []
    for seed in seeds:
        metrics = json.loads((seed_dir(out, seed) / run_directory.METRICS).read_text())
        runs.append(
            {
                "seed": seed,
                "run_dir": seed_dir(out, seed).name,
                "test_accuracy_runs": metrics.get("test_accuracy_runs") or [metrics["test_accuracy"]],
                "train_accuracy_runs": metrics.get("train_accuracy_runs") or [metrics["train_accuracy"]],
                "epochs_completed": metrics["epochs_completed"],
                "wall_seconds": metrics["wall_seconds"],
            }
        )
    test = spread([value for run in runs for value in run["test_accuracy_runs"]])
    train = spread([value for run in runs for value in run["train_accuracy_runs"]])
    reference = paper_reference(recipe)
    paper = reference.values if reference else None
    return {
        "recipe": str(recipe_path),
        "group": out.name,
        "seeds": seeds,
        "inference_runs": recipe.eval.inference_runs,
        "test_accuracy": test.as_dict(),
        "train_accuracy": train.as_dict(),
        "paper": None
        if paper is None or reference is None
        else {
            "test_accuracy": {"mean": paper.test, "standard_error": paper.test_se},
            "train_accuracy": {"mean": paper.train, "standard_error": paper.train_se},
            "test_within_spread": agrees(test, paper.test, paper.test_se),
            "source": reference.source,
        },
        "wall_seconds": wall_seconds,
        "runs": runs,
    }
