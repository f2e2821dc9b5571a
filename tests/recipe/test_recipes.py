"""Recipe validation: every shipped recipe is valid; bad ones fail with the right one-line message."""

from __future__ import annotations

import pytest

from conftest import REPO
from noprop_core.errors import RecipeError
from noprop_core.plugin.manager import load_registry
from noprop_core.recipe.loading import dump_recipe, load_recipe, parse_override

RECIPES = sorted((REPO / "recipes").glob("*.toml"))

VALID = """
[data]
name = "digits"
[model.backbone]
name = "cnn"
[model.embedding]
name = "onehot"
[model.schedule]
name = "cosine"
[variant]
name = "dt"
[train]
epochs = 2
"""


def test_every_table_1_row_and_the_extras_are_shipped():
    table_1 = {
        f"{data}_{variant}{'' if embedding == 'onehot' else '_' + embedding}.toml"
        for data in ("mnist", "cifar10", "cifar100")
        for variant in ("dt", "ct", "fm", "backprop")
        for embedding in ("onehot", "dim20", "prototype")
    }
    extras = {
        "mnist_adjoint.toml",
        "cifar10_adjoint.toml",
        "cifar100_adjoint.toml",
        "bloodmnist_dt.toml",
        "bloodmnist_ct.toml",
        "cifar10_dt_resnet18.toml",
        "cifar100_dt_resnet50.toml",
        "digits_dt.toml",
    }
    assert {p.name for p in RECIPES} >= table_1 | extras


@pytest.mark.parametrize(
    ("stem", "dataset", "variant", "embedding", "epochs", "optimizer", "steps"),
    [
        ("cifar100_dt", "cifar100", "dt", "onehot", 150, "adamw", 10),
        ("cifar10_dt_dim20", "cifar10", "dt", "learned", 150, "adamw", 10),
        ("cifar100_fm_prototype", "cifar100", "fm", "prototype", 1000, "adam", 1000),
        ("cifar10_ct", "cifar10", "ct", "onehot", 500, "adam", 1000),
        ("cifar100_backprop", "cifar100", "backprop", "onehot", 150, "adamw", 10),
        ("cifar10_adjoint", "cifar10", "adjoint", "onehot", 4, "adamw", 1000),
    ],
)
def test_derived_recipes_have_table_3_settings(stem, dataset, variant, embedding, epochs, optimizer, steps, registry):
    recipe = load_recipe(REPO / "recipes" / f"{stem}.toml", registry)
    assert (recipe.data.name, recipe.variant.name, recipe.model.embedding.name) == (dataset, variant, embedding)
    assert (recipe.train.epochs, recipe.train.optimizer, recipe.train.batch_size) == (epochs, optimizer, 128)
    assert (recipe.train.lr, recipe.train.weight_decay) == (1e-3, 1e-3)
    assert getattr(recipe.variant, "timesteps", getattr(recipe.variant, "steps", None)) == steps
    if embedding == "learned":
        assert recipe.model.embedding.dim == 20


def test_extends_merges_tables_and_replaces_a_section_that_names_another_plugin(tmp_path, registry):
    (tmp_path / "base.toml").write_text(VALID.replace('name = "cnn"', 'name = "cnn"\ndropout = 0.3'))
    (tmp_path / "child.toml").write_text(
        'extends = "base.toml"\n[train]\nlr = 0.01\n[model.backbone]\ndropout = 0.1\n'
        '[model.embedding]\nname = "learned"\ndim = 7\n'
    )
    recipe = load_recipe(tmp_path / "child.toml", registry)
    assert (recipe.train.epochs, recipe.train.lr) == (2, 0.01)  # merged key by key
    assert recipe.model.backbone.dropout == 0.1
    assert (recipe.model.embedding.name, recipe.model.embedding.dim) == ("learned", 7)


def test_extends_problems_are_one_line_each(tmp_path, registry):
    (tmp_path / "a.toml").write_text('extends = "b.toml"\n')
    (tmp_path / "b.toml").write_text('extends = "a.toml"\n')
    with pytest.raises(
        RecipeError, match=r"b\.toml: extends: recipes extend each other in a circle \(a.toml -> b.toml -> a.toml\)"
    ):
        load_recipe(tmp_path / "a.toml", registry)
    (tmp_path / "c.toml").write_text('extends = "missing.toml"\n')
    with pytest.raises(RecipeError, match=r"c\.toml: extends: no base recipe 'missing.toml'"):
        load_recipe(tmp_path / "c.toml", registry)
    (tmp_path / "d.toml").write_text("extends = 3\n")
    with pytest.raises(RecipeError, match=r"d\.toml: extends: expected the file name of a base recipe, got 3"):
        load_recipe(tmp_path / "d.toml", registry)


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_every_recipe_is_valid_and_says_how_to_run_it(path, registry):
    recipe = load_recipe(path, registry)
    assert path.read_text().startswith(f"# noprop run recipes/{path.name}\n")
    assert recipe.train.epochs >= 1


