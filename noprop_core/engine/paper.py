"""The papers' published numbers, as data, with where they come from.

NoProp — Li, Teh & Pascanu, "NoProp: Training Neural Networks without Back-propagation or
Forward-propagation", arXiv:2503.24322, Table 1 (train and test accuracy %, mean ±
standard error over 3 seeds × 5 inference runs) and Table 3 (epochs). Keys use noprop's names: data set, variant and
embedding ("onehot", "dim20" = `learned` with dim 20, "prototype"), all with the paper's CNN.

DiffusionBlocks — Shing, Koyama & Akiba, arXiv:2506.14202: Table 6 (CIFAR-100, NoProp's block,
B = 3, γ = 0.1, 1000 epochs) and Table 1 (CIFAR-100, a ViT of 12 layers, width 128, 4 heads,
patch 4, as B = 3 blocks of 4 layers against the whole ViT trained end to end; 500 epochs). The
paper gives no standard errors there; they count as 0.
"""

from __future__ import annotations

import attrs

SOURCE = "Li, Teh & Pascanu 2025, arXiv:2503.24322, Table 1"
DATASETS = ("mnist", "cifar10", "cifar100")


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
    ("backprop", "onehot"): ((100.0, 0.0, 99.46, 0.06), (99.98, 0.01, 79.92, 0.14), (98.63, 1.34, 45.85, 2.07)),
    ("backprop", "dim20"): ((99.99, 0.0, 99.43, 0.03), (99.96, 0.02, 79.3, 0.52), (94.28, 7.43, 46.57, 0.87)),
    ("backprop", "prototype"): ((99.99, 0.01, 99.44, 0.05), (99.97, 0.01, 79.58, 0.44), (99.19, 0.71, 47.8, 0.19)),
    ("dt", "onehot"): ((99.92, 0.01, 99.47, 0.05), (95.02, 0.19, 79.25, 0.28), (84.97, 0.67, 45.93, 0.46)),
    ("dt", "dim20"): ((99.93, 0.01, 99.49, 0.04), (94.95, 0.09, 79.12, 0.37), (83.25, 0.39, 45.19, 0.22)),
    ("dt", "prototype"): ((99.97, 0.0, 99.54, 0.04), (97.23, 0.11, 80.54, 0.2), (90.7, 0.14, 46.06, 0.25)),
    ("adjoint", "onehot"): ((98.7, 0.13, 98.62, 0.14), (70.64, 0.49, 66.78, 0.76), (26.72, 0.81, 25.03, 0.7)),
    ("ct", "onehot"): ((97.88, 0.61, 97.84, 0.71), (97.31, 0.84, 73.35, 0.55), (75.1, 3.43, 33.66, 0.5)),
    ("ct", "dim20"): ((97.7, 0.42, 97.7, 0.51), (94.88, 3.08, 71.77, 2.47), (74.22, 2.33, 33.99, 1.08)),
    ("ct", "prototype"): ((97.18, 1.02, 97.17, 0.94), (86.2, 7.34, 66.54, 3.63), (40.88, 10.72, 21.31, 4.17)),
    ("fm", "onehot"): ((99.97, 0.0, 99.21, 0.09), (98.46, 0.4, 73.14, 0.9), (12.69, 10.4, 6.38, 4.9)),
    ("fm", "dim20"): ((99.99, 0.0, 99.29, 0.05), (99.49, 0.15, 73.5, 0.28), (83.49, 4.62, 31.14, 0.52)),
    ("fm", "prototype"): ((99.27, 0.09, 98.52, 0.16), (99.8, 0.03, 75.18, 0.57), (96.37, 1.09, 37.57, 0.32)),
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
        "backprop": (100, 150, 150), "dt": (100, 150, 150), "adjoint": (2, 4, 4), "ct": (100, 500, 1000), "fm": (100, 500, 1000),
    }.items()
    for dataset, epochs in zip(("mnist", "cifar10", "cifar100"), per_dataset)
}  # fmt: skip


def paper_embedding(recipe: dict) -> str | None:
    """The Table 1 column of a resolved recipe's embedding, or None if it is not one of them."""
    embedding = recipe["model"]["embedding"]
    if embedding["name"] == "onehot":
        return "onehot"
    if embedding["name"] == "learned" and embedding.get("dim") == 20:
        return "dim20"
    if embedding["name"] == "prototype" and embedding.get("init", "prototype") == "prototype":
        return "prototype"
    return None


def paper_values(recipe: dict) -> PaperValues | None:
    """Table 1's values for the configuration of a resolved recipe (paper CNN, softmax head,
    the paper's prediction target), or None when the configuration is not one the paper ran."""
    if (
        recipe["model"]["backbone"]["name"] != "cnn"
        or recipe["model"].get("head", {}).get("name", "softmax") != "softmax"
        or recipe["variant"].get("target", "embedding") != "embedding"  # the paper predicts u_y
    ):
        return None
    embedding = paper_embedding(recipe)
    return TABLE_1.get((recipe["data"]["name"], recipe["variant"]["name"], embedding)) if embedding else None


def paper_accuracy(recipe: dict) -> float | None:
    """Table 1's test accuracy for the configuration of a resolved recipe (see ``paper_values``)."""
    values = paper_values(recipe)
    return None if values is None else values.test


def _vit(recipe: dict, depth: int) -> bool:
    """The DiffusionBlocks paper's ViT: patch 4, width 128, 4 heads, the label as a token."""
    backbone = recipe["model"]["backbone"]
    wanted = {"name": "vit", "patch_size": 4, "width": 128, "heads": 4, "depth": depth, "label_token": True}
    return all(backbone.get(key) == value for key, value in wanted.items())


def diffusion_blocks_reference(recipe: dict) -> PaperReference | None:
    """The DiffusionBlocks paper's value for a resolved recipe that is one of its CIFAR-100 settings."""
    variant = recipe["variant"]
    if recipe["data"]["name"] != "cifar100":
        return None
    if variant["name"] == "diffusion_blocks" and variant.get("blocks") == 3:
        if recipe["model"]["backbone"]["name"] == "cnn" and variant.get("overlap") == 0.1:
            return PaperReference(PaperValues(None, None, 46.88, 0.0), 1000, f"{DIFFUSION_BLOCKS_SOURCE}, Table 6")
        if _vit(recipe, depth=4) and variant.get("overlap") == 0.05:
            return PaperReference(PaperValues(None, None, 59.30, 0.0), 500, f"{DIFFUSION_BLOCKS_SOURCE}, Table 1")
    if variant["name"] == "classifier" and _vit(recipe, depth=12):
        return PaperReference(PaperValues(None, None, 60.25, 0.0), 500, f"{DIFFUSION_BLOCKS_SOURCE}, Table 1")
    return None


def paper_reference(recipe: dict) -> PaperReference | None:
    """The published value a resolved recipe is compared with, from either paper, or None."""
    values = paper_values(recipe)
    if values is not None:
        epochs = EPOCHS[(recipe["data"]["name"], recipe["variant"]["name"])]
        return PaperReference(values, epochs, SOURCE)
    return diffusion_blocks_reference(recipe)
