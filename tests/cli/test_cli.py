"""The `noprop` command end to end, as a user runs it (a real subprocess, digits data)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import torch

from conftest import REPO
from helpers import NOPROP, deterministic_history
from noprop_core import CT_SAMPLERS

QUICK = ["--set", "train.epochs=2", "--set", "data.subset=300", "--set", "variant.timesteps=3"]
METRIC_KEYS = {
    "recipe",
    "variant",
    "dataset",
    "seed",
    "device",
    "epochs_completed",
    "train_accuracy",
    "test_accuracy",
    "wall_seconds",
    "train_examples_per_second",
    "peak_memory_bytes",
    "history",
}


def noprop(*args: str, cwd: Path = REPO, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, "NOPROP_DISABLE_PLUGIN_AUTOLOAD": "1", **(env or {})}
    return subprocess.run([NOPROP, *args], cwd=cwd, env=environment, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    out = tmp_path_factory.mktemp("runs") / "quick"
    return noprop("run", *QUICK, "--out", str(out)), out


def test_run_writes_recipe_checkpoint_and_metrics(quick_run):
    result, out = quick_run
    assert result.returncode == 0, result.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert METRIC_KEYS <= metrics.keys()
    assert (metrics["variant"], metrics["dataset"], metrics["device"], metrics["epochs_completed"]) == (
        "dt",
        "digits",
        "cpu",
        2,
    )
    assert 0 <= metrics["test_accuracy"] <= 100 and 0 <= metrics["train_accuracy"] <= 100
    assert metrics["train_examples_per_second"] > 0 and metrics["peak_memory_bytes"] > 50 * 2**20
    assert [h["epoch"] for h in metrics["history"]] == [1, 2]
    assert set(metrics["history"][0]["loss"]) == {"ce", "kl", "denoise", "total"}
    assert set(metrics["history"][0]["loss_per_unit"]) == {"block1", "block2", "block3"}
    checkpoint = torch.load(out / "checkpoint.pt", weights_only=False)
    assert checkpoint["format"] == "noprop-checkpoint-1" and checkpoint["epoch"] == 2
    assert "blocks.2.fusion.6.weight" in checkpoint["model"]
    assert "epoch 2/2" in result.stderr  # plain progress lines when not on a terminal
    assert "test accuracy" in result.stdout  # the summary
    # The speed path and the thread choice, printed and recorded.
    path = "order simultaneous, fused (stacked blocks) on cpu"  # the default recipe's
    assert f"speed: {path}" in result.stderr and "CPU threads" in result.stdout
    assert metrics["speed_path"] == path
    assert metrics["threads"] >= 1 and metrics["threads_reason"]


def test_resolved_recipe_is_valid_and_reruns_the_same_experiment(quick_run, tmp_path):
    _, out = quick_run
    resolved = (out / "recipe.toml").read_text()
    assert resolved.startswith(f"# noprop run {out / 'recipe.toml'}")
    assert "epochs = 2" in resolved and "subset = 300" in resolved and "timesteps = 3" in resolved
    assert noprop("validate", str(out / "recipe.toml")).returncode == 0
    again = noprop("run", str(out / "recipe.toml"), "--out", str(tmp_path / "again"))
    assert again.returncode == 0, again.stderr
    first = json.loads((out / "metrics.json").read_text())
    second = json.loads((tmp_path / "again" / "metrics.json").read_text())
    # Same seed on CPU: the same losses and accuracies, run after run.
    assert deterministic_history(second["history"]) == deterministic_history(first["history"])
    assert second["test_accuracy"] == first["test_accuracy"] and second["train_accuracy"] == first["train_accuracy"]


def test_a_different_seed_gives_a_different_run(quick_run, tmp_path):
    _, out = quick_run
    result = noprop("run", *QUICK, "--seed", "5", "--out", str(tmp_path / "other"))
    assert result.returncode == 0, result.stderr
    first = json.loads((out / "metrics.json").read_text())
    other = json.loads((tmp_path / "other" / "metrics.json").read_text())
    assert other["seed"] == 5 and other["history"][0]["loss"] != first["history"][0]["loss"]


def test_run_refuses_a_directory_that_holds_a_run(quick_run):
    _, out = quick_run
    result = noprop("run", *QUICK, "--out", str(out))
    assert result.returncode == 2
    assert result.stderr.strip() == f"noprop: error: --out {out}: already holds a run; choose another directory"


def test_bad_recipe_exits_2_with_one_line_per_problem_and_no_traceback(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text((REPO / "recipes" / "digits_dt.toml").read_text().replace("epochs = 16", 'epochs = "ten"'))
    result = noprop("run", str(bad), "--set", "train.lr=fast", "--out", str(tmp_path / "never"))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"noprop: error: {bad}: train.epochs: expected int, got 'ten'",
        f"noprop: error: {bad}: train.lr: expected a number, got 'fast'",
    ]
    assert not (tmp_path / "never").exists()  # nothing ran, nothing was created


def test_validate_reports_each_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[train]\nepochs = 1\n")
    good = noprop("validate", "recipes/digits_dt.toml", "recipes/mnist_dt.toml")
    assert good.returncode == 0 and good.stdout.count(": ok") == 2
    mixed = noprop("validate", "recipes/digits_dt.toml", str(bad))
    assert mixed.returncode == 2
    assert f"{bad}: data: missing required key" in mixed.stderr
    assert "Traceback" not in mixed.stderr


def test_plugins_lists_every_kind_with_its_distribution():
    result = noprop("plugins")
    assert result.returncode == 0
    rows = {tuple(line.split("\t")[:3]) for line in result.stdout.splitlines()}
    for kind, name in [
        ("variant", "dt"),
        ("variant", "ct"),
        ("backbone", "cnn"),
        ("label_embedding", "onehot"),
        ("schedule", "cosine"),
        ("dataset", "digits"),
        ("dataset", "mnist"),
        ("tracker", "none"),
    ]:
        assert (kind, name, "noprop") in rows


def test_absent_cuda_is_a_one_line_error(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    result = noprop("run", *QUICK, "--set", "device=cuda", "--out", str(tmp_path / "run"))
    assert result.returncode == 2
    assert result.stderr.strip() == "noprop: error: device: 'cuda' asked for, but no CUDA device is available here"


def test_default_recipe_runs_from_any_directory(tmp_path):
    # No recipes/ folder here: `noprop run` falls back to the copy installed with the package.
    result = noprop(
        "run", "--set", "train.epochs=1", "--set", "data.subset=200", "--set", "variant.timesteps=2", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    [run_dir] = (tmp_path / "runs").iterdir()
    assert run_dir.name.startswith("digits_dt-")
    assert json.loads((run_dir / "metrics.json").read_text())["epochs_completed"] == 1


@pytest.fixture(scope="module")
def ct_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "ct"
    result = noprop(
        "run",
        "recipes/digits_ct.toml",
        "--set",
        "train.epochs=1",
        "--set",
        "data.subset=200",
        "--set",
        "variant.steps=8",
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    return out


def test_eval_changes_the_sampler_and_steps_and_records_each_result(ct_run):
    first = noprop("eval", str(ct_run), "--sampler", "heun", "--steps", "5")
    assert first.returncode == 0, first.stderr
    assert "test accuracy" in first.stdout and "sampler heun, steps 5" in first.stdout
    assert "evaluated 360/360 images" in first.stderr  # progress, plain in a pipe: the digits test set
    again = noprop("eval", str(ct_run))
    assert again.returncode == 0 and "sampler ancestral, steps 8" in again.stdout
    evaluations = json.loads((ct_run / "evaluations.json").read_text())
    assert [(e["sampler"], e["steps"]) for e in evaluations] == [("heun", 5), ("ancestral", 8)]
    # Evaluating the recipe's own setting reproduces the training run's final test accuracy.
    assert evaluations[1]["test_accuracy"] == json.loads((ct_run / "metrics.json").read_text())["test_accuracy"]


def test_eval_shows_progress_over_every_pass(ct_run, registry):
    """Plain lines in a pipe; a live bar on a terminal; both count every image of every pass."""
    import io
    import re

    from rich.console import Console

    from noprop_core.cli.progress import make_evaluation_progress
    from noprop_core.engine.trained.reevaluation import evaluate_run

    piped = noprop("eval", str(ct_run), "--inference-runs", "2")
    assert piped.returncode == 0, piped.stderr
    test, train = map(int, re.search(r"(\d+) test images and (\d+) training images × 2", piped.stderr).groups())
    counts = [tuple(map(int, m)) for m in re.findall(r"evaluated (\d+)/(\d+) images", piped.stderr)]
    assert len(counts) == 4 and counts == sorted(counts)  # a line at every quarter
    assert counts[-1] == (2 * (test + train), 2 * (test + train))
    screen = io.StringIO()
    terminal = Console(file=screen, force_terminal=True, color_system=None, width=120)
    evaluate_run(ct_run, registry, inference_runs=2, progress=make_evaluation_progress(terminal))
    assert (
        "evaluating" in screen.getvalue() and f"{2 * (test + train)}/{2 * (test + train)} images" in screen.getvalue()
    )


def test_eval_errors_are_one_line(ct_run, quick_run, tmp_path):
    _, dt_run = quick_run
    cases = {
        ("eval", str(dt_run), "--steps", "5"): "--steps: variant 'dt' has no steps to change",
        (
            "eval",
            str(ct_run),
            "--sampler",
            "rk4",
        ): "variant.sampler: expected one of " + ", ".join(map(repr, CT_SAMPLERS)) + ", got 'rk4'",
        ("eval", str(tmp_path)): "not a run directory",
    }
    for args, message in cases.items():
        result = noprop(*args)
        assert result.returncode == 2 and message in result.stderr and len(result.stderr.splitlines()) == 1, (
            result.stderr
        )


def test_a_corrupt_checkpoint_is_named_and_left_alone(ct_run, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(ct_run, broken)
    (broken / "checkpoint.pt").write_bytes((ct_run / "checkpoint.pt").read_bytes()[:1000])
    result = noprop("eval", str(broken))
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == f"noprop: error: {broken / 'checkpoint.pt'}: not a readable noprop checkpoint (RuntimeError)"
    )
    assert (broken / "checkpoint.pt").stat().st_size == 1000


def test_shipped_recipes_by_name_from_an_empty_folder_outside_the_checkout(tmp_path):
    listing = noprop("recipes", cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    rows = {line.split("\t")[0]: line.split("\t") for line in listing.stdout.splitlines()}
    assert rows["recipe"][-1] == "paper test %"
    assert rows["mnist_dt"][1:] == ["mnist", "dt", "onehot", "cnn", "100", "99.47 ± 0.05"]
    assert rows["cifar100_dt_dim20"][3] == "learned 20" and rows["digits_dt"][-1] == ""
    # each data set's plugin names its row: the torchvision and MedMNIST sets by the set
    assert rows["bloodmnist_dt"][1] == "bloodmnist"
    assert len(rows) - 1 == len(list((REPO / "recipes").glob("*.toml")))
    (tmp_path / "mine.toml").write_text('extends = "noprop:digits_dt"\n[train]\nepochs = 1\n')
    checked = noprop(
        "validate", "digits_dt", "noprop:cifar100_dt", "mine.toml", "--set", "train.epochs=2", cwd=tmp_path
    )
    assert checked.returncode == 0 and checked.stdout.split() == [
        "digits_dt:",
        "ok",
        "noprop:cifar100_dt:",
        "ok",
        "mine.toml:",
        "ok",
    ], checked.stderr
    shown = noprop("validate", "--show", "mine.toml", "--set", "train.epochs=2", cwd=tmp_path)
    assert "epochs = 2" in shown.stdout and 'name = "digits"' in shown.stdout
    trained = noprop(
        "run",
        "digits_dt",
        "--set",
        "train.epochs=1",
        "--set",
        "tracker.name=none",
        "--set",
        "data.subset=200",
        "--out",
        "r",
        cwd=tmp_path,
    )
    assert trained.returncode == 0, trained.stderr
    assert json.loads((tmp_path / "r" / "metrics.json").read_text())["epochs_completed"] == 1
    extended = noprop(
        "run", "mine.toml", "--set", "tracker.name=none", "--set", "data.subset=200", "--out", "e", cwd=tmp_path
    )
    assert extended.returncode == 0, extended.stderr


def test_unknown_recipe_names_and_extends_outside_the_recipe_tree_are_one_line(tmp_path):
    typo = noprop("validate", "cifar100_td", cwd=tmp_path)
    assert typo.returncode == 2 and typo.stderr == (
        "noprop: error: cifar100_td: no such file, and no shipped recipe of that name "
        "(did you mean cifar100_dt, cifar100_ct, cifar10_dt?)\n"
    )
    (tmp_path / "base.toml").write_text('extends = "noprop:digits_dt"\nseed = 3\n')
    inner = tmp_path / "project"
    inner.mkdir()
    (inner / "escape.toml").write_text('extends = "../base.toml"\n')
    (inner / "typo.toml").write_text('extends = "noprop:mnist_td"\n')
    refused = noprop("validate", "project/escape.toml", "project/typo.toml", cwd=tmp_path)
    assert refused.returncode == 2
    assert refused.stderr.splitlines() == [
        f"noprop: error: project/escape.toml: extends: '../base.toml' is outside {inner} (the recipe's folder tree); "
        "extend a shipped recipe as 'noprop:NAME', or allow the folder in $NOPROP_RECIPE_ROOTS",
        "noprop: error: project/typo.toml: extends: no shipped recipe 'mnist_td' (did you mean mnist_dt, mnist_ct, "
        "mnist_fm?); `noprop recipes` lists them",
    ]
    allowed = noprop("validate", "project/escape.toml", cwd=tmp_path, env={"NOPROP_RECIPE_ROOTS": str(tmp_path)})
    assert allowed.returncode == 0, allowed.stderr


def test_the_final_confusion_matrix_agrees_with_the_test_accuracy_and_is_plotted(quick_run, tmp_path):
    _, out = quick_run
    metrics = json.loads((out / "metrics.json").read_text())
    matrix = torch.tensor(metrics["confusion_matrix"])
    assert matrix.shape == (10, 10) and int(matrix.sum()) == metrics["test_examples"]
    assert 100 * matrix.trace().item() / matrix.sum().item() == pytest.approx(metrics["test_accuracy_runs"][0])
    result = noprop("report", str(out), "--plot", str(tmp_path / "plots"))
    assert result.returncode == 0, result.stderr
    for name in (
        "accuracy.png",
        "losses.png",
        "confusion.png",
        "chain_accuracy.png",
        "schedule.png",
        "image_accuracy.png",
    ):
        assert (tmp_path / "plots" / name).read_bytes().startswith(b"\x89PNG"), name


def test_resume_changes_lists_the_changes_and_names_every_changeable_key_when_refusing():
    from noprop_core.engine.runs.resume import resume_changes
    from noprop_core.errors import NopropError
    from noprop_core.plugin.manager import load_registry
    from noprop_core.recipe.loading import load_recipe
    from noprop_core.recipe.schema import changeable_on_resume

    changeable = changeable_on_resume(load_recipe(REPO / "recipes" / "mnist_dt.toml", load_registry()))
    # Declared on the fields (CHANGEABLE_ON_RESUME metadata), found through the plugin's own config.
    assert changeable == [
        "data.root",
        "data.workers",
        "data.download",
        "train.epochs",
        "eval.",
        "speed.threads",
        "tracker.",
    ]
    before = {"train": {"epochs": 3, "lr": 1e-3}, "data": {"workers": 0}}
    changed = {"train": {"epochs": 5, "lr": 1e-3}, "data": {"workers": 2}}
    assert resume_changes(before, changed, "r.toml", 4, changeable) == [
        {"epoch": 4, "key": "data.workers", "from": 0, "to": 2},
        {"epoch": 4, "key": "train.epochs", "from": 3, "to": 5},
    ]
    with pytest.raises(NopropError) as error:
        resume_changes(before, {"train": {"epochs": 3, "lr": 2e-3}, "data": {"workers": 0}}, "r.toml", 4, changeable)
    message = str(error.value)
    assert message.startswith("r.toml: cannot change mid-run: train.lr (0.001 in the checkpoint, 0.002 now)")
    for key in changeable:
        assert (key + "*" if key.endswith(".") else key) in message
