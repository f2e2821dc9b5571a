"""`--launcher NAME|FILE` and `--launcher-set`: one-line errors for bad launchers, and several
recipes' seed groups sent as the jobs of one launch (what `nox -s paper -- --launcher …` runs)."""

from __future__ import annotations

import contextlib
import io
import json

import pytest

from noprop_core.cli.main import main


def cli(*args) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main([str(a) for a in args])
    return status, out.getvalue(), err.getvalue()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            ["--seeds", "0", "--launcher", "lokal"],
            "--launcher: launcher.name: unknown launcher 'lokal' (available: local, slurm)",
        ),
        (
            ["--seeds", "0", "--launcher", "local", "--launcher-set", "wrkers=2"],
            "--launcher: launcher.wrkers: unknown key (allowed here: gpus_per_job, max_requeues, name, workers)",
        ),
        (
            ["--seeds", "0", "--launcher", "slurm", "--launcher-set", "time_minutes=0"],
            "--launcher: launcher.time_minutes: expected a number >= 1, got 0",
        ),
        (["--launcher", "local"], "--launcher: sends a seed group's seeds as jobs; give --seeds N [N ...]"),
        (["digits_fm", "--seeds", "0"], "2 recipes: give them --seeds N [N ...] and --out DIR"),
    ],
    ids=["unknown-launcher", "unknown-key", "bad-value", "no-seeds", "several-recipes-without-out"],
)
def test_a_bad_launcher_option_is_one_line(arguments, message):
    status, _, stderr = cli("run", "digits_dt", *arguments)
    assert status == 2
    assert stderr.count("noprop: error:") == 1 and message in stderr, stderr


def test_a_launcher_file_holds_one_launcher_table(tmp_path):
    path = tmp_path / "cluster.toml"
    path.write_text('[launcher]\nname = "slurm"\npartition = "gpu"\n\n[other]\nx = 1\n')
    status, _, stderr = cli("run", "digits_dt", "--seeds", "0", "--launcher", path)
    assert status == 2
    assert f"{path}: expected a launcher file holding one [launcher] table, found other" in stderr
    path.write_text('[launcher]\nname = "slurm"\npartitoin = "gpu"\n')
    status, _, stderr = cli("run", "digits_dt", "--seeds", "0", "--launcher", path)
    assert status == 2 and f"{path}: launcher.partitoin: unknown key" in stderr


@pytest.mark.slow
def test_several_recipes_seed_groups_go_out_as_one_launch(tmp_path):
    sets = ["train.epochs=1", "data.subset=200", "tracker.name=none", "eval.train_subset=50"]
    status, stdout, stderr = cli(
        "run",
        "digits_dt",
        "digits_backprop",
        "--seeds",
        0,
        "--out",
        tmp_path,
        *(a for s in sets for a in ("--set", s)),
        "--launcher",
        "local",
        "--launcher-set",
        "workers=2",
    )
    assert status == 0, stderr
    assert "2 seed run(s) to this machine, 2 job(s) at a time" in stderr  # one launch for both recipes
    for recipe in ("digits_dt", "digits_backprop"):
        protocol = json.loads((tmp_path / recipe / "protocol.json").read_text())
        assert protocol["seeds"] == [0] and protocol["test_accuracy"]["n"] == 1
        assert [run["epochs_completed"] for run in protocol["runs"]] == [1]
        assert (tmp_path / recipe / "seed-0.log").is_file()
    # Started again: every seed finished, nothing is launched
    status, _, stderr = cli(
        "run",
        "digits_dt",
        "digits_backprop",
        "--seeds",
        0,
        "--out",
        tmp_path,
        *(a for s in sets for a in ("--set", s)),
        "--launcher",
        "local",
    )
    assert status == 0 and "seed run(s) to" not in stderr and stderr.count("already finished; kept") == 2
