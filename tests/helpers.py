"""Small builders shared by tests."""

from __future__ import annotations

import torch

from noprop_core.variant import VariantParts
from noprop_plugins.backbones.cnn import CnnConfig
from noprop_plugins.backbones.cnn import build as build_cnn
from noprop_plugins.embeddings.onehot import OneHotEmbedding
from noprop_plugins.schedules.cosine import CosineSchedule
from noprop_plugins.variants.dt import DTConfig, NoPropDT


def small_dt(timesteps: int = 4, num_classes: int = 10, image_shape=(1, 8, 8), **config) -> NoPropDT:
    parts = VariantParts(
        embedding=OneHotEmbedding(num_classes),
        schedule=CosineSchedule(),
        image_shape=image_shape,
        num_classes=num_classes,
        make_block=lambda spec: build_cnn(CnnConfig(name="cnn"), spec),
    )
    return NoPropDT(DTConfig(name="dt", timesteps=timesteps, **config), parts)


def random_batch(size: int = 16, num_classes: int = 10, image_shape=(1, 8, 8)):
    return torch.randn(size, *image_shape), torch.randint(0, num_classes, (size,))


# Per-epoch fields that measure the machine (time, memory), not the computation.
MEASURED = ("train_seconds", "examples_per_second", "peak_memory_bytes")


def deterministic_history(history: list[dict]) -> list[dict]:
    """A run's history without the measured fields: equal across identical runs on CPU."""
    return [{k: v for k, v in record.items() if k not in MEASURED} for record in history]
