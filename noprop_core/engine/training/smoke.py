"""`noprop run --smoke`: the real code of a recipe on a few batches, in seconds.

A smoke run keeps the recipe's variant, backbone, embedding, schedule, head and tracker and
shrinks only the amount of work: one epoch that stops each unit after ``SMOKE_BATCHES``
minibatches of at most ``SMOKE_BATCH_SIZE`` examples (the data set is loaded whole, so
embeddings initialised from the training images see what a full run sees), inference and ODE
steps capped at ``SMOKE_STEPS``, at most 2 final inference runs, one seed (the first of a
seed group), and accuracy on the first ``SMOKE_EVAL_EXAMPLES`` test and training examples. The shrunk recipe is
what the run directory records.

When the recipe's data files are absent and cannot be fetched, a smoke run stands in
torchvision's ``FakeData`` of the same image shape and class count
(``noprop_core.engine.training.stand_in``), says so on the console and records
``"data_stand_in": true`` in metrics.json. Real data, when present, is always used.
"""

from __future__ import annotations

from typing import Any

import attrs

from noprop_core.engine.training.stand_in import STAND_IN_TEST_EXAMPLES
from noprop_core.recipe.schema import Recipe

SMOKE_BATCHES = 2
SMOKE_BATCH_SIZE = 16
SMOKE_STEPS = 10
SMOKE_EVAL_EXAMPLES = STAND_IN_TEST_EXAMPLES


def smoke_recipe(recipe: Recipe) -> Recipe:
    batch_size = min(recipe.train.batch_size, SMOKE_BATCH_SIZE)
    variant, inference = recipe.variant, recipe.variant.inference()
    if inference.steps_key is not None and inference.steps is not None:  # the key the variant declares
        fewer: dict[str, Any] = {inference.steps_key: min(inference.steps, SMOKE_STEPS)}
        variant = attrs.evolve(variant, **fewer)
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
            inference_runs=min(recipe.eval.inference_runs, 2),
        ),
    )
