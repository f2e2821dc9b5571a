"""`noprop run RECIPE --seeds 0 1 2`: the paper's protocol in one command.

One model per seed, each in its own normal run directory ``OUT/seed-<N>/`` (``--resume``,
``eval`` and ``report`` work on it), then ``OUT/protocol.json``: every seed's accuracies of
its final inference runs (``eval.inference_runs``) pooled into mean ± standard error, next to
the paper's Table 1 value with its standard error where the configuration is the paper's.

In this process, new seeds train together: on a GPU, where the update is fused, stacked into
one computation (``noprop_core.engine.seed_stack``: S seeds × T blocks in one pass;
``--stack-seeds on`` also on a CPU, where it gains nothing), else one after another. With ``--jobs N`` they run N at a time in child processes (each with ``NOPROP_JOBS``
set, so the thread policy divides the CPUs among them). Starting the same command again keeps
finished seeds and resumes interrupted ones, each from its own checkpoint.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from noprop_core.engine import run_directory
from noprop_core.engine.paper import paper_reference
from noprop_core.engine.protocol import agrees, spread
from noprop_core.errors import NopropError
from noprop_core.plugin.registry import Registry
from noprop_core.recipe.schema import Recipe
from noprop_core.speed.threads import JOBS_ENV

PROTOCOL = "protocol.json"


def seed_dir(out: Path, seed: int) -> Path:
    return out / f"seed-{seed}"


def finished(run_dir: Path) -> bool:
    """A run's metrics.json gets its train accuracy only once training has ended."""
    try:
        return json.loads((run_dir / run_directory.METRICS).read_text()).get("train_accuracy") is not None
    except (OSError, json.JSONDecodeError):
        return False


def check_seeds(seeds: list[int]) -> None:
    duplicates = sorted({s for s in seeds if seeds.count(s) > 1})
    if duplicates:
        raise NopropError(f"--seeds: seed {', '.join(map(str, duplicates))} given twice; each seed trains one model")
    negative = [s for s in seeds if not 0 <= s < 2**63]
    if negative:
        raise NopropError(f"--seeds: expected whole numbers from 0 to 2**63 - 1, got {negative[0]}")


FreshRuns = list[tuple[list[str], Path]]  # each new seed's overrides and run directory


def run_seed_group(
    recipe_path: Path,
    recipe: Recipe,
    registry: Registry,
    *,
    seeds: list[int],
    overrides: list[str],
    out: Path | None,
    train_fresh: Callable[[FreshRuns, str], None],
    resume_one: Callable[[Path], None],
    notify: Callable[[str], None],
) -> tuple[Path, dict[str, Any]]:
    """Train every seed (or keep / resume it), then write and return OUT/protocol.json."""
    check_seeds(seeds)
    out = out or run_directory.default_run_dir(recipe_path)
    if out.exists() and not out.is_dir():
        raise NopropError(f"--out {out}: exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    fresh: FreshRuns = []
    for seed in seeds:
        directory = seed_dir(out, seed)
        if finished(directory):
            notify(f"seed {seed}: {directory} already finished; kept")
        elif (directory / run_directory.CHECKPOINT).is_file():
            notify(f"seed {seed}: resuming {directory}")
            resume_one(directory)
        else:
            fresh.append(([*overrides, "seeds=[]", f"seed={seed}"], directory))
    if fresh:
        train_fresh(fresh, out.name)
    protocol = summarize(recipe_path, recipe, out, seeds, time.perf_counter() - started)
    run_directory.write_json(out / PROTOCOL, protocol)
    return out, protocol


def child_process_trainer(recipe_path: Path, jobs: int) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """train_fresh / resume_one that run `noprop run` in ``jobs`` child processes at a time,
    each logging to OUT/seed-N.log."""
    environment = {**os.environ, JOBS_ENV: str(jobs)}

    def launch(arguments: list[str], log: Path) -> None:
        with log.open("w") as stream:
            result = subprocess.run([sys.executable, "-m", "noprop_core.cli", "run", *arguments], env=environment,
                                    stdout=stream, stderr=subprocess.STDOUT, check=False)  # fmt: skip
        if result.returncode != 0:
            last = [line for line in log.read_text().splitlines() if line.strip()][-1:] or ["(no output)"]
            raise NopropError(f"{log.with_suffix('')}: the seed's run failed ({last[0]}); log: {log}")

    def train_one(overrides: list[str], directory: Path, group: str) -> None:
        sets = [argument for override in overrides for argument in ("--set", override)]
        launch([str(recipe_path), *sets, "--out", str(directory), "--group", group], directory.with_suffix(".log"))

    def train_fresh(runs: FreshRuns, group: str) -> None:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            for future in [pool.submit(train_one, overrides, directory, group) for overrides, directory in runs]:
                future.result()

    def resume_one(directory: Path) -> None:
        launch(["--resume", str(directory)], directory.with_suffix(".log"))

    return train_fresh, resume_one


def summarize(recipe_path: Path, recipe: Recipe, out: Path, seeds: list[int],
              wall_seconds: float) -> dict[str, Any]:  # fmt: skip
    runs = []
    for seed in seeds:
        metrics = json.loads((seed_dir(out, seed) / run_directory.METRICS).read_text())
        runs.append({
            "seed": seed,
            "run_dir": seed_dir(out, seed).name,
            "test_accuracy_runs": metrics.get("test_accuracy_runs") or [metrics["test_accuracy"]],
            "train_accuracy_runs": metrics.get("train_accuracy_runs") or [metrics["train_accuracy"]],
            "epochs_completed": metrics["epochs_completed"],
            "wall_seconds": metrics["wall_seconds"],
        })  # fmt: skip
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
        "paper": None if paper is None or reference is None else {
            "test_accuracy": {"mean": paper.test, "standard_error": paper.test_se},
            "train_accuracy": {"mean": paper.train, "standard_error": paper.train_se},
            "test_within_spread": agrees(test, paper.test, paper.test_se),
            "source": reference.source,
        },
        "wall_seconds": wall_seconds,
        "runs": runs,
    }  # fmt: skip
