"""`noprop sweep`: a hyper-parameter search over a recipe's keys, with Optuna.

The study lives in an Optuna storage (by default the SQLite file ``OUT/study.db``; any
SQLAlchemy URL, or ``journal:PATH`` for Optuna's journal file on a shared file system), so any
number of workers — this process started again, others beside it — share it. Each trial is an
ordinary run folder, ``OUT/trial-<n>/`` (a seed group's folder when the sweep trains several
seeds per trial): ``eval``, ``predict`` and ``report`` work on it.

Faults: a trial whose run fails is recorded as failed with its one-line error, and the sweep
goes on. A worker killed mid-trial leaves its trial RUNNING in the study; the next worker on
the same machine that finds the trial's process gone marks it failed ("interrupted"), and the
trial's parameters are tried again, its run folder resumed from its checkpoint — so no finished
trial is lost or repeated. (A trial left RUNNING by a dead worker of another machine stays so;
``noprop report OUT`` shows it.) A worker stopped by a signal (Ctrl-C, a preemption) queues its
trial again itself before it exits.

With a launcher (the sweep file's ``[launcher]`` or ``--launcher``) this process starts
``workers`` jobs of ``noprop sweep SWEEP --out OUT --worker`` on the study — child processes or
a Slurm array job — and writes the summary once they are done.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    import optuna

from noprop_core.engine import run_directory
from noprop_core.engine.api import Run, SeedGroup, resume, train
from noprop_core.engine.training.experiment import load_splits
from noprop_core.errors import NopropError, RunInterrupted
from noprop_core.plugin.launcher import Job, Launcher
from noprop_core.plugin.registry import Registry
from noprop_core.recipe.launcher import build_launcher, launcher_config
from noprop_core.recipe.loading import dump_recipe, load_recipe
from noprop_core.recipe.shipped import resolve_recipe_path
from noprop_core.recipe.sweep import Parameter, Sweep, load_sweep

SWEEP_COPY = "sweep.toml"  # the sweep file as run, in OUT: what `noprop report OUT` recognises
SUMMARY = "sweep.json"
BEST = "best.toml"
INTERRUPTED = "interrupted"
SURPLUS = "surplus"


@attrs.frozen
class SweepResult:
    out: Path
    summary: dict[str, Any]


def recipe_of(sweep: Sweep, sweep_path: Path) -> Path:
    """The sweep's recipe: a path relative to the sweep file, one relative to here, or a shipped name."""
    beside = sweep_path.parent / sweep.recipe
    return beside if beside.is_file() else resolve_recipe_path(Path(sweep.recipe))


def toml_literal(value: Any) -> str:
    return json.dumps(value)  # numbers, strings and booleans: JSON and TOML write them alike


def trial_overrides(sweep: Sweep, params: dict[str, Any]) -> list[str]:
    return [*sweep.set, *(f"{key}={toml_literal(value)}" for key, value in params.items())]


def check_sweep(sweep: Sweep, sweep_path: Path, recipe_path: Path, registry: Registry) -> None:
    """Every key of the space is a key of the recipe (tried with a value from its range), and the
    objective exists for it: validation accuracy needs a held-out split."""
    sample = {key: p.some_value() for key, p in sweep.space.items()}
    try:
        recipe = load_recipe(recipe_path, registry, trial_overrides(sweep, sample))
    except NopropError as exc:
        raise NopropError(
            f"{sweep_path}: the space does not fit recipe {recipe_path}: {exc.lines()[0].split(': ', 1)[-1]}"
        ) from None
    if sweep.objective == "validation_accuracy":
        splits, _ = load_splits(recipe, registry, stand_in=False, notify=lambda text: None)
        if not splits.has_validation:
            raise NopropError(
                f"{sweep_path}: objective: validation_accuracy needs a validation split, and "
                f"[data] of {recipe_path.name} holds none (set data.validation = N in set = [...])"
            )


def storage_for(sweep: Sweep, out: Path) -> Any:
    from optuna.storages import JournalStorage, RDBStorage
    from optuna.storages.journal import JournalFileBackend

    url = sweep.storage or f"sqlite:///{(out / 'study.db').absolute()}"
    if url.startswith("journal:"):
        try:
            return JournalStorage(JournalFileBackend(url.removeprefix("journal:")))
        except OSError as exc:
            raise NopropError(f"storage {url}: cannot be opened ({exc.strerror})") from None
    # SQLite: a writer waits up to a minute for another worker's transaction instead of failing.
    options = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    try:
        return RDBStorage(url, engine_kwargs=options)
    except Exception as exc:  # noqa: BLE001 - SQLAlchemy's many errors: a locked or unreadable file
        raise NopropError(
            f"storage {url}: cannot be opened ({type(exc).__name__}: {' '.join(str(exc).split())[:200]})"
        ) from None


