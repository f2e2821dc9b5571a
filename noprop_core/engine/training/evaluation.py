"""Measuring a model: accuracy by the variant's own inference, accuracy along its inference
chain, the (possibly learned) noise schedule, and peak memory."""

from __future__ import annotations

import contextlib
import math
import resource
import sys
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import torch
from torch import Tensor

from noprop_core.engine.protocol import inference_seed, noise_generator
from noprop_core.engine.training.data import ordered_batches
from noprop_core.engine.training.records import EpochRecord
from noprop_core.model.splits import TensorSplits
from noprop_core.model.variant import Variant
from noprop_core.plugin.config import Inference
from noprop_core.recipe.schema import Recipe

ImagesDone = Callable[[int], None]  # told the number of images of each minibatch evaluated

CHAIN_POINTS = 101  # accuracy along the inference chain is kept at no more than this many steps
SCHEDULE_POINTS = 101  # ᾱ(t) and SNR(t) are tracked on this many evenly spaced t


@attrs.frozen
class ChainAccuracy:
    """Percent correct at every state of the inference chain (the last is the prediction's), and
    of the nearest class embedding to the state the prediction's head read (None without a head)."""

    chain: list[float]
    nearest: float | None

    @property
    def readout_gap(self) -> float | None:
        """Points the head loses against the nearest class embedding of the same state."""
        return None if self.nearest is None else self.nearest - self.chain[-1]


@torch.no_grad()
def read_out_accuracy(
    variant: Variant, images: Tensor, labels: Tensor, *, batch_size: int, seed: int, done: ImagesDone | None = None
) -> ChainAccuracy:
    """Accuracy along the variant's inference chain and of its nearest-embedding read-out, in one
    pass (``Variant.read_out``); the sampling noise is seeded by ``seed``. ``done(n)`` is told
    after each minibatch of n images (for progress displays)."""
    variant.eval()
    device = next((p.device for p in variant.parameters()), images.device)  # data may be on the host
    generator = noise_generator(seed, device)
    correct: Tensor | None = None
    nearest: Tensor | None = None
    for batch_images, batch_labels in ordered_batches(images, labels, batch_size):
        batch_images, batch_labels = batch_images.to(device), batch_labels.to(device)
        read = variant.read_out(batch_images, generator)
        hits = torch.stack([(scores.argmax(-1) == batch_labels).sum() for scores in read.trajectory])
        correct = hits if correct is None else correct + hits
        if read.nearest is not None:
            nearest_hits = (read.nearest.argmax(-1) == batch_labels).sum()
            nearest = nearest_hits if nearest is None else nearest + nearest_hits
        if done is not None:
            done(len(batch_labels))
    assert correct is not None, "no images to evaluate"
    percent = (100.0 * correct.double() / len(labels)).tolist()
    return ChainAccuracy(percent, None if nearest is None else 100.0 * float(nearest) / len(labels))


def chain_accuracy(
    variant: Variant, images: Tensor, labels: Tensor, *, batch_size: int, seed: int, done: ImagesDone | None = None
) -> list[float]:
    """Percent correct at every state z_0 … z_T of the variant's inference chain (the last is the
    prediction), in one pass; the sampling noise is seeded by ``seed``."""
    return read_out_accuracy(variant, images, labels, batch_size=batch_size, seed=seed, done=done).chain


@torch.no_grad()
def confusion_matrix(
    variant: Variant, images: Tensor, labels: Tensor, num_classes: int, *, batch_size: int, seed: int
) -> list[list[int]]:
    """Counts [true class][predicted class] of the variant's inference, its noise seeded by
    ``seed`` exactly as ``chain_accuracy`` seeds it (so it agrees with that accuracy)."""
    variant.eval()
    device = next((p.device for p in variant.parameters()), images.device)
    generator = noise_generator(seed, device)
    counts = torch.zeros(num_classes * num_classes, dtype=torch.int64, device=device)
    for batch_images, batch_labels in ordered_batches(images, labels, batch_size):
        batch_images, batch_labels = batch_images.to(device), batch_labels.to(device)
        predicted = variant.trajectory(batch_images, generator)[-1].argmax(-1)
        counts += torch.bincount(batch_labels * num_classes + predicted, minlength=num_classes * num_classes)
    return counts.view(num_classes, num_classes).tolist()


@torch.no_grad()
def image_accuracy(
    variant: Variant, images: Tensor, labels: Tensor, *, batch_size: int, seed: int
) -> list[float] | None:
    """Percent correct of each block's ``blind_scores`` (its label input pure noise): how much
    each block reads the image. None for a variant that does not define them."""
    variant.eval()
    device = next((p.device for p in variant.parameters()), images.device)
    generator = noise_generator(seed, device)
    correct: Tensor | None = None
    for batch_images, batch_labels in ordered_batches(images, labels, batch_size):
        batch_images, batch_labels = batch_images.to(device), batch_labels.to(device)
        scores = variant.blind_scores(batch_images, generator)
        if not scores:
            return None
        hits = torch.stack([(block.argmax(-1) == batch_labels).sum() for block in scores])
        correct = hits if correct is None else correct + hits
    return None if correct is None else (100.0 * correct.double() / len(labels)).tolist()


def accuracy(
    variant: Variant, images: Tensor, labels: Tensor, *, batch_size: int, seed: int, done: ImagesDone | None = None
) -> float:
    """Percent correct by the variant's own inference procedure, its noise seeded by ``seed``."""
    return chain_accuracy(variant, images, labels, batch_size=batch_size, seed=seed, done=done)[-1]


