"""Using a trained model: ``load_model(RUN_DIR)`` and what ``noprop predict`` and ``noprop export``
build on.

A run's checkpoint records what inference needs besides the weights (``inference_card``):
the image shape, the class count and names, and the training split's per-channel mean and
standard deviation that standardise inputs. A model is rebuilt from the run's resolved recipe
on placeholder data of that shape (no data set needed), then given the checkpoint's weights.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs
import torch
from torch import Tensor

from noprop_core.engine import run_directory
from noprop_core.engine.protocol import noise_generator
from noprop_core.engine.trained.images import as_image_batch
from noprop_core.engine.training.experiment import build_experiment, build_on_splits
from noprop_core.errors import NopropError
from noprop_core.model.splits import TensorSplits
from noprop_core.model.variant import Variant
from noprop_core.plugin.manager import load_registry
from noprop_core.plugin.registry import Registry
from noprop_core.recipe.loading import load_recipe
from noprop_core.recipe.schema import Recipe


def inference_card(splits: TensorSplits) -> dict[str, Any]:
    """What inference needs besides the weights, as plain builtins (stored in checkpoints)."""
    return {
        "image_shape": list(splits.image_shape),
        "num_classes": splits.num_classes,
        "mean": list(splits.mean) if splits.mean is not None else None,
        "std": list(splits.std) if splits.std is not None else None,
        "class_names": list(splits.class_names) if splits.class_names is not None else None,
    }


@attrs.define
class TrainedModel:
    """A trained run's model on the CPU (or ``device``), in evaluation mode.

    ``predict(images)`` gives class indices and ``predict_proba(images)`` probabilities (the
    softmax of the variant's final class scores) for standardised (B, C, H, W) float images;
    ``standardise`` turns images in [0, 1] into those. The inference noise is seeded by the
    run's seed, so the same images give the same answer every call."""

    variant: Variant
    recipe: Recipe
    card: dict[str, Any]
    run_dir: Path

    @property
    def image_shape(self) -> tuple[int, int, int]:
        channels, height, width = self.card["image_shape"]
        return (channels, height, width)

    @property
    def class_names(self) -> list[str] | None:
        return self.card["class_names"]

    def standardise(self, images: Tensor) -> Tensor:
        """Images in [0, 1], (B, C, H, W), standardised as the training data was."""
        if self.card["mean"] is None:
            return images
        mean = torch.tensor(self.card["mean"], dtype=images.dtype).view(1, -1, 1, 1)
        std = torch.tensor(self.card["std"], dtype=images.dtype).view(1, -1, 1, 1)
        return (images - mean) / std

    @torch.no_grad()
    def scores(self, images: Tensor) -> Tensor:
        self.variant.eval()
        device = next(self.variant.parameters()).device
        generator = noise_generator(self.recipe.seed, device)
        batches = [
            self.variant.predict(batch.to(device), generator) for batch in images.split(self.recipe.eval.batch_size)
        ]
        return torch.cat(batches).float().cpu()

    def predict_proba(self, images: Tensor) -> Tensor:
        return self.scores(images).softmax(dim=-1)

    def predict(self, images: Tensor) -> Tensor:
        return self.scores(images).argmax(dim=-1)

    def prepared(self, images: Any) -> tuple[Tensor, bool]:
        """What users hold (``trained.images``: tensors, numpy arrays, PIL images, lists; uint8
        as 0–255, floats in 0–1), standardised as the training data was, and whether it was one
        image without the batch axis."""
        batch, single = as_image_batch(images, self.image_shape)
        return self.standardise(batch), single

    def classify(self, images: Any) -> Tensor:
        """Class indices of what users hold: (B,), or a 0-d tensor for one unbatched image."""
        batch, single = self.prepared(images)
        classes = self.predict(batch)
        return classes[0] if single else classes

    def class_probabilities(self, images: Any) -> Tensor:
        """Class probabilities of what users hold: (B, classes), or (classes,) for one unbatched image."""
        batch, single = self.prepared(images)
        probabilities = self.predict_proba(batch)
        return probabilities[0] if single else probabilities


def run_recipe(
    run_dir: Path, registry: Registry, *, steps: int | None = None, sampler: str | None = None
) -> tuple[Recipe, list[str]]:
    """A run directory's resolved recipe with another number of inference ``steps`` or another
    ``sampler`` where given (for variants that have them), and the overrides that made it."""
    run_directory.require_run_dir(run_dir)
    recipe_path = run_dir / run_directory.RECIPE
    recipe = load_recipe(recipe_path, registry)
    inference = recipe.variant.inference()
    overrides = []
    for option, value, key in (("steps", steps, inference.steps_key), ("sampler", sampler, inference.sampler_key)):
        if value is None:
            continue
        if key is None:
            raise NopropError(f"--{option}: variant '{recipe.variant.name}' has no {option} to change")
        overrides.append(f"variant.{key}={json.dumps(value)}")  # a TOML literal; the recipe schema validates it
    return (load_recipe(recipe_path, registry, overrides) if overrides else recipe), overrides


def load_model(
    run_dir: str | Path, registry: Registry | None = None, device: str = "cpu", steps: int | None = None
) -> TrainedModel:
    """The trained model of a run directory (its last checkpoint); ``steps``: another number of
    inference steps for variants that have one to change (ct, fm, adjoint, diffusion_blocks)."""
    run_dir = Path(run_dir)
    registry = registry or load_registry()
    recipe, _ = run_recipe(run_dir, registry, steps=steps)
    checkpoint = run_directory.load_checkpoint(run_dir / run_directory.CHECKPOINT)
    recipe = attrs.evolve(recipe, device=device)
    card = checkpoint.get("inference")
    if card is None:  # a checkpoint from before cards were recorded: read the data set once
        experiment = build_experiment(recipe, registry, torch.device(device), notify=lambda text: None)
        card = inference_card(experiment.splits)
    else:
        experiment = build_on_splits(recipe, registry, placeholder_splits(card), torch.device(device))
    run_directory.load_model_state(experiment.variant, checkpoint["model"], run_dir / run_directory.CHECKPOINT)
    experiment.variant.eval()
    return TrainedModel(experiment.variant, experiment.recipe, card, run_dir)


def placeholder_splits(card: dict[str, Any]) -> TensorSplits:
    """Zero images of the card's shape, one per class: enough to build the model (whose
    data-driven initialisations the checkpoint's weights then replace)."""
    count = card["num_classes"]
    images = torch.zeros(count, *card["image_shape"])
    labels = torch.arange(count)
    return TensorSplits(
        name="placeholder",
        train_images=images,
        train_labels=labels,
        test_images=images,
        test_labels=labels,
        num_classes=count,
    )
