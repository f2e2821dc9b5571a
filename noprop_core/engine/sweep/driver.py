"""`noprop sweep`: a hyper-parameter search over a recipe's keys, with Optuna.

The study lives in an Optuna storage (by default the SQLite file ``OUT/study.db``; any
SQLAlchemy URL, or ``journal:PATH`` for Optuna's journal file on a shared file system), so any
number of workers — this process started again, others beside it — share it. Each trial is an
ordinary run folder, ``OUT/trial-<n>/`` (a seed group's folder when the sweep trains several
seeds per trial): ``eval``, ``predict`` and ``report`` work on it.

Faults: a trial whose run fails is recorded as failed with its one-line error, and the sweep
goes on. A worker killed at any instant leaves its trial RUNNING in the study; the next worker
finds its owner dead (``sweep.study``) and queues its parameters again, its run folder resumed
from its checkpoint — no finished trial is lost or repeated. A worker stopped by a signal
(Ctrl-C, a preemption) queues its trial again itself before it exits. A sweep that ends with
trials still running elsewhere says so and exits non-zero.

With a launcher (the sweep file's ``[launcher]`` or ``--launcher``) this process starts
``workers`` jobs of ``noprop sweep SWEEP --out OUT --worker`` on the study — child processes or
a Slurm array job — and writes the summary once they are done.
"""

from __future__ import annotations

import json
import shutil
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from noprop_core.engine import run_directory
from noprop_core.engine.sweep.study import (
    INTERRUPTED,
    SURPLUS,
    ask,
    counted,
    open_study,
    queue_grid,
    recover_interrupted,
    surplus,
)
from noprop_core.engine.sweep.trial import TrialRun, run_folders, run_trial
from noprop_core.engine.training.experiment import load_splits
from noprop_core.engine.training.progress import Progress
from noprop_core.errors import NopropError
from noprop_core.plugin.launcher import Job, Launcher
from noprop_core.plugin.registry import Registry
from noprop_core.recipe.launcher import build_launcher, launcher_config
from noprop_core.recipe.loading import dump_recipe, load_recipe
from noprop_core.recipe.shipped import resolve_recipe_path
from noprop_core.recipe.sweep import Sweep, load_sweep

if TYPE_CHECKING:
    import optuna

SWEEP_COPY = "sweep.toml"  # the sweep file as run, in OUT: what `noprop report OUT` recognises
SUMMARY = "sweep.json"
BEST = "best.toml"


@attrs.frozen
class SweepResult:
    out: Path
    summary: dict[str, Any]


def recipe_of(sweep: Sweep, sweep_path: Path) -> Path:
    """The sweep's recipe: a path relative to the sweep file, one relative to here, or a shipped name."""
    beside = sweep_path.parent / sweep.recipe
    return beside if beside.is_file() else resolve_recipe_path(Path(sweep.recipe))


def trial_overrides(sweep: Sweep, params: dict[str, Any]) -> list[str]:
    # Numbers, strings and booleans: JSON and TOML write them alike.
    return [*sweep.set, *(f"{key}={json.dumps(value)}" for key, value in params.items())]


def check_sweep(sweep: Sweep, sweep_path: Path, recipe_path: Path, registry: Registry) -> None:
    """Every key of the space is a key of the recipe (tried with a value from its range), and the
    objective exists for it: validation accuracy needs a held-out split."""
    sample = {key: p.some_value() for key, p in sweep.space.items()}
    try:
        recipe = load_recipe(recipe_path, registry, trial_overrides(sweep, sample))
    except NopropError as exc:
        reason = exc.lines()[0].split(": ", 1)[-1]
        raise NopropError(f"{sweep_path}: the space does not fit recipe {recipe_path}: {reason}") from None
    if sweep.objective == "validation_accuracy":
        splits, _ = load_splits(recipe, registry, stand_in=False, notify=lambda text: None)
        if not splits.has_validation:
            raise NopropError(
                f"{sweep_path}: objective: validation_accuracy needs a validation split, and [data] of "
                f"{recipe_path.name} holds none (set data.validation = N in set = [...])"
            )


def refuse_trial_outside_its_sweep(run_dir: Path) -> None:
    """A sweep's trial (OUT/trial-N, or a seed of one) trained further on its own would leave its
    study with the old result: one line that says how to do either on purpose."""
    for out in (run_dir.parent, run_dir.parent.parent):
        if (out / SWEEP_COPY).is_file():
            copy = Path("runs") / run_dir.name
            raise NopropError(
                f"--resume {run_dir}: a trial of the sweep in {out}, whose study records its result; continue the "
                f"sweep with `noprop sweep {out / SWEEP_COPY} --out {out}`, or train this trial further on its own "
                f"in a copy: `cp -r {run_dir} {copy} && noprop run --resume {copy} --set train.epochs=N`"
            )


