"""The torch part of the plugin in this folder (see its ``__init__``)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from noprop_core import (
    NopropError,
    TrainableEmbedding,
    initial_embedding_weight,
)

from . import PrototypeConfig


def median_medoids(images: Tensor, labels: Tensor, num_classes: int, per_class_sample: int) -> Tensor:
    """Row c: the image of class c (among its first ``per_class_sample``) with the smallest
    median distance to the others of the sample."""
    flat = images.reshape(len(images), -1).float()
    rows = []
    for label in range(num_classes):
        members = flat[labels == label][:per_class_sample]
        if len(members) == 0:
            raise NopropError(f"prototype embedding: class {label} has no training images")
        if len(members) == 1:
            rows.append(members[0])
            continue
        distances = torch.cdist(members[None], members[None])[0]
        # The diagonal (distance to itself, 0) is not one of "the others".
        distances.fill_diagonal_(float("nan"))
        rows.append(members[distances.nanmedian(dim=1).values.argmin()])
    return torch.stack(rows)


def build(config: PrototypeConfig, *, num_classes: int, image_shape, train_images, train_labels, **_context):
    dim = math.prod(image_shape)
    if config.init == "prototype":
        weight = median_medoids(train_images.cpu(), train_labels.cpu(), num_classes, config.per_class_sample)
    else:
        weight = initial_embedding_weight(num_classes, dim, config.init)
    return TrainableEmbedding(weight, config.fixed_norms)
