"""Small builders shared by tests."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from conftest import REPO
from noprop_core.engine.training.experiment import build_experiment
from noprop_core.engine.training.progress import Progress
from noprop_core.engine.training.trainer import Trainer
from noprop_core.model.variant import VariantParts
from noprop_core.plugin.tracker import Tracker
from noprop_core.recipe.loading import load_recipe
from noprop_plugins.backbones.cnn import CnnConfig
from noprop_plugins.backbones.cnn import build as build_cnn
from noprop_plugins.embeddings.onehot.embedding import OneHotEmbedding
from noprop_plugins.heads.softmax.head import SoftmaxHead
from noprop_plugins.schedules.cosine.schedule import CosineSchedule
from noprop_plugins.variants.dt import DTConfig
from noprop_plugins.variants.dt.model import NoPropDT

NOPROP = str(Path(sys.executable).parent / "noprop")  # the installed command, run as a user would


# The default recipe trains its blocks fused in the simultaneous order; these overrides give
# Algorithm 1 (one block per minibatch in turn) instead.
ALGORITHM_1 = ("variant.order=sequential", "variant.fused=false")


def digits_trainer(registry, *overrides) -> Trainer:
    """A trainer for the default recipe on the first 256 digits, with ``overrides`` (--set syntax)."""
    recipe = load_recipe(REPO / "recipes" / "digits_dt.toml", registry, ["data.subset=256", *overrides])
    return Trainer(build_experiment(recipe, registry), Progress(), Tracker())


def small_dt(timesteps: int = 4, num_classes: int = 10, image_shape=(1, 8, 8), **config) -> NoPropDT:
    parts = VariantParts(
        embedding=OneHotEmbedding(num_classes),
        schedule=CosineSchedule(),
        image_shape=image_shape,
        num_classes=num_classes,
        make_block=lambda spec: build_cnn(CnnConfig(name="cnn"), spec),
        make_head=lambda: SoftmaxHead(num_classes, num_classes),
    )
    return NoPropDT(DTConfig(name="dt", timesteps=timesteps, **config), parts)


def random_batch(size: int = 16, num_classes: int = 10, image_shape=(1, 8, 8)):
    return torch.randn(size, *image_shape), torch.randint(0, num_classes, (size,))


# Per-epoch fields that measure the machine (time, memory), not the computation.
MEASURED = ("train_seconds", "examples_per_second", "peak_memory_bytes")


def deterministic_history(history: list[dict]) -> list[dict]:
    """A run's history without the measured fields: equal across identical runs on CPU."""
    return [{k: v for k, v in record.items() if k not in MEASURED} for record in history]


def install_distribution(folder: Path, name: str, module: str, source: str) -> None:
    """A real distribution on ``folder`` (dist-info with a ``noprop`` entry point + its module),
    as pip would install it; put ``folder`` on sys.path or PYTHONPATH to load it."""
    import textwrap

    (folder / f"{module}.py").write_text(textwrap.dedent(source))
    info = folder / f"{name.replace('-', '_')}-1.2.dist-info"  # as wheels name it
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.2\n")
    (info / "entry_points.txt").write_text(f"[noprop]\n{module} = {module}\n")
