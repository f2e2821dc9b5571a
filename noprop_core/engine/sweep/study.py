"""The sweep's Optuna study: its storage, sampler and pruner, asking for trials, and who owns a
running trial.

Ownership: a trial is asked for and its owner (host, pid and the process's start time)
recorded while the worker holds OUT/.ask.lock (``flock``: the kernel releases it when the
process dies, however it dies). So a RUNNING trial with no owner, seen under that lock, belongs
to a worker that died between the two steps; a trial whose owner on this host is gone (no such
process, or another process now holds the pid) is dead too. Both are queued again; a live
worker's trial never is. Trials owned on another host are left to that host's workers.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from noprop_core.engine import fault_points
from noprop_core.errors import NopropError
from noprop_core.recipe.sweep import Parameter, Sweep

if TYPE_CHECKING:
    import optuna

INTERRUPTED = "interrupted"  # study attribute: numbers of trials stopped and queued again
SURPLUS = "surplus"  # trial attribute: asked past the budget by workers asking at once
OWNER = "owner"  # trial attribute: {"host", "pid", "started"} of the worker running it
ASK_LOCK = ".ask.lock"


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
        detail = " ".join(str(exc).split())[:200]
        raise NopropError(f"storage {url}: cannot be opened ({type(exc).__name__}: {detail})") from None


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


def pruner_for(sweep: Sweep) -> optuna.pruners.BasePruner:
    import optuna

    pruners = {
        "none": optuna.pruners.NopPruner,
        "median": optuna.pruners.MedianPruner,
        "successive_halving": optuna.pruners.SuccessiveHalvingPruner,
    }
    return pruners[sweep.pruner]()


@contextlib.contextmanager
def ask_lock(out: Path) -> Iterator[None]:
    """OUT/.ask.lock held: no other worker is between asking for a trial and recording its owner."""
    with open(out / ASK_LOCK, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def this_process() -> dict[str, Any]:
    """The owner record of this worker: a pid alone could be a later process's."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "started": psutil.Process().create_time()}


def owner_alive(owner: dict[str, Any]) -> bool:
    """Whether the process an owner record names (on this host) still runs."""
    try:
        return bool(psutil.Process(int(owner["pid"])).create_time() == owner["started"])
    except (psutil.NoSuchProcess, psutil.ZombieProcess, KeyError, TypeError, ValueError):
        return False


def ask(study: optuna.Study, sweep: Sweep, out: Path) -> tuple[optuna.Trial, dict[str, Any]]:
    """The study's next trial, owned by this process, and its parameters. Values are drawn when
    suggested, so the sampler seeded by the trial's number, set after the ask, draws them."""
    with ask_lock(out):
        trial = study.ask()
        fault_points.reached("after_ask")
        trial.set_user_attr(OWNER, this_process())
    fault_points.reached("after_owner")
    study.sampler = sampler_for(sweep, trial.number)
    return trial, {key: suggest(trial, key, parameter) for key, parameter in sweep.space.items()}


def queue_grid(study: optuna.Study, sweep: Sweep) -> None:
    """Every point of the grid, queued once (Optuna's GridSampler stops a study only inside
    ``Study.optimize``; queued trials work with ask and tell, and for several workers)."""
    keys = list(sweep.space)
    for values in itertools.product(*(sweep.space[key].grid_values() or [] for key in keys)):
        study.enqueue_trial(dict(zip(keys, values)), skip_if_exists=True)


def suggest(trial: optuna.Trial, key: str, parameter: Parameter) -> Any:
    if parameter.type == "categorical":
        assert parameter.choices is not None  # the sweep schema requires them
        return trial.suggest_categorical(key, parameter.choices)
    assert parameter.low is not None and parameter.high is not None  # the sweep schema requires them
    if parameter.type == "int":
        return trial.suggest_int(key, int(parameter.low), int(parameter.high), step=int(parameter.step or 1))
    step = parameter.step if parameter.type == "float" else None
    return trial.suggest_float(key, parameter.low, parameter.high, log=parameter.type == "log_float", step=step)


def queue_again(study: optuna.Study, trial: optuna.trial.FrozenTrial | optuna.Trial, folder: str) -> None:
    """A trial stopped before its end: failed as interrupted (not counted), its parameters queued
    to be tried again in the same folder, which resumes from its checkpoint."""
    import optuna

    # A queued trial's parameters are fixed before they are suggested: a trial that died right
    # after its ask has them only there.
    fixed = trial.system_attrs.get("fixed_params", {}) if isinstance(trial, optuna.trial.FrozenTrial) else {}
    params = trial.params or fixed
    study.set_user_attr(INTERRUPTED, sorted({*study.user_attrs.get(INTERRUPTED, []), trial.number}))
    study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
    study.enqueue_trial(params, user_attrs={"folder": folder})


def recover_interrupted(study: optuna.Study, out: Path, notify: Callable[[str], None]) -> dict[int, dict[str, Any]]:
    """RUNNING trials whose worker is dead (see the module's docstring): queued again. Returns
    the RUNNING trials left to live workers or to other hosts' workers, with their owners."""
    import optuna

    host, left = socket.gethostname(), {}
    with ask_lock(out):
        for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            owner = trial.user_attrs.get(OWNER)
            dead = owner is None or (owner.get("host") == host and not owner_alive(owner))
            if owner is not None and not dead:
                left[trial.number] = owner
                continue
            folder = trial.user_attrs.get("folder", f"trial-{trial.number}")
            queue_again(study, trial, folder)
            who = (
                "its worker died before it recorded itself"
                if owner is None
                else f"its worker (pid {owner['pid']}) is gone"
            )
            notify(f"trial {trial.number}: {who}; its parameters are queued again ({folder})")
    return left


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
