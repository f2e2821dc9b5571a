"""The plugins a variant is built from, made from their configs: one assembly for the engine
(from a recipe's ``[model]``) and the contract kit (from its test parts)."""

from __future__ import annotations

import functools

import torch
from torch import Tensor

from noprop_core.model.variant import VariantParts
from noprop_core.plugin.config import BackboneConfig, HeadConfig, LabelEmbeddingConfig, ScheduleConfig
from noprop_core.plugin.registry import Registry


def variant_parts(
    registry: Registry,
    *,
    backbone: BackboneConfig,
    embedding: LabelEmbeddingConfig,
    schedule: ScheduleConfig | None,
    head: HeadConfig,
    image_shape: tuple[int, int, int],
    train_images: Tensor,
    train_labels: Tensor,
    num_classes: int,
) -> VariantParts:
    """The label embedding and the schedule built (no schedule: None), the backbone and the head
    as factories the variant calls for each block and for its head."""
    built = registry.build(
        "label_embedding",
        embedding,
        num_classes=num_classes,
        image_shape=image_shape,
        train_images=train_images,
        train_labels=train_labels,
        expect=torch.nn.Module,
    )
    return VariantParts(
        embedding=built,
        schedule=None if schedule is None else registry.build("schedule", schedule, expect=torch.nn.Module),
        image_shape=image_shape,
        num_classes=num_classes,
        make_block=functools.partial(registry.get("backbone", backbone.name).factory, backbone),
        make_head=functools.partial(
            registry.build, "head", head, embedding=built, num_classes=num_classes, expect=torch.nn.Module
        ),
    )
