"""`noprop run --smoke` over every shipped recipe, so that a broken recipe cannot land.

MNIST is the real data where its files are found ($NOPROP_DATA, else ../shared/data); CIFAR and
MedMNIST files are absent here, and the smoke run stands in torchvision's FakeData of the right
shape — as it does for MNIST when its files are found nowhere, so that no recipe is skipped. The
tests check that a stand-in is reported, and never used when the real files are present.
"""

from __future__ import annotations

import json
import math
import shutil

import attrs
import pytest

from conftest import REPO
from noprop_core.engine.runs.fresh import start_run as run
from noprop_core.engine.training.smoke import SMOKE_BATCHES, SMOKE_EVAL_EXAMPLES, SMOKE_STEPS
from noprop_core.errors import DataUnavailable
from noprop_core.recipe.loading import load_recipe

RECIPES = sorted((REPO / "recipes").glob("*.toml"))
# Recipes whose smoke run is the code path of another one at several times its cost: validated
# only (test below). cifar100_dt_resnet50: ten ResNet-50 blocks, 125 s and a 2.9 GB checkpoint
# per smoke run on 2 cores; cifar10_dt_resnet18 runs the same backbone plugin and variant, and
# the ResNet-50 block itself passes the backbone contract kit (TestResNet50).
SAME_PATH_AS = {"cifar100_dt_resnet50": "cifar10_dt_resnet18"}
SMOKED = [path for path in RECIPES if path.stem not in SAME_PATH_AS]


@pytest.fixture
def data_root(data_root_or_stand_in, monkeypatch):
    root, _ = data_root_or_stand_in
    monkeypatch.setenv("NOPROP_DATA", str(root))
    return root


@pytest.fixture
def real_here(data_root_or_stand_in) -> tuple[str, ...]:
    """Data sets whose files the tests have."""
    return ("digits", "mnist") if data_root_or_stand_in[1] else ("digits",)


def no_download(path, registry, real_here) -> list[str]:
    """Keep the tests offline even where a data set could be fetched. (Real MNIST keeps download
    on: torchvision then verifies and extracts the .gz files it finds, without network.)"""
    data = load_recipe(path, registry).data
    fetchable = "download" in attrs.fields_dict(type(data)) and data.name not in real_here
    return ["data.download=false"] if fetchable else []


@pytest.mark.slow
@pytest.mark.parametrize("path", SMOKED, ids=[p.stem for p in SMOKED])
def test_every_recipe_runs_as_a_smoke_test(path, registry, data_root, real_here, tmp_path, capsys):
    overrides = no_download(path, registry, real_here)
    run_dir, metrics = run(path, registry, overrides=overrides, out_dir=tmp_path / "run", smoke=True)
    recipe = load_recipe(run_dir / "recipe.toml", registry)
    assert metrics["epochs_completed"] == 1 and recipe.train.max_batches == SMOKE_BATCHES
    assert metrics["test_examples"] == SMOKE_EVAL_EXAMPLES
    assert getattr(recipe.variant, "steps", 0) <= SMOKE_STEPS
    assert all(math.isfinite(v) for v in metrics["history"][0]["loss"].values())
    on_disk = json.loads((run_dir / "metrics.json").read_text())
    stood_in = metrics["dataset"] not in real_here
    assert on_disk["data_stand_in"] is stood_in  # never a stand-in when the real files are present
    if stood_in:
        assert "standing in FakeData" in capsys.readouterr().err
    # A passed smoke run's folder goes at once: the shipped recipes' checkpoints (up to 2.9 GB for the
    # ResNet-50 recipe) would otherwise pile up to ~13 GB before pytest's own clean-up at the end.
    shutil.rmtree(run_dir)


@pytest.mark.parametrize(("name", "twin"), sorted(SAME_PATH_AS.items()))
def test_a_recipe_not_smoked_is_valid_and_differs_from_its_smoked_twin_only_in_size(name, twin, registry):
    recipe, other = (load_recipe(REPO / "recipes" / f"{stem}.toml", registry) for stem in (name, twin))
    plugin = [registry.get("backbone", r.model.backbone.name).source.plugin for r in (recipe, other)]
    assert recipe.variant.name == other.variant.name and plugin[0] == plugin[1]  # one backbone plugin
    assert (REPO / "recipes" / f"{twin}.toml") in SMOKED


def test_without_smoke_missing_data_is_an_error_not_a_stand_in(registry, data_root, tmp_path):
    with pytest.raises(DataUnavailable, match="CIFAR10 is not under"):
        run(REPO / "recipes" / "cifar10_dt.toml", registry, overrides=["data.download=false"], out_dir=tmp_path / "run")


def test_smoke_stand_in_has_the_shape_and_classes_of_the_missing_data(registry, data_root, tmp_path):
    from noprop_core.engine.training.experiment import build_experiment
    from noprop_core.engine.training.smoke import smoke_recipe

    recipe = smoke_recipe(load_recipe(REPO / "recipes" / "cifar100_dt.toml", registry, ["data.download=false"]))
    messages = []
    experiment = build_experiment(recipe, registry, stand_in=True, notify=messages.append)
    splits = experiment.splits
    assert experiment.data_stand_in and splits.image_shape == (3, 32, 32) and splits.num_classes == 100
    assert set(splits.train_labels.tolist()) == set(range(100))  # every class present
    assert any("FakeData (3×32×32, 100 classes)" in m for m in messages)
