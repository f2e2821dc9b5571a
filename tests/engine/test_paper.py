"""The published numbers a recipe is compared with are found through the names its plugins
declare (``paper_label``), never through plugin names in the core."""

from __future__ import annotations

import attrs
import pytest

from noprop_core.engine.report.paper import TABLE_1, paper_accuracy, paper_reference
from noprop_core.plugin.config import VariantConfig
from noprop_core.plugin.manager import load_registry
from noprop_core.recipe.loading import load_recipe
from noprop_core.recipe.shipped import shipped_dir

REGISTRY = load_registry()


def recipe(name: str, *overrides: str):
    return load_recipe(shipped_dir() / f"{name}.toml", REGISTRY, list(overrides))


def test_table_1_has_every_row_of_the_paper():
    assert len(TABLE_1) == 3 * 4 * 3 + 3  # 4 methods × 3 embeddings × 3 data sets, + the adjoint's one-hot row


@pytest.mark.parametrize(
    ("name", "overrides", "expected"),
    [
        ("cifar100_fm_dim20", (), 31.14),
        ("cifar100_fm_dim20", ("model.embedding.dim=21",), None),
        ("cifar100_fm_dim20", ("model.embedding.fixed_norms=true",), None),
        ("cifar100_fm_prototype", (), 37.57),
        ("cifar100_fm_prototype", ('model.embedding.init="orthogonal"',), None),
        ("cifar10_dt", (), 79.25),
        ("cifar10_dt", ('model.backbone={name="resnet18"}',), None),
        ("cifar10_dt", ('model.head={name="radial"}',), None),
        ("mnist_ct", (), 97.84),
        ("mnist_ct", ('variant.target="noise"',), None),  # the paper predicts u_y
        ("mnist_adjoint", (), 98.62),
        ("digits_dt", (), None),
    ],
)
def test_paper_values_follow_the_declared_names(name, overrides, expected):
    assert paper_accuracy(recipe(name, *overrides)) == expected


@pytest.mark.parametrize(
    ("name", "overrides", "expected"),
    [
        ("cifar100_diffusion_blocks", (), (46.88, 1000)),
        ("cifar100_diffusion_blocks", ("variant.overlap=0.05",), None),
        ("cifar100_diffusion_blocks_vit", (), (59.30, 500)),
        ("cifar100_diffusion_blocks_vit", ("model.backbone.depth=5",), None),
        ("cifar100_vit_backprop", (), (60.25, 500)),
        ("cifar100_dt", (), (45.93, 150)),
        ("cifar100_ct", (), (33.66, 1000)),
    ],
)
def test_references_give_the_value_and_the_budget(name, overrides, expected):
    reference = paper_reference(recipe(name, *overrides))
    assert (None if reference is None else (reference.values.test, reference.epochs)) == expected


def test_a_third_party_variant_that_declares_a_papers_name_is_compared_with_it():
    """Nothing but the declared name matters: a variant of any plugin name that says it is
    NoProp-DT is compared with NoProp-DT's row."""

    @attrs.frozen(kw_only=True)
    class MyDT(VariantConfig):
        def paper_label(self) -> str:
            return "NoProp-DT"

    shipped = recipe("cifar10_dt")
    mine = attrs.evolve(shipped, variant=MyDT(name="my_dt"))
    assert paper_accuracy(mine) == 79.25
    assert paper_reference(mine).epochs == 150