def open_study(sweep: Sweep, sweep_path: Path, out: Path) -> optuna.Study:
    """The sweep's study, created by the first worker and loaded by the others. Workers started
    together race to create the storage's tables and the study: the losers try again."""
    import optuna

    for attempt in range(6):
        try:
            return optuna.create_study(
                study_name=sweep_path.stem,
                storage=storage_for(sweep, out),
                direction="maximize",
                sampler=sampler_for(sweep),
                pruner=pruner_for(sweep),
                load_if_exists=True,
            )
        except NopropError:
            if attempt == 5 or not (out / "study.db").is_file():
                raise
        except Exception:  # noqa: BLE001 - another worker's half-made study (a unique key taken)
            if attempt == 5:
                raise
        time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")


def sampler_for(sweep: Sweep, trial_number: int = 0) -> optuna.samplers.BaseSampler:
    """The sampler that draws trial ``trial_number``'s parameters, seeded by it: workers sharing
    the study draw different values (one seed for all drew the same ones in every worker), and a
    sweep run again draws what it drew before."""
    import optuna

    seed = sweep.sampler_seed + trial_number
    if sweep.method in ("grid", "random"):  # a grid's points are queued in the study (``queue_grid``)
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def ask(study: optuna.Study, sweep: Sweep) -> tuple[optuna.Trial, dict[str, Any]]:
    """The study's next trial and its parameters. Values are drawn when suggested, so the
    sampler seeded by the trial's number, set after the ask, is the one that draws them."""
    trial = study.ask()
    study.sampler = sampler_for(sweep, trial.number)
    return trial, {key: suggest(trial, key, parameter) for key, parameter in sweep.space.items()}


def queue_grid(study: optuna.Study, sweep: Sweep) -> None:
    """Every point of the grid, queued once (Optuna's GridSampler stops a study only inside
    ``Study.optimize``; queued trials work with ask and tell, and for several workers)."""
    keys = list(sweep.space)
    for values in itertools.product(*(sweep.space[key].grid_values() or [] for key in keys)):
        study.enqueue_trial(dict(zip(keys, values)), skip_if_exists=True)


def pruner_for(sweep: Sweep) -> optuna.pruners.BasePruner:
    import optuna

    return {
        "none": optuna.pruners.NopPruner,
        "median": optuna.pruners.MedianPruner,
        "successive_halving": optuna.pruners.SuccessiveHalvingPruner,
    }[sweep.pruner]()