def thin(values: list[float], points: int = CHAIN_POINTS) -> list[list[float]]:
    """[[step, value], …] at no more than ``points`` evenly spread steps, always with the last."""
    stride = max(1, math.ceil((len(values) - 1) / (points - 1))) if len(values) > 1 else 1
    steps = sorted({*range(0, len(values), stride), len(values) - 1})
    return [[step, values[step]] for step in steps]


def peak_memory_bytes(device: torch.device) -> int:
    """CUDA's peak allocation on a GPU; otherwise the process's peak resident set size."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # Linux reports KiB


@torch.no_grad()
def schedule_curve(variant: Variant, device: torch.device) -> dict[str, list[float]] | None:
    """ᾱ(t) and log SNR(t) of the variant's (possibly learned) schedule on an even grid of
    SCHEDULE_POINTS values of t; None for a variant without a schedule."""
    schedule = variant.noise_schedule()
    if schedule is None:
        return None
    device = next((p.device for p in schedule.parameters()), device)
    t = torch.linspace(0, 1, SCHEDULE_POINTS, device=device)
    alpha_bar = schedule.alpha_bar(t).double().cpu()
    return {"t": t.tolist(), "alpha_bar": alpha_bar.tolist(), "log_snr": (alpha_bar / (1 - alpha_bar)).log().tolist()}


def accuracy_runs(
    variant: Variant,
    images: Tensor,
    labels: Tensor,
    *,
    batch_size: int,
    seed: int,
    runs: int,
    first: float | None = None,
    done: ImagesDone | None = None,
) -> list[float]:
    """Percent correct of ``runs`` inference runs with independent noise (run k seeded by
    ``inference_seed(seed, k)``); ``first``: run 0's result when already measured."""
    results = []
    for run in range(runs):
        if run == 0 and first is not None:
            results.append(first)
            continue
        results.append(
            accuracy(variant, images, labels, batch_size=batch_size, seed=inference_seed(seed, run), done=done)
        )
    return results


def train_examples(recipe: Recipe, splits: TensorSplits) -> int:
    """How many training images are evaluated: the first ``eval.train_subset`` (0: all of them)."""
    available = len(splits.train_labels)
    return min(recipe.eval.train_subset or available, available)


def final_accuracy_runs(
    variant: Variant, splits: TensorSplits, recipe: Recipe, last: EpochRecord
) -> dict[str, list[float]]:
    """The final evaluation's inference runs (``eval.inference_runs``); run 0 is the last
    epoch's own evaluation (``last``, an EpochRecord), reused."""
    settings: dict[str, Any] = {
        "batch_size": recipe.eval.batch_size,
        "seed": recipe.seed,
        "runs": recipe.eval.inference_runs,
    }
    count = train_examples(recipe, splits)
    return {
        "test_accuracy_runs": accuracy_runs(
            variant, splits.test_images, splits.test_labels, first=last.test_accuracy, **settings
        ),
        "train_accuracy_runs": accuracy_runs(
            variant, splits.train_images[:count], splits.train_labels[:count], first=last.train_accuracy, **settings
        ),
    }


@contextlib.contextmanager
def training_inference(variant: Variant, inference: Inference) -> Iterator[None]:
    """The variant infers with its config's setting for evaluations during training (a faster
    one, ``Inference.training_*``) inside the block, and with its final setting after it."""
    if not inference.faster_during_training:
        yield
        return
    variant.set_inference(inference.training_steps, inference.training_sampler)
    try:
        yield
    finally:
        variant.set_inference(inference.steps, inference.sampler)


def evaluate_epoch(variant: Variant, splits: TensorSplits, recipe: Recipe, *, last: bool = False) -> dict[str, Any]:
    """An evaluated epoch's record fields: test accuracy along the inference chain (thinned) and
    at its end, each block's test accuracy from the image alone (``image_accuracy``), train
    accuracy on the first ``eval.train_subset`` examples, and validation
    accuracy when the data set holds a validation split. Noise seeded by the recipe's seed. The
    ``last`` epoch's is inference run 0 of the final evaluation: it infers as the final one does."""
    if last:
        return evaluate_now(variant, splits, recipe)
    with training_inference(variant, recipe.variant.inference()):
        return evaluate_now(variant, splits, recipe)


def evaluate_now(variant: Variant, splits: TensorSplits, recipe: Recipe) -> dict[str, Any]:
    """``evaluate_epoch``'s fields, with the variant's inference setting as it stands."""
    settings: dict[str, Any] = {"batch_size": recipe.eval.batch_size, "seed": recipe.seed}
    read = read_out_accuracy(variant, splits.test_images, splits.test_labels, **settings)
    count = train_examples(recipe, splits)
    fields = {
        "test_accuracy": read.chain[-1],
        "chain_accuracy": thin(read.chain),
        "nearest_embedding_accuracy": read.nearest,
        "readout_gap": read.readout_gap,
        "train_accuracy": accuracy(variant, splits.train_images[:count], splits.train_labels[:count], **settings),
        "image_accuracy": image_accuracy(variant, splits.test_images, splits.test_labels, **settings),
    }
    if splits.has_validation:
        fields["validation_accuracy"] = accuracy(variant, splits.val_images, splits.val_labels, **settings)  # type: ignore[arg-type]  # set when has_validation
    return fields
