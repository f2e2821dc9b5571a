"""The paper's published numbers, as data, with where they come from.

Source: Li, Teh & Pascanu, "NoProp: Training Neural Networks without Back-propagation or
Forward-propagation", arXiv:2503.24322, Table 1 (test accuracy %, mean over 3 seeds × 5
inference runs) and Table 3 (epochs). Keys use noprop's names: data set, variant and
embedding ("onehot", "dim20" = `learned` with dim 20, "prototype"), all with the paper's CNN.
"""

from __future__ import annotations

SOURCE = "Li, Teh & Pascanu 2025, arXiv:2503.24322, Table 1"

TABLE_1: dict[tuple[str, str, str], float] = {}
_ROWS = {  # variant: {dataset: (one-hot, dim-20, prototype)}
    "backprop": {"mnist": (99.46, 99.43, 99.44), "cifar10": (79.92, 79.30, 79.58), "cifar100": (45.85, 46.57, 47.80)},
    "dt": {"mnist": (99.47, 99.49, 99.54), "cifar10": (79.25, 79.12, 80.54), "cifar100": (45.93, 45.19, 46.06)},
    "ct": {"mnist": (97.84, 97.70, 97.17), "cifar10": (73.35, 71.77, 66.54), "cifar100": (33.66, 33.99, 21.31)},
    "fm": {"mnist": (99.21, 99.29, 98.52), "cifar10": (73.14, 73.50, 75.18), "cifar100": (6.38, 31.14, 37.57)},
}
for _variant, _by_dataset in _ROWS.items():
    for _dataset, _values in _by_dataset.items():
        for _embedding, _value in zip(("onehot", "dim20", "prototype"), _values):
            TABLE_1[(_dataset, _variant, _embedding)] = _value
for _dataset, _value in {"mnist": 98.62, "cifar10": 66.78, "cifar100": 25.03}.items():
    TABLE_1[(_dataset, "adjoint", "onehot")] = _value

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


def paper_accuracy(recipe: dict) -> float | None:
    """Table 1's accuracy for the configuration of a resolved recipe (paper CNN, softmax head)."""
    if (
        recipe["model"]["backbone"]["name"] != "cnn"
        or recipe["model"].get("head", {}).get("name", "softmax") != "softmax"
        or recipe["variant"].get("target", "embedding") != "embedding"  # the paper predicts u_y
    ):
        return None
    embedding = paper_embedding(recipe)
    return TABLE_1.get((recipe["data"]["name"], recipe["variant"]["name"], embedding)) if embedding else None
