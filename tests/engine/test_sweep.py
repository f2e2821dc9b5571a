"""`noprop sweep`: Optuna over a recipe's keys, each trial a run folder; bad sweep files are one-line
errors; a sweep killed mid-trial continues without losing or repeating a trial; two workers
share one study. Real digits runs of a few batches each."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

import noprop_core as noprop
from helpers import NOPROP
from noprop_core import RunInterrupted
from noprop_core.cli.main import main
from noprop_core.recipe.loading import load_recipe

FAST = '["data.validation=287", "train.epochs=2", "train.max_batches=3", "tracker.name=\\"none\\"", "device=\\"cpu\\""]'
SPACE = """
[space]
"train.lr" = { type = "log_float", low = 3e-4, high = 1e-2 }
"variant.eta" = { type = "float", low = 0.01, high = 1.0 }
"""


def sweep_file(
    tmp_path: Path, body: str = "", *, name: str = "sweep.toml", fast: str = FAST, space: str = SPACE
) -> Path:
    path = tmp_path / name
    defaults = "".join(line + "\n" for line in ('method = "random"', "trials = 3") if line.split()[0] not in body)
    path.write_text(f'recipe = "digits_dt"\nset = {fast}\n{defaults}{body}\n{space}')
    return path


def env() -> dict[str, str]:
    return {**os.environ, "NOPROP_DISABLE_PLUGIN_AUTOLOAD": "1", "NOPROP_JOBS": "2"}


@pytest.mark.parametrize(
    ("body", "space", "message"),
    [
        ('objective = "test_accuracy"', SPACE, "objective: choosing hyper-parameters on the test set"),
        ('objective = "loss"', SPACE, "objective: expected one of validation_accuracy, train_accuracy, got 'loss'"),
        ("", "[space]\n", "space: empty; name at least one recipe key"),
        (
            "",
            '[space]\n"train.lr" = { type = "log_float", low = 0.0, high = 1e-2 }\n',
            'space."train.lr": a log_float range must be positive',
        ),
        (
            "",
            '[space]\n"train.lr" = { type = "float", low = 0.1, high = 0.01 }\n',
            'space."train.lr": low (0.1) must be below high (0.01)',
        ),
        (
            "",
            '[space]\n"train.lr" = { type = "normal", low = 0.1, high = 1 }\n',
            'space."train.lr".type: expected one of',
        ),
        ('method = "grid"', SPACE, "space.\"train.lr\": method = 'grid' needs a finite grid"),
        ("epochs = 3", SPACE, "epochs: unknown key"),
        ("", '[space]\n"train.lrr" = { type = "float", low = 0.1, high = 1 }\n', "the space does not fit recipe"),
    ],
)
def test_a_bad_sweep_file_is_one_line_naming_file_and_key(tmp_path, capfd, body, space, message):
    path = sweep_file(tmp_path, body, space=space)
    assert main(["sweep", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capfd.readouterr().err
    assert message in err and str(path) in err and "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("noprop: error:")]
    assert len(lines) >= 1 and all("\n" not in line for line in lines)


def test_validation_accuracy_needs_a_held_out_split(tmp_path, capfd):
    path = sweep_file(tmp_path, fast='["train.epochs=1", "tracker.name=\\"none\\""]')
    assert main(["sweep", str(path), "--out", str(tmp_path / "out")]) == 2
    assert "validation_accuracy needs a validation split" in capfd.readouterr().err


def test_an_unreadable_storage_is_one_line(tmp_path, capfd):
    (tmp_path / "not-a-db").mkdir()
    path = sweep_file(tmp_path, f'storage = "sqlite:///{tmp_path / "not-a-db"}"')
    assert main(["sweep", str(path), "--out", str(tmp_path / "out")]) == 2
    assert "cannot be opened" in capfd.readouterr().err


@pytest.mark.slow
def test_a_sweep_runs_its_trials_as_run_folders_and_continues_where_it_stopped(tmp_path, capfd):
    path = sweep_file(tmp_path)
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out)]) == 0
    summary = json.loads((out / "sweep.json").read_text())
    assert [t["state"] for t in summary["trials"]] == ["complete"] * 3
    assert sorted(t["run_dir"] for t in summary["trials"]) == ["trial-0", "trial-1", "trial-2"]
    for trial in summary["trials"]:  # each an ordinary run folder, its objective its own metrics'
        run = noprop.load_run(out / trial["run_dir"])
        assert run.metrics["validation_accuracy"] == pytest.approx(trial["objective"])
        assert run.recipe.train.lr == pytest.approx(trial["params"]["train.lr"])
    best = summary["best"]
    assert best["objective"] == max(t["objective"] for t in summary["trials"])
    chosen = load_recipe(out / "best.toml", noprop.load_registry(autoload=False))
    assert chosen.train.lr == pytest.approx(best["params"]["train.lr"]) and best["test_accuracy"] is not None
    # The same command again: the budget is spent, nothing is run twice; a larger budget adds trials.
    assert main(["sweep", str(path), "--out", str(out)]) == 0
    assert len(json.loads((out / "sweep.json").read_text())["trials"]) == 3
    capfd.readouterr()
    assert main(["report", str(out)]) == 0
    report = capfd.readouterr()
    assert report.out.index(f"{best['objective']:.2f}") < report.out.index("trial-") + 200
    assert (out / "sweep.png").stat().st_size > 10_000


@pytest.mark.slow
def test_a_trial_that_fails_is_recorded_and_the_sweep_goes_on(tmp_path):
    space = '[space]\n"model.backbone.dropout" = { type = "categorical", choices = [0.1, 1.5] }\n'
    # The space is checked with each key's first choice (0.1 fits); 1.5 is refused when its trial starts.
    path = sweep_file(tmp_path, 'method = "grid"', space=space)
    from noprop_core.engine.sweep.driver import run_sweep

    result = run_sweep(path, noprop.load_registry(autoload=False), out=tmp_path / "out", progress=False)
    states = {t["params"]["model.backbone.dropout"]: (t["state"], t["error"]) for t in result.summary["trials"]}
    assert states[0.1][0] == "complete"
    assert states[1.5][0] == "fail" and "model.backbone.dropout" in states[1.5][1]


@pytest.mark.slow
def test_killed_mid_trial_the_same_command_loses_and_repeats_no_trial(tmp_path):
    # Epochs of 8 batches: the kill lands while trial 1 still has 2 of its 3 epochs to go.
    slow = '["data.validation=287", "train.epochs=3", "train.max_batches=8", "tracker.name=\\"none\\"", "device=\\"cpu\\""]'
    path = sweep_file(tmp_path, fast=slow)
    out = tmp_path / "out"
    command = [NOPROP, "sweep", str(path), "--out", str(out)]
    worker = subprocess.Popen(
        command, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 300
    while not (out / "trial-1" / "checkpoint.pt").is_file():  # trial 1 has trained an epoch
        assert worker.poll() is None and time.monotonic() < deadline
        time.sleep(0.2)
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()
    first = json.loads((out / "trial-0" / "metrics.json").read_text())
    again = subprocess.run(command, env=env(), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "trial 1: its worker" in again.stderr and "queued again (trial-1)" in again.stderr
    summary = json.loads((out / "sweep.json").read_text())
    folders = [t["run_dir"] for t in summary["trials"]]  # the retry of trial 1 is a new trial in trial-1/
    assert len(summary["trials"]) == 3 == len(set(folders)) and {"trial-0", "trial-1"} <= set(folders)
    assert [t["state"] for t in summary["trials"]] == ["complete"] * 3
    assert json.loads((out / "trial-0" / "metrics.json").read_text()) == first  # finished: not run again
    resumed = json.loads((out / "trial-1" / "metrics.json").read_text())
    assert resumed["epochs_completed"] == 3 and len(resumed["history"]) == 3  # resumed, not restarted


@pytest.mark.slow
def test_two_workers_share_one_study_and_run_no_trial_twice(tmp_path):
    path = sweep_file(tmp_path, "trials = 3")
    out = tmp_path / "out"
    workers = [
        subprocess.Popen(
            [NOPROP, "sweep", str(path), "--out", str(out)],
            env=env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    errors = [worker.communicate(timeout=600)[1] for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], errors
    started = [line for err in errors for line in err.splitlines() if line.startswith("trial ") and "=" in line]
    numbers = [line.split(":")[0] for line in started]
    assert len(numbers) == len(set(numbers)) >= 3  # every trial started by one worker only
    values = [line.split(": ", 1)[1] for line in started]
    assert len(values) == len(set(values))  # and with values of its own
    folders = sorted(p.name for p in out.glob("trial-*"))
    assert len(folders) == len(numbers)
    for folder in folders:
        assert json.loads((out / folder / "metrics.json").read_text())["epochs_completed"] == 2


def test_an_epoch_callback_stops_a_run_with_its_checkpoint(tmp_path):
    seen = []
    with pytest.raises(RunInterrupted):
        noprop.train(
            "digits_dt",
            overrides=["train.epochs=5", "train.max_batches=2", "tracker.name=none"],
            out=tmp_path / "run",
            progress=False,
            on_epoch=lambda record: seen.append(record["epoch"]) or record["epoch"] == 2,
        )
    assert seen == [1, 2] and (tmp_path / "run" / "checkpoint.pt").is_file()
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["epochs_completed"] == 2


def test_asks_past_the_budget_give_way_in_the_order_of_their_numbers():
    import optuna

    from noprop_core.engine.sweep.study import SURPLUS, counted, surplus

    study = optuna.create_study(direction="maximize")
    first, second, third = study.ask(), study.ask(), study.ask()  # three workers asking at once, budget 2
    assert [surplus(study, trial, 2) for trial in (first, second, third)] == [False, False, True]
    third.set_user_attr(SURPLUS, True)
    study.tell(third, state=optuna.trial.TrialState.FAIL)
    assert counted(study) == 2


@pytest.mark.slow
def test_a_worker_preempted_mid_trial_is_requeued_and_resumes_the_trial(tmp_path):
    slow = '["data.validation=287", "train.epochs=3", "train.max_batches=8", "tracker.name=\\"none\\"", "device=\\"cpu\\""]'
    path = sweep_file(tmp_path, 'trials = 1\n\n[launcher]\nname = "local"\nworkers = 1', fast=slow)
    out = tmp_path / "out"
    sweep = subprocess.Popen(
        [NOPROP, "sweep", str(path), "--out", str(out)],
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 300
    while not (out / "trial-0" / "checkpoint.pt").is_file():  # trial 0 has trained an epoch
        assert sweep.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    from launch_helpers import noprop_process

    os.kill(noprop_process(out.absolute()), signal.SIGUSR2)  # the worker: what Slurm sends before a time limit
    _, stderr = sweep.communicate(timeout=600)
    assert sweep.returncode == 0, stderr[-2000:]
    assert "worker-0: preempted with a checkpoint; started again" in stderr
    assert "its parameters are queued again (trial-0)" in (out / "worker-0.log").read_text()
    summary = json.loads((out / "sweep.json").read_text())
    assert [(t["state"], t["run_dir"]) for t in summary["trials"]] == [("complete", "trial-0")]  # retried in place
    resumed = json.loads((out / "trial-0" / "metrics.json").read_text())
    assert resumed["epochs_completed"] == 3 and len(resumed["history"]) == 3  # resumed, not restarted


def test_workers_sharing_a_study_draw_different_values_and_a_rerun_draws_the_same(tmp_path):
    import optuna

    from noprop_core.engine.sweep.study import ask, sampler_for
    from noprop_core.recipe.sweep import load_sweep

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sweep = load_sweep(sweep_file(tmp_path, 'method = "tpe"'))

    def worker(storage: str) -> optuna.Study:  # each worker process loads the study with its own sampler
        return optuna.create_study(
            study_name="s", storage=storage, direction="maximize", sampler=sampler_for(sweep), load_if_exists=True
        )

    shared = f"sqlite:///{tmp_path / 'shared.db'}"
    first, second = worker(shared), worker(shared)
    drawn = [ask(study, sweep, tmp_path)[1] for study in (first, second, first, second)]
    assert len({json.dumps(params, sort_keys=True) for params in drawn}) == 4  # one seed for all drew pairs
    again = worker(f"sqlite:///{tmp_path / 'again.db'}")
    assert [ask(again, sweep, tmp_path)[1] for _ in range(4)] == drawn  # the same draws, trial by trial