def suggest(trial: optuna.Trial, key: str, parameter: Parameter) -> Any:
    if parameter.type == "categorical":
        assert parameter.choices is not None  # the sweep schema requires them
        return trial.suggest_categorical(key, parameter.choices)
    assert parameter.low is not None and parameter.high is not None  # the sweep schema requires them
    if parameter.type == "int":
        return trial.suggest_int(key, int(parameter.low), int(parameter.high), step=int(parameter.step or 1))
    return trial.suggest_float(
        key,
        parameter.low,
        parameter.high,
        log=parameter.type == "log_float",
        step=parameter.step if parameter.type == "float" else None,
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def queue_again(
    study: optuna.Study, trial: optuna.trial.FrozenTrial | optuna.Trial, params: dict[str, Any], folder: str
) -> None:
    """A trial stopped before its end: failed as interrupted (not counted), its parameters queued
    to be tried again in the same folder, which resumes from its checkpoint."""
    import optuna

    study.set_user_attr(INTERRUPTED, sorted({*study.user_attrs.get(INTERRUPTED, []), trial.number}))
    study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
    study.enqueue_trial(params, user_attrs={"folder": folder})


def recover_interrupted(study: optuna.Study, notify: Callable[[str], None]) -> None:
    """RUNNING trials of this machine whose process is gone (killed): queued again."""
    import optuna

    host = socket.gethostname()
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        pid = int(trial.user_attrs.get("pid", -1))
        if trial.user_attrs.get("host") != host or pid == os.getpid() or _alive(pid):
            continue
        folder = trial.user_attrs.get("folder", f"trial-{trial.number}")
        queue_again(study, trial, trial.params, folder)
        notify(f"trial {trial.number}: its worker (pid {pid}) is gone; its parameters are queued again ({folder})")


def counted_numbers(study: optuna.Study) -> list[int]:
    """Trials that count against the budget, by number: those started, but not those interrupted
    and queued again, nor a worker's surplus ask."""
    import optuna

    interrupted = set(study.user_attrs.get(INTERRUPTED, []))
    return sorted(
        trial.number
        for trial in study.get_trials(deepcopy=False)
        if trial.number not in interrupted
        and trial.state != optuna.trial.TrialState.WAITING
        and not trial.user_attrs.get(SURPLUS)
    )


def counted(study: optuna.Study) -> int:
    return len(counted_numbers(study))


def surplus(study: optuna.Study, trial: optuna.Trial, budget: int) -> bool:
    """Workers that ask at once can start more trials than the budget; trial numbers are handed
    out in order, so the ones past the budget give way (and are not counted)."""
    return counted_numbers(study).index(trial.number) >= budget


def run_sweep(
    sweep_path: Path,
    registry: Registry,
    *,
    out: Path | None = None,
    notify: Callable[[str], None] = lambda text: None,
    progress: Any = True,
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
    if worker:
        launcher = None
    elif launcher is None and sweep.launcher is not None:
        launcher = build_launcher(launcher_config(sweep.launcher, registry, str(sweep_path)), registry)
    out = out or Path("runs") / f"sweep-{sweep_path.stem}"
    out.mkdir(parents=True, exist_ok=True)
    copy = out / SWEEP_COPY
    if copy.is_file() and copy.read_text() != sweep_path.read_text():
        raise NopropError(
            f"--out {out}: holds another sweep ({copy} differs from {sweep_path}); "
            "continue it with its own file or choose another --out"
        )
    shutil.copyfile(sweep_path, copy)
    budget = sweep.trials
    if sweep.method == "grid":
        budget = min(budget, _grid_size(sweep))
    study = open_study(sweep, sweep_path, out)
    if sweep.method == "grid":
        queue_grid(study, sweep)
    recover_interrupted(study, notify)
    started = time.perf_counter()
    if launcher is not None:
        _launch_workers(launcher, sweep_path, out, notify)
    while launcher is None and counted(study) < budget:
        trial, params = ask(study, sweep)
        if surplus(study, trial, budget):
            trial.set_user_attr(SURPLUS, True)
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            break
        trial.set_user_attr("host", socket.gethostname())
        trial.set_user_attr("pid", os.getpid())
        folder = out / trial.user_attrs.get("folder", f"trial-{trial.number}")  # a queued retry keeps its folder
        trial.set_user_attr("folder", folder.name)
        notify(f"trial {trial.number}: {', '.join(f'{k} = {v}' for k, v in params.items())}")
        _run_trial(study, trial, sweep, recipe_path, registry, trial_overrides(sweep, params), folder, notify, progress)
    if worker:
        return SweepResult(out, {})
    summary = summarize(study, sweep, out, time.perf_counter() - started)
    run_directory.write_json(out / SUMMARY, summary)
    best = summary.get("best")
    if best is not None:
        folder = out / best["run_dir"]
        recipe = load_recipe(
            folder / run_directory.RECIPE
            if len(sweep.seeds) == 1
            else folder / f"seed-{sweep.seeds[0]}" / run_directory.RECIPE,
            registry,
        )
        header = (
            f"# noprop run {out / BEST}\n# the best trial of {sweep_path.name}: trial {best['number']} "
            f"({best['run_dir']}), {sweep.objective} {best['objective']:.2f}"
        )
        run_directory.write_text(out / BEST, dump_recipe(recipe, registry, header=header))
    return SweepResult(out, summary)


def _launch_workers(launcher: Launcher, sweep_path: Path, out: Path, notify: Callable[[str], None]) -> None:
    """``workers`` `noprop sweep --worker` jobs on one study; each runs trials until the budget
    is used. A worker that fails is reported; the study keeps what it finished."""
    workers = launcher.config.workers
    jobs = [
        Job(
            f"worker-{index}",
            ["sweep", str(sweep_path.absolute()), "--out", str(out.absolute()), "--worker"],
            (out / f"worker-{index}.log").absolute(),
        )
        for index in range(workers)
    ]
    notify(f"{workers} sweep worker(s) to {launcher.describe()}; logs: {out}/worker-N.log")
    for outcome in launcher.launch(jobs, notify):
        if not outcome.ok:
            notify(f"sweep {outcome.error()}")


def _grid_size(sweep: Sweep) -> int:
    size = 1
    for parameter in sweep.space.values():
        size *= len(parameter.grid_values() or [])
    return size


def _run_trial(
    study: optuna.Study,
    trial: optuna.Trial,
    sweep: Sweep,
    recipe_path: Path,
    registry: Registry,
    overrides: list[str],
    folder: Path,
    notify: Callable[[str], None],
    progress: bool,
) -> None:
    import optuna

    pruned = []

    def on_epoch(record: dict[str, Any]) -> bool:
        value = record.get(sweep.objective)
        if value is None or sweep.pruner == "none":
            return False
        trial.report(value, record["epoch"])
        if trial.should_prune():
            pruned.append(record["epoch"])
            return True
        return False

    started = time.perf_counter()
    try:
        result = _train_or_resume(recipe_path, registry, overrides, folder, sweep.seeds, on_epoch, progress)
    except RunInterrupted:
        if not pruned:  # a signal (Ctrl-C, a preemption): the next worker resumes this trial
            queue_again(study, trial, trial.params, folder.name)
            notify(f"trial {trial.number}: stopped with a checkpoint; its parameters are queued again ({folder.name})")
            raise
        trial.set_user_attr("wall_seconds", time.perf_counter() - started)
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        notify(f"trial {trial.number}: pruned after epoch {pruned[0]}")
        return
    except Exception as exc:  # noqa: BLE001 - one trial's failure, recorded; the sweep goes on
        line = exc.lines()[0] if isinstance(exc, NopropError) else f"internal error: {type(exc).__name__}: {exc}"
        trial.set_user_attr("error", " ".join(line.split())[:300])
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        notify(f"trial {trial.number}: failed: {line}")
        return
    runs = result.runs if isinstance(result, SeedGroup) else [result]
    values = [run.metrics.get(sweep.objective) for run in runs]
    trial.set_user_attr("wall_seconds", time.perf_counter() - started)
    if any(value is None for value in values):
        trial.set_user_attr("error", f"metrics.json has no {sweep.objective}")
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        raise NopropError(f"{folder}: objective {sweep.objective} missing from metrics.json")
    numbers = [float(v) for v in values if v is not None]
    value = sum(numbers) / len(numbers)
    study.tell(trial, value)
    notify(f"trial {trial.number}: {sweep.objective} {value:.2f}")


def _train_or_resume(
    recipe_path: Path,
    registry: Registry,
    overrides: list[str],
    folder: Path,
    seeds: list[int],
    on_epoch: Callable[[dict[str, Any]], bool] | None,
    progress: bool,
) -> Run | SeedGroup:
    if len(seeds) > 1:
        return train(
            recipe_path,
            overrides=overrides,
            out=folder,
            seeds=seeds,
            registry=registry,
            progress=progress,
            on_epoch=on_epoch,
        )  # (the seed group's name, the folder's, groups it in Aim)
    if (folder / run_directory.CHECKPOINT).is_file():  # an interrupted trial, tried again
        return resume(folder, registry=registry, progress=progress, on_epoch=on_epoch)
    if folder.exists():  # started, but gone before its first checkpoint
        shutil.rmtree(folder)
    return train(
        recipe_path,
        overrides=[*overrides, "seeds=[]", f"seed={seeds[0]}"],
        out=folder,
        registry=registry,
        progress=progress,
        on_epoch=on_epoch,
        group=folder.parent.name,
    )  # (Aim: the sweep's name)


def summarize(study: optuna.Study, sweep: Sweep, out: Path, wall_seconds: float) -> dict[str, Any]:
    import optuna

    rows: list[dict[str, Any]] = []
    interrupted = set(study.user_attrs.get(INTERRUPTED, []))
    for trial in study.get_trials(deepcopy=False):
        if trial.number in interrupted or trial.user_attrs.get(SURPLUS):
            continue
        rows.append(
            {
                "number": trial.number,
                "state": trial.state.name.lower(),
                "params": trial.params,
                "objective": trial.value,
                "run_dir": trial.user_attrs.get("folder"),
                "wall_seconds": trial.user_attrs.get("wall_seconds"),
                "error": trial.user_attrs.get("error"),
            }
        )
    complete = [row for row in rows if row["state"] == "complete"]
    best = max(complete, key=lambda row: row["objective"]) if complete else None
    if best is not None:
        folder = out / best["run_dir"]
        metrics_dirs = [folder] if len(sweep.seeds) == 1 else [folder / f"seed-{seed}" for seed in sweep.seeds]
        tests = [json.loads((d / run_directory.METRICS).read_text())["test_accuracy"] for d in metrics_dirs]
        best = {**best, "test_accuracy": sum(tests) / len(tests)}  # measured once, by the run's final evaluation
    return {
        "sweep": str(out / SWEEP_COPY),
        "objective": sweep.objective,
        "method": sweep.method,
        "log_scale": sorted(key for key, parameter in sweep.space.items() if parameter.type == "log_float"),
        "trials": rows,
        "best": best,
        "wall_seconds": wall_seconds,
        "states": {
            state.name.lower(): sum(1 for r in rows if r["state"] == state.name.lower())
            for state in optuna.trial.TrialState
        },
    }
