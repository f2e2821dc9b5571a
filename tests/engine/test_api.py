"""Training from Python: ``noprop_core.train / resume / load_run`` and the ``Run`` they return,
on real digits runs (a few batches each), against what the same run folder says on disk."""

from __future__ import annotations

import json

import pytest
import torch

import noprop_core as noprop
from noprop_core import NopropError, Run, SeedGroup, load_registry
from noprop_core.engine.training.experiment import build_experiment
from noprop_core.recipe.loading import load_recipe
from noprop_core.recipe.shipped import shipped_path

SMALL = ["train.epochs=2", "train.max_batches=4", "tracker.name=none", "eval.inference_runs=2", "device=cpu"]
TRAINED = ["train.epochs=3", "tracker.name=none", "eval.inference_runs=2", "device=cpu"]  # enough to tell digits apart


@pytest.fixture(scope="module")
def registry():
    return load_registry(autoload=False)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, registry):
    out = tmp_path_factory.mktemp("api") / "digits"
    return noprop.train("digits_dt", overrides=TRAINED, out=out, progress=False, registry=registry)


def test_train_returns_the_run_whose_folder_it_wrote(trained):
    assert isinstance(trained, Run)
    on_disk = json.loads((trained.run_dir / "metrics.json").read_text())
    assert trained.metrics == on_disk and len(trained.history) == 3 == on_disk["epochs_completed"]
    assert len(trained.metrics["test_accuracy_runs"]) == 2
    assert trained.recipe.train.epochs == 3 and trained.recipe.variant.name == "dt"


def test_predict_takes_images_in_the_unit_range_and_agrees_with_the_evaluation(trained, registry):
    splits = build_experiment(trained.recipe, registry, notify=lambda text: None).splits
    model = trained.model()
    mean = torch.tensor(model.card["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(model.card["std"]).view(1, -1, 1, 1)
    unit = splits.test_images * std + mean  # the images as a user holds them: [0, 1]
    accuracy = 100 * (trained.predict(unit) == splits.test_labels).double().mean().item()
    assert accuracy > 50 and accuracy == pytest.approx(trained.metrics["test_accuracy_runs"][0], abs=1.0)
    probabilities = trained.predict_proba(unit[:5])
    torch.testing.assert_close(probabilities.sum(-1), torch.ones(5))
    # Standardised images given as if they were in [0, 1] are refused, not read as some other images.
    with pytest.raises(NopropError, match=r"predict: floats must lie in \[0, 1\]"):
        trained.predict(splits.test_images)


def test_evaluate_export_and_plot_write_what_the_cli_would(trained, tmp_path):
    result = trained.evaluate(runs=2)
    assert len(result["test_accuracy_runs"]) == 2
    assert result["test_accuracy_runs"] == trained.metrics["test_accuracy_runs"]  # the run's own inference, again
    with pytest.raises(NopropError, match="variant 'dt' has no steps to change"):
        trained.evaluate(steps=3)
    logged = json.loads((trained.run_dir / "evaluations.json").read_text())
    assert logged[-1]["test_accuracy_runs"] == result["test_accuracy_runs"]
    exported = trained.export("safetensors", tmp_path / "out" / "model.safetensors")
    assert exported == tmp_path / "out" / "model.safetensors" and exported.stat().st_size > 1000
    plots = trained.plot(tmp_path / "plots")
    assert {path.name for path in plots} >= {"accuracy.png", "losses.png"}
    assert all(path.stat().st_size > 1000 for path in plots)
    with pytest.raises(NopropError, match="export: unknown format 'pdf'; expected one of safetensors, onnx"):
        trained.export("pdf")


def test_resume_trains_a_finished_run_further(tmp_path, registry):
    run = noprop.train("digits_dt", overrides=SMALL, out=tmp_path / "run", progress=False, registry=registry)
    further = noprop.resume(run.run_dir, epochs=3, progress=False, registry=registry)
    assert further.run_dir == run.run_dir and len(further.history) == 3
    assert [change["key"] for change in further.metrics["recipe_changes"]] == ["train.epochs"]
    assert noprop.load_run(run.run_dir, registry).history == further.history


def test_a_recipe_built_in_python_trains_with_overrides(tmp_path, registry):
    recipe = load_recipe(shipped_path("digits_dt", "test"), registry)
    run = noprop.train(
        recipe,
        overrides=[*SMALL, "train.epochs=1", "variant.eta=0.5"],
        out=tmp_path / "built",
        progress=False,
        registry=registry,
    )
    assert run.recipe.variant.eta == 0.5 and run.metrics["epochs_completed"] == 1


def test_seeds_train_a_group_with_its_protocol(tmp_path, registry):
    group = noprop.train(
        "digits_dt",
        overrides=[*SMALL, "train.epochs=1"],
        seeds=[3, 4],
        out=tmp_path / "group",
        progress=False,
        registry=registry,
    )
    assert isinstance(group, SeedGroup) and group.protocol["seeds"] == [3, 4]
    assert [run.recipe.seed for run in group.runs] == [3, 4]
    assert json.loads((group.out / "protocol.json").read_text()) == group.protocol


def test_errors_are_the_clis_one_line_errors(tmp_path, registry):
    with pytest.raises(NopropError, match="no such file, and no shipped recipe of that name"):
        noprop.train("digits_dtt", registry=registry)
    with pytest.raises(NopropError, match=r"train\.epochs"):
        noprop.train("digits_dt", overrides=["train.epochs=0"], out=tmp_path / "bad", registry=registry)
    assert not (tmp_path / "bad").exists()
    with pytest.raises(NopropError, match="not a run directory"):
        noprop.load_run(tmp_path)


def test_the_api_has_the_command_lines_reach_recipes_reports_and_sweeps(trained, tmp_path, capfd):
    recipe = noprop.load_recipe("digits_dt", ["train.epochs=2", "variant.timesteps=2"])
    assert isinstance(recipe, noprop.Recipe) and recipe.train.epochs == 2 and recipe.variant.timesteps == 2
    report = noprop.report(trained.run_dir, tmp_path / "not-a-run")
    table = report.markdown()
    assert len(report.rows) == 1 and "digits" in table and "noprop: warning: skipped" in capfd.readouterr().err
    assert {path.name for path in report.plot(tmp_path / "plots")} >= {"accuracy.png"}
    (tmp_path / "empty").mkdir()
    with pytest.raises(NopropError) as nothing:
        noprop.report(tmp_path / "empty")
    assert str(nothing.value).startswith("report: no run to report among") and "\n" not in str(nothing.value)
    assert "warning" not in capfd.readouterr().err  # one line for one fact
    sweep_file = tmp_path / "s.toml"
    sweep_file.write_text(
        'recipe = "digits_dt"\ntrials = 1\nset = ["data.validation=287", "train.epochs=1", "train.max_batches=2", '
        '"variant.timesteps=2", "tracker.name=\\"none\\""]\n[space]\n"train.lr" = { type = "log_float", low = 1e-4, high = 1e-2 }\n'
    )
    result = noprop.sweep(sweep_file, out=tmp_path / "sweep", progress=False)
    assert result.summary["best"]["run_dir"] == "trial-0" and (tmp_path / "sweep" / "best.toml").is_file()
    with pytest.raises(NopropError, match="a trial of the sweep in"):
        noprop.resume(tmp_path / "sweep" / "trial-0", epochs=3)