def sweep_folder(sweep_path: Path, out: Path | None) -> Path:
    """OUT made (or continued) for this sweep, with the sweep file copied in."""
    out = out or Path("runs") / f"sweep-{sweep_path.stem}"
    if out.exists() and not out.is_dir():
        raise NopropError(f"--out {out}: exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NopropError(f"--out {out}: cannot write there ({exc.strerror})") from None
    copy = out / SWEEP_COPY
    if copy.is_file() and copy.read_text() != sweep_path.read_text():
        raise NopropError(
            f"--out {out}: holds another sweep ({copy} differs from {sweep_path}); "
            "continue it with its own file or choose another --out"
        )
    shutil.copyfile(sweep_path, copy)
    return out


def run_sweep(
    sweep_path: Path,
    registry: Registry,
    *,
    out: Path | None = None,
    notify: Callable[[str], None] = lambda text: None,
    progress: Progress | Callable[[], Progress] | bool | None = None,
    launcher: Launcher | None = None,
    worker: bool = False,
) -> SweepResult:
    """Run the sweep to its trial budget, then write OUT/sweep.json and OUT/best.toml. Trials run
    in this process, or in ``launcher.config.workers`` workers (``launcher``, else the sweep
    file's [launcher]) sharing the study; ``worker``: be one such worker (no summary)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sweep = load_sweep(sweep_path)
    recipe_path = recipe_of(sweep, sweep_path)
    check_sweep(sweep, sweep_path, recipe_path, registry)
    if not worker and launcher is None and sweep.launcher is not None:
        launcher = build_launcher(launcher_config(sweep.launcher, registry, str(sweep_path)), registry)
    out = sweep_folder(sweep_path, out)
    study = open_study(sweep, sweep_path, out)
    if sweep.method == "grid":
        queue_grid(study, sweep)
    started = time.perf_counter()
    if launcher is not None and not worker:
        launch_workers(launcher, sweep_path, out, notify)
    # Here, or after the workers: every trial to the end (a dead worker's trials, too).
    base = TrialRun(
        sweep=sweep,
        recipe_path=recipe_path,
        registry=registry,
        overrides=[],
        folder=out,
        notify=notify,
        progress=progress,
    )
    run_until_done(study, base, budget(sweep))
    if worker:
        return SweepResult(out, {})
    return conclude_sweep(study, sweep, sweep_path, out, registry, time.perf_counter() - started, notify)


def budget(sweep: Sweep) -> int:
    """Trials to run: the sweep's number, at most the grid's size for a grid."""
    if sweep.method != "grid":
        return sweep.trials
    size = 1
    for parameter in sweep.space.values():
        size *= len(parameter.grid_values() or [])
    return min(sweep.trials, size)


POLL_SECONDS = 5.0  # how often a worker looks again at trials another live worker here runs


def run_until_done(study: optuna.Study, base: TrialRun, trials: int) -> None:
    """Trials in this process until the study has ``trials`` counted ones and none runs in a live
    worker of this host: a dead worker's trial is queued again and run here. Trials running on
    other hosts are left to them (``conclude_sweep`` names them)."""
    host, waiting_for = socket.gethostname(), None
    while True:
        recover_interrupted(study, base.folder, base.notify)
        run_trials(study, base, trials)
        running = recover_interrupted(study, base.folder, base.notify)
        if not running or any(owner.get("host") != host for owner in running.values()):
            return
        if waiting_for != sorted(running):
            waiting_for = sorted(running)
            base.notify(f"waiting for trial(s) {', '.join(map(str, waiting_for))}, run by other workers here")
        time.sleep(POLL_SECONDS)


def run_trials(study: optuna.Study, base: TrialRun, trials: int) -> None:
    """Trials in this process until the study has ``trials`` counted ones (its own and other
    workers'); ``base`` holds what every trial shares (its folder: the sweep's)."""
    import optuna

    out, sweep = base.folder, base.sweep
    while counted(study) < trials:
        trial, params = ask(study, sweep, out)
        if surplus(study, trial, trials):
            trial.set_user_attr(SURPLUS, True)
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            break
        folder = out / trial.user_attrs.get("folder", f"trial-{trial.number}")  # a queued retry keeps its folder
        trial.set_user_attr("folder", folder.name)
        base.notify(f"trial {trial.number}: {', '.join(f'{k} = {v}' for k, v in params.items())}")
        overrides = trial_overrides(sweep, params)
        run_trial(study, trial, attrs.evolve(base, overrides=overrides, folder=folder))


def launch_workers(launcher: Launcher, sweep_path: Path, out: Path, notify: Callable[[str], None]) -> None:
    """``workers`` `noprop sweep --worker` jobs on one study; each runs trials until the budget
    is used. A worker that fails is reported; the study keeps what it finished."""
    workers = launcher.config.workers
    arguments = ["sweep", str(sweep_path.absolute()), "--out", str(out.absolute()), "--worker"]
    jobs = [Job(f"worker-{index}", arguments, (out / f"worker-{index}.log").absolute()) for index in range(workers)]
    notify(f"{workers} sweep worker(s) to {launcher.describe()}; logs: {out}/worker-N.log")
    for outcome in launcher.launch(jobs, notify):
        if not outcome.ok:
            notify(f"sweep {outcome.error()}")


def conclude_sweep(
    study: optuna.Study,
    sweep: Sweep,
    sweep_path: Path,
    out: Path,
    registry: Registry,
    wall: float,
    notify: Callable[[str], None],
) -> SweepResult:
    """OUT/sweep.json and OUT/best.toml; a one-line error when trials are still running (left by
    workers this process cannot see die), after writing what there is."""
    summary = summarize(study, sweep, out, wall)
    run_directory.write_json(out / SUMMARY, summary)
    best = summary.get("best")
    if best is not None:
        write_best(sweep, sweep_path, out, best, registry)
    running = [row["number"] for row in summary["trials"] if row["state"] == "running"]
    if running:
        raise NopropError(
            f"{out}: trial(s) {', '.join(map(str, running))} still running (a worker elsewhere, or one that "
            f"died on another host); {len(summary['trials']) - len(running)} of {budget(sweep)} finished. Run the "
            "same command again once they end"
        )
    return SweepResult(out, summary)


def write_best(sweep: Sweep, sweep_path: Path, out: Path, best: dict[str, Any], registry: Registry) -> None:
    """OUT/best.toml: the best trial's resolved recipe, a recipe of its own."""
    folder = run_folders(out / best["run_dir"], sweep.seeds)[0]
    recipe = load_recipe(folder / run_directory.RECIPE, registry)
    header = (
        f"# noprop run {out / BEST}\n# the best trial of {sweep_path.name}: trial {best['number']} "
        f"({best['run_dir']}), {sweep.objective} {best['objective']:.2f}"
    )
    run_directory.write_text(out / BEST, dump_recipe(recipe, registry, header=header))


def summarize(study: optuna.Study, sweep: Sweep, out: Path, wall_seconds: float) -> dict[str, Any]:
    """sweep.json: every counted trial, the best one (with its test accuracy), the count by state."""
    import optuna

    rows = trial_rows(study)
    complete = [row for row in rows if row["state"] == "complete"]
    best = max(complete, key=lambda row: row["objective"]) if complete else None
    if best is not None:
        folders = run_folders(out / best["run_dir"], sweep.seeds)
        tests = [json.loads((d / run_directory.METRICS).read_text())["test_accuracy"] for d in folders]
        best = {**best, "test_accuracy": sum(tests) / len(tests)}  # measured once, by the run's final evaluation
    states = {
        state.name.lower(): sum(1 for r in rows if r["state"] == state.name.lower())
        for state in optuna.trial.TrialState
    }
    return {
        "sweep": str(out / SWEEP_COPY),
        "objective": sweep.objective,
        "method": sweep.method,
        "log_scale": sorted(key for key, parameter in sweep.space.items() if parameter.type == "log_float"),
        "trials": rows,
        "best": best,
        "wall_seconds": wall_seconds,
        "states": states,
    }


def trial_rows(study: optuna.Study) -> list[dict[str, Any]]:
    """One row per counted trial (not those queued again, nor surplus asks)."""
    interrupted = set(study.user_attrs.get(INTERRUPTED, []))
    return [
        {
            "number": trial.number,
            "state": trial.state.name.lower(),
            "params": trial.params,
            "objective": trial.value,
            "run_dir": trial.user_attrs.get("folder"),
            "wall_seconds": trial.user_attrs.get("wall_seconds"),
            "error": trial.user_attrs.get("error"),
        }
        for trial in study.get_trials(deepcopy=False)
        if trial.number not in interrupted and not trial.user_attrs.get(SURPLUS)
    ]
