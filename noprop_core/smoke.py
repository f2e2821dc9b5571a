"""`noprop run --smoke`: the real code of a recipe on a few batches, in seconds.

A smoke run keeps the recipe's variant, backbone, embedding, schedule, head and tracker and
shrinks only the amount of work: one epoch that stops each unit after ``SMOKE_BATCHES``
minibatches of at most ``SMOKE_BATCH_SIZE`` examples (the data set is loaded whole, so
embeddings initialised from the training images see what a full run sees), inference and ODE steps capped at ``SMOKE_STEPS``, and
accuracy on the first ``SMOKE_EVAL_EXAMPLES`` test and training examples. The shrunk recipe is
what the run directory records.

When the recipe's data files are absent and cannot be fetched, a smoke run stands in
torchvision's ``FakeData`` of the same image shape and class count (the data set plugin says
which through ``DataUnavailable``), says so on the console and records
``"data_stand_in": true`` in metrics.json. Real data, when present, is always used.
"""

from __future__ import annotations

import attrs
import torch

from noprop_core.data import TensorSplits, standardized_splits
from noprop_core.errors import DataUnavailable
from noprop_core.recipe import Recipe

SMOKE_BATCHES = 2
SMOKE_BATCH_SIZE = 32
SMOKE_STEPS = 10
SMOKE_EVAL_EXAMPLES = 64
STAND_IN_TEST_EXAMPLES = SMOKE_EVAL_EXAMPLES


def smoke_recipe(recipe: Recipe) -> Recipe:
    batch_size = min(recipe.train.batch_size, SMOKE_BATCH_SIZE)
    variant = recipe.variant
    if "steps" in attrs.fields_dict(type(variant)):
        variant = attrs.evolve(variant, steps=min(variant.steps, SMOKE_STEPS))
    return attrs.evolve(
        recipe,
        variant=variant,
        train=attrs.evolve(recipe.train, epochs=1, batch_size=batch_size, max_batches=SMOKE_BATCHES),
        eval=attrs.evolve(
            recipe.eval,
            every=1,
            train_subset=SMOKE_EVAL_EXAMPLES,
            test_subset=SMOKE_EVAL_EXAMPLES,
            batch_size=min(recipe.eval.batch_size, SMOKE_EVAL_EXAMPLES),
        ),  # fmt: skip
    )


def stand_in_splits(missing: DataUnavailable, name: str) -> TensorSplits:
    """FakeData images shaped like the missing data set (deterministic: FakeData seeds by index).
    Labels cycle through the classes, so that every class is present (prototype embeddings
    need an image of each) whatever the class count."""
    from torchvision.datasets import FakeData
    from torchvision.transforms.functional import pil_to_tensor

    def tensors(size: int, offset: int) -> tuple[torch.Tensor, torch.Tensor]:
        fake = FakeData(
            size=size, image_size=missing.image_shape, num_classes=missing.num_classes, random_offset=offset
        )
        images = torch.stack([pil_to_tensor(image) for image, _ in fake]).float().div_(255.0)
        return images, torch.arange(size) % missing.num_classes

    train_examples = max(SMOKE_BATCHES * SMOKE_BATCH_SIZE, 4 * missing.num_classes)
    return standardized_splits(
        name, missing.num_classes, tensors(train_examples, 0), tensors(STAND_IN_TEST_EXAMPLES, 10**6)
    )