def test_mnist_recipe_has_the_paper_hyperparameters(registry):
    recipe = load_recipe(REPO / "recipes" / "mnist_dt.toml", registry)
    train, variant = recipe.train, recipe.variant
    assert (train.batch_size, train.optimizer, train.lr, train.weight_decay, train.epochs) == (
        128,
        "adamw",
        1e-3,
        1e-3,
        100,
    )
    # "auto": Algorithm 1 on a CPU, the fused simultaneous update on a GPU (tests/speed/test_speed_path.py)
    assert (variant.timesteps, variant.eta, variant.order) == (10, 0.1, "auto")


def _errors(tmp_path, registry, text: str, overrides=()) -> list[str]:
    path = tmp_path / "x.toml"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    with pytest.raises(RecipeError) as caught:
        load_recipe(path, registry, list(overrides))
    return [line.replace(f"{path}: ", "") for line in caught.value.lines()]


BAD = {
    "string for int": (VALID.replace("epochs = 2", 'epochs = "ten"'), "train.epochs: expected int, got 'ten'"),
    "float for int": (VALID.replace("epochs = 2", "epochs = 2.5"), "train.epochs: expected int, got 2.5"),
    "bool for int": (VALID.replace("epochs = 2", "epochs = true"), "train.epochs: expected int, got True"),
    "negative": (VALID.replace("epochs = 2", "epochs = -1"), "train.epochs: expected a number in [1, 1000000], got -1"),
    "unknown key": (
        VALID.replace("epochs = 2", "epochz = 2"),
        "train.epochz: unknown key (allowed here: batch_size, epochs",
    ),
    "plugin key typo": (
        VALID.replace('name = "cnn"', 'name = "cnn"\ndropuot = 0.1'),
        "model.backbone.dropuot: unknown key",
    ),
    "plugin value": (
        VALID.replace('name = "cnn"', 'name = "cnn"\ndropout = 2.0'),
        "model.backbone.dropout: expected a number in [0.0, 0.9], got 2.0",
    ),
    "unknown plugin": (
        VALID.replace('name = "dt"', 'name = "dtt"'),
        f"variant.name: unknown variant 'dtt' (available: {', '.join(load_registry().names('variant'))})",
    ),
    "missing section": (VALID.replace("[train]\nepochs = 2", ""), "train: missing required key"),
    "missing name": (VALID.replace('name = "onehot"', ""), "model.embedding.name: missing required key"),
    "not a table": (
        'variant = "dt"\n' + VALID.replace('[variant]\nname = "dt"', ""),
        "variant: expected a table with a 'name' key, got 'dt'",
    ),
    "bad choice": (VALID + 'order = "random"\n', "train.order: unknown key"),
    "bad order": (
        VALID.replace('name = "dt"', 'name = "dt"\norder = "random"'),
        "variant.order: expected one of 'auto', 'sequential', 'simultaneous', got 'random'",
    ),
    "bad placement": (
        VALID.replace("[data]", '[data]\nplacement = "gpu"'),
        "data.placement: expected one of 'auto', 'device', 'host', got 'gpu'",
    ),
    "unknown top-level": (VALID.replace("[data]", "sed = 1\n[data]"), "sed: unknown key"),
    "not toml": ("[train\nepochs = 2", "not valid TOML"),
    "not utf-8": (b"\xff\xfe[train]", "not valid TOML"),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_recipe_is_rejected_with_the_expected_message(case, tmp_path, registry):
    text, expected = BAD[case]
    errors = _errors(tmp_path, registry, text)
    assert any(expected in line for line in errors), errors
    assert all("\n" not in line for line in errors)


def test_all_errors_are_reported_together(tmp_path, registry):
    text = VALID.replace("epochs = 2", 'epochs = "ten"\nlr = -1.0\nextra = 1').replace(
        'name = "dt"', 'name = "dt"\neta = "x"'
    )
    errors = _errors(tmp_path, registry, text)
    assert len(errors) == 4, errors
    assert {e.split(":")[0] for e in errors} == {"train.epochs", "train.lr", "train.extra", "variant.eta"}


def test_missing_file_is_one_line(tmp_path, registry):
    with pytest.raises(RecipeError, match="no such file"):
        load_recipe(tmp_path / "absent.toml", registry)


def test_overrides_apply_before_validation(tmp_path, registry):
    path = tmp_path / "ok.toml"
    path.write_text(VALID)
    recipe = load_recipe(path, registry, ["train.epochs=3", "model.backbone.dropout=0.1", "data.name=digits", "seed=9"])
    assert (recipe.train.epochs, recipe.model.backbone.dropout, recipe.seed) == (3, 0.1, 9)
    assert _errors(tmp_path, registry, VALID, ["train.epochs=ten"]) == ["train.epochs: expected int, got 'ten'"]
    assert "--set: expected KEY=VALUE" in _errors(tmp_path, registry, VALID, ["train.epochs"])[0]
    assert "model.backbone.width: unknown key" in _errors(tmp_path, registry, VALID, ["model.backbone.width=3"])[0]


def test_parse_override_reads_toml_values_and_falls_back_to_strings():
    assert parse_override("a.b=3") == (["a", "b"], 3)
    assert parse_override("a=0.5") == (["a"], 0.5)
    assert parse_override("a=true") == (["a"], True)
    assert parse_override('a="x y"') == (["a"], "x y")
    assert parse_override("a=mnist") == (["a"], "mnist")


def test_resolved_recipe_round_trips(tmp_path, registry):
    recipe = load_recipe(REPO / "recipes" / "digits_dt.toml", registry, ["data.root=/somewhere"])
    path = tmp_path / "resolved.toml"
    path.write_text(dump_recipe(recipe, registry))
    assert load_recipe(path, registry) == recipe


def test_speed_options_under_train_say_where_they_moved(tmp_path, registry):
    path = tmp_path / "old.toml"
    path.write_text(VALID.replace("epochs = 2", 'epochs = 2\ncuda_graph = true\ncompile = "eager"'))
    with pytest.raises(RecipeError) as caught:
        load_recipe(path, registry)
    assert caught.value.lines() == [
        f"{path}: train.compile: moved to speed.compile (the [speed] section holds the speed options)",
        f"{path}: train.cuda_graph: moved to speed.cuda_graph (the [speed] section holds the speed options)",
    ]
    path.write_text(VALID + '[speed]\ncompile = "eager"\ncuda_graph = true\n')
    speed = load_recipe(path, registry).speed
    assert (speed.compile, speed.cuda_graph, speed.autocast) == ("eager", True, "none")


def test_the_head_is_a_plugin_section_with_a_default(tmp_path, registry):
    path = tmp_path / "head.toml"
    path.write_text(VALID)
    assert load_recipe(path, registry).model.head.name == "softmax"
    path.write_text(VALID + '[model.head]\nname = "radial"\nsigma = 0.5\n')
    assert load_recipe(path, registry).model.head.sigma == 0.5
    path.write_text(VALID + '[model.head]\nname = "softmax"\nsigma = 0.5\n')
    with pytest.raises(RecipeError, match=r"model\.head\.sigma: unknown key \(allowed here: name\)"):
        load_recipe(path, registry)
    path.write_text(VALID + '[model.head]\nname = "cosine"\n')
    with pytest.raises(RecipeError, match=r"model\.head\.name: unknown head 'cosine' \(available: radial, softmax\)"):
        load_recipe(path, registry)


def test_a_variant_that_uses_no_schedule_needs_no_schedule_section(tmp_path):
    """Variants declare the [model] parts they build from (VariantConfig.model_parts)."""
    import noprop_core as noprop
    from noprop_core.errors import RecipeError

    text = (REPO / "recipes" / "digits_fm.toml").read_text()
    start = text.index("[model.schedule]")
    end = text.index("[", start + 1)
    (tmp_path / "fm.toml").write_text(text[:start] + text[end:])
    recipe = noprop.load_recipe(tmp_path / "fm.toml")
    assert recipe.model.schedule is None and "schedule" not in recipe.variant.model_parts()
    text = (REPO / "recipes" / "digits_dt.toml").read_text()
    start = text.index("[model.schedule]")
    end = text.index("[", start + 1)
    (tmp_path / "dt.toml").write_text(text[:start] + text[end:])
    with pytest.raises(RecipeError) as missing:
        noprop.load_recipe(tmp_path / "dt.toml")
    assert str(missing.value) == (
        f"{tmp_path / 'dt.toml'}: model.schedule: missing required key (variant 'dt' uses a noise schedule)"
    )
