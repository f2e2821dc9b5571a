"""`prototype`: a trainable W_Embed in pixel space, d = C·H·W (the paper's "prototype").

Init ``prototype`` (default): for each class, the training image whose median Euclidean
distance to the other images of its class is smallest (a medoid by the median). To stay fast
on large data sets it is computed on the first ``per_class_sample`` training images of each
class (default 512: on CIFAR-100 that is 100 distance matrices of 500 × 500). Inits
``orthogonal`` and ``random`` are as in `learned` (unit-norm rows) for comparison.
The `cnn` and `resnet*` backbones reshape such embeddings to images (Figure 6 caption).
"""

from __future__ import annotations

import math

import attrs
import torch
from torch import Tensor

from noprop_core import (
    LabelEmbeddingConfig,
    NopropError,
    TrainableEmbedding,
    at_least,
    hookimpl,
    initial_embedding_weight,
    one_of,
)


@attrs.frozen(kw_only=True)
class PrototypeConfig(LabelEmbeddingConfig):
    init: str = attrs.field(default="prototype", validator=one_of("prototype", "orthogonal", "random"))
    per_class_sample: int = attrs.field(default=512, validator=at_least(2))


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
    return TrainableEmbedding(weight)


@hookimpl
def noprop_register_label_embeddings(registry):
    registry.add(
        "prototype",
        build,
        config=PrototypeConfig,
        description="trainable, d = image size, init: per-class median medoid",
    )
