"""The papers' published numbers, as data, with where they come from.

Each entry is keyed by the papers' own names of its parts — data set ("MNIST"), method
("NoProp-DT"), label embedding ("one-hot", "dim=20", "prototype"), block network, output head —
which plugins declare for their settings (``PluginConfig.paper_label``): the core holds no plugin
names, and a third-party plugin that reproduces a published configuration says so itself.

NoProp — Li, Teh & Pascanu, "NoProp: Training Neural Networks without Back-propagation or
Forward-propagation", arXiv:2503.24322, Table 1 (train and test accuracy %, mean ± standard
error over 3 seeds × 5 inference runs) and Table 3 (epochs), all with the paper's CNN and head.

DiffusionBlocks — Shing, Koyama & Akiba, arXiv:2506.14202: Table 6 (CIFAR-100, NoProp's block,
B = 3, γ = 0.1, 1000 epochs) and Table 1 (CIFAR-100, a ViT of 12 layers, width 128, 4 heads,
patch 4, as B = 3 blocks of 4 layers against the whole ViT trained end to end; 500 epochs). The
paper gives no standard errors there; they count as 0.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from noprop_core.recipe.schema import Recipe

SOURCE = "Li, Teh & Pascanu 2025, arXiv:2503.24322, Table 1"
DATASETS = ("MNIST", "CIFAR-10", "CIFAR-100")
# The block network and head every Table 1 row used (Figure 6).
PAPER_BACKBONE, PAPER_HEAD = "CNN (Figure 6)", "linear + softmax"


@attrs.frozen
class PaperValues:
    """One Table 1 cell pair: train and test accuracy, each a mean ± standard error (%)."""

    train: float | None
    train_se: float | None
    test: float
    test_se: float


@attrs.frozen
class PaperReference:
    """What a recipe is compared with: the published values, the budget they took, the source."""

    values: PaperValues
    epochs: int
    source: str


DIFFUSION_BLOCKS_SOURCE = "Shing, Koyama & Akiba 2025, arXiv:2506.14202"


# Table 1 (every row the paper reports for the three data sets), as (train mean, train se, test mean, test se) per data set, in the order MNIST, CIFAR-10, CIFAR-100.
_ROWS: dict[tuple[str, str], tuple[tuple[float, float, float, float], ...]] = {
    ("Backprop", "one-hot"): ((100.0, 0.0, 99.46, 0.06), (99.98, 0.01, 79.92, 0.14), (98.63, 1.34, 45.85, 2.07)),
    ("Backprop", "dim=20"): ((99.99, 0.0, 99.43, 0.03), (99.96, 0.02, 79.3, 0.52), (94.28, 7.43, 46.57, 0.87)),
    ("Backprop", "prototype"): ((99.99, 0.01, 99.44, 0.05), (99.97, 0.01, 79.58, 0.44), (99.19, 0.71, 47.8, 0.19)),
    ("NoProp-DT", "one-hot"): ((99.92, 0.01, 99.47, 0.05), (95.02, 0.19, 79.25, 0.28), (84.97, 0.67, 45.93, 0.46)),
    ("NoProp-DT", "dim=20"): ((99.93, 0.01, 99.49, 0.04), (94.95, 0.09, 79.12, 0.37), (83.25, 0.39, 45.19, 0.22)),
    ("NoProp-DT", "prototype"): ((99.97, 0.0, 99.54, 0.04), (97.23, 0.11, 80.54, 0.2), (90.7, 0.14, 46.06, 0.25)),
    ("Adjoint", "one-hot"): ((98.7, 0.13, 98.62, 0.14), (70.64, 0.49, 66.78, 0.76), (26.72, 0.81, 25.03, 0.7)),
    ("NoProp-CT", "one-hot"): ((97.88, 0.61, 97.84, 0.71), (97.31, 0.84, 73.35, 0.55), (75.1, 3.43, 33.66, 0.5)),
    ("NoProp-CT", "dim=20"): ((97.7, 0.42, 97.7, 0.51), (94.88, 3.08, 71.77, 2.47), (74.22, 2.33, 33.99, 1.08)),
    ("NoProp-CT", "prototype"): ((97.18, 1.02, 97.17, 0.94), (86.2, 7.34, 66.54, 3.63), (40.88, 10.72, 21.31, 4.17)),
    ("NoProp-FM", "one-hot"): ((99.97, 0.0, 99.21, 0.09), (98.46, 0.4, 73.14, 0.9), (12.69, 10.4, 6.38, 4.9)),
    ("NoProp-FM", "dim=20"): ((99.99, 0.0, 99.29, 0.05), (99.49, 0.15, 73.5, 0.28), (83.49, 4.62, 31.14, 0.52)),
    ("NoProp-FM", "prototype"): ((99.27, 0.09, 98.52, 0.16), (99.8, 0.03, 75.18, 0.57), (96.37, 1.09, 37.57, 0.32)),
}

TABLE_1: dict[tuple[str, str, str], PaperValues] = {
    (dataset, variant, embedding): PaperValues(*values)
    for (variant, embedding), per_dataset in _ROWS.items()
    for dataset, values in zip(DATASETS, per_dataset)
}

# Table 3: training epochs per data set.
EPOCHS: dict[tuple[str, str], int] = {
    (dataset, variant): epochs
    for variant, per_dataset in {
        "Backprop": (100, 150, 150),
        "NoProp-DT": (100, 150, 150),
        "Adjoint": (2, 4, 4),
        "NoProp-CT": (100, 500, 1000),
        "NoProp-FM": (100, 500, 1000),
    }.items()
    for dataset, epochs in zip(DATASETS, per_dataset)
}


def labels(recipe: Recipe) -> dict[str, str | None]:
    """The papers' names of a recipe's parts, as its plugins declare them."""
    model = recipe.model
    return {
        "dataset": recipe.data.paper_label(),
        "method": recipe.variant.paper_label(),
        "embedding": model.embedding.paper_label(),
        "backbone": model.backbone.paper_label(),
        "head": model.head.paper_label(),
    }


def paper_values(recipe: Recipe) -> PaperValues | None:
    """Table 1's values for a recipe's configuration (the paper's CNN and head, one of its
    methods and embeddings), or None when the configuration is not one the paper ran."""
    return _table_1(labels(recipe))


def _table_1(names: dict[str, str | None]) -> PaperValues | None:
    dataset, method, embedding = names["dataset"], names["method"], names["embedding"]
    if (names["backbone"], names["head"]) != (PAPER_BACKBONE, PAPER_HEAD) or not (dataset and method and embedding):
        return None
    return TABLE_1.get((dataset, method, embedding))


def paper_accuracy(recipe: Recipe) -> float | None:
    """Table 1's test accuracy for a recipe's configuration (see ``paper_values``)."""
    values = paper_values(recipe)
    return None if values is None else values.test


# The DiffusionBlocks paper's CIFAR-100 settings: (method, block network) -> (test %, epochs, table).
DIFFUSION_BLOCKS: dict[tuple[str, str], tuple[float, int, str]] = {
    ("DiffusionBlocks (B = 3, γ = 0.1)", PAPER_BACKBONE): (46.88, 1000, "Table 6"),
    ("DiffusionBlocks (B = 3, γ = 0.05)", "ViT (depth 4, width 128, 4 heads, patch 4, label as [CLS], adaLN-Zero)"): (
        59.30,
        500,
        "Table 1",
    ),
    ("end-to-end classifier", "ViT (depth 12, width 128, 4 heads, patch 4, label token)"): (60.25, 500, "Table 1"),
}


def diffusion_blocks_reference(recipe: Recipe) -> PaperReference | None:
    """The DiffusionBlocks paper's value for a recipe that is one of its CIFAR-100 settings."""
    return _diffusion_blocks(labels(recipe))


def _diffusion_blocks(names: dict[str, str | None]) -> PaperReference | None:
    method, backbone = names["method"], names["backbone"]
    entry = DIFFUSION_BLOCKS.get((method, backbone)) if method and backbone else None
    if names["dataset"] != "CIFAR-100" or entry is None:
        return None
    test, epochs, table = entry
    return PaperReference(PaperValues(None, None, test, 0.0), epochs, f"{DIFFUSION_BLOCKS_SOURCE}, {table}")


def paper_reference(recipe: Recipe) -> PaperReference | None:
    """The published value a recipe is compared with, from either paper, or None."""
    names = labels(recipe)  # each plugin asked once
    values, dataset, method = _table_1(names), names["dataset"], names["method"]
    if values is not None and dataset and method:
        return PaperReference(values, EPOCHS[(dataset, method)], SOURCE)
    return _diffusion_blocks(names)
