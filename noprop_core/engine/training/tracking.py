"""What noprop tracks during training (the tracker contract itself is ``noprop_core.plugin.tracker.Tracker``).

``TrainingTracking`` decides *what* is tracked — the same for every tracker — and sends it
through the tracker's methods. Subset, block and loss term go in ``context``, never in metric
names, so a dashboard can group and filter by them.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from noprop_core.engine.training.evaluation import schedule_curve
from noprop_core.engine.training.records import EpochRecord
from noprop_core.model.variant import Variant
from noprop_core.plugin.tracker import Tracker


class TrainingTracking:
    """What a run tracks, at the start and after every epoch:

    - ``loss`` per block and term: context {"subset": "train", "block": unit, "term": "ce"|"kl"|…};
    - ``accuracy`` with context {"subset": "train"|"test"|"validation"} on evaluated epochs, and
      with {"subset": "test", "read_out": "nearest_embedding"} the accuracy of the nearest class
      embedding to the state the head reads; ``readout_gap``, that minus the head's accuracy;
    - ``chain_accuracy``: test accuracy of the head read at z_t, step = t, context
      {"subset": "test", "epoch": epoch} — how denoising proceeds along the chain;
    - ``alpha_bar`` and ``log_snr`` on a grid of t (step = grid index, t = step / (points − 1)),
      context {"subset": "schedule", "epoch": e}: at the start, and after each epoch when the
      schedule is learnable;
    - ``image_accuracy``: each block's test accuracy from the image alone (its label input pure
      noise), context {"subset": "test", "block": b}, on evaluated epochs;
    - ``examples_per_second``, ``peak_memory_bytes``, and the training compute so far
      (``block_passes``, ``flops``) per epoch;
    - ``class_embeddings``: prototype embeddings as images (paper Figure 2), at start and end.

    It is given what it reads (the variant, the device, the image shape and each epoch's
    record), never the trainer.
    """

    def __init__(
        self, tracker: Tracker, variant: Variant, device: torch.device, image_shape: tuple[int, int, int]
    ) -> None:
        self.tracker = tracker
        self.variant = variant
        self.device = device
        self.image_shape = image_shape

    def run_started(self, step: int) -> None:
        self.track_schedule(epoch=0)
        self.track_class_embeddings(step, epoch=0, when="start")

    def epoch_ended(
        self, record: EpochRecord, step: int, last: bool, fixed_terms: frozenset[str] = frozenset()
    ) -> None:
        """``fixed_terms`` (no gradient, constant by construction) are tracked at the first epoch only."""
        self.track_losses(record, step, fixed_terms)
        self.track_accuracies(record, step)
        self.track_per_epoch(record, step)
        schedule = self.variant.noise_schedule()
        if schedule is not None and schedule.learnable:
            self.track_schedule(record.epoch)
        if last:
            self.track_class_embeddings(step, record.epoch, when="end")

    def track_losses(self, record: EpochRecord, step: int, fixed_terms: frozenset[str]) -> None:
        for unit, terms in record.loss_per_unit.items():
            for term, value in terms.items():
                if term in fixed_terms and record.epoch > 1:
                    continue
                context = {"subset": "train", "block": block_number(unit), "term": term}
                self.tracker.track(value, name="loss", step=step, epoch=record.epoch, context=context)

    def track_accuracies(self, record: EpochRecord, step: int) -> None:
        """Accuracies of an evaluated epoch: per subset, of the read-out, along the chain, per block."""
        track, epoch = self.tracker.track, record.epoch
        accuracies = (("test", record.test_accuracy), ("train", record.train_accuracy))
        for subset, measured in (*accuracies, ("validation", record.validation_accuracy)):
            if measured is not None:
                track(measured, name="accuracy", step=step, epoch=epoch, context={"subset": subset})
        if record.nearest_embedding_accuracy is not None and record.readout_gap is not None:
            read_out = {"subset": "test", "read_out": "nearest_embedding"}
            track(record.nearest_embedding_accuracy, name="accuracy", step=step, epoch=epoch, context=read_out)
            track(record.readout_gap, name="readout_gap", step=step, epoch=epoch, context={"subset": "test"})
        chain = {"subset": "test", "epoch": epoch}
        for chain_step, value in record.chain_accuracy or []:
            track(value, name="chain_accuracy", step=int(chain_step), epoch=epoch, context=chain)
        for block, value in enumerate(record.image_accuracy or [], start=1):
            track(value, name="image_accuracy", step=step, epoch=epoch, context={"subset": "test", "block": block})

    def track_per_epoch(self, record: EpochRecord, step: int) -> None:
        """Throughput, memory and training compute so far; the variant's diagnostics."""
        extras: tuple[tuple[str, float | int | None], ...] = (
            ("examples_per_second", record.examples_per_second),
            ("peak_memory_bytes", record.peak_memory_bytes),
            ("block_passes", record.block_passes),
            ("flops", record.flops),
        )
        for name, extra in extras:
            if extra is not None:
                self.tracker.track(float(extra), name=name, step=step, epoch=record.epoch, context={"subset": "train"})
        for name, values in (record.diagnostics or {}).items():
            context = {"subset": "model", "epoch": record.epoch}
            for index, value in enumerate(values):
                self.tracker.track(value, name=name, step=index, epoch=record.epoch, context=context)

    @torch.no_grad()
    def track_schedule(self, epoch: int) -> None:
        curve = schedule_curve(self.variant, self.device)
        if curve is None:
            return
        context = {"subset": "schedule", "epoch": epoch}
        for index, (alpha_bar, log_snr) in enumerate(zip(curve["alpha_bar"], curve["log_snr"])):
            self.tracker.track(alpha_bar, name="alpha_bar", step=index, epoch=epoch, context=context)
            self.tracker.track(log_snr, name="log_snr", step=index, epoch=epoch, context=context)

    @torch.no_grad()
    def track_class_embeddings(self, step: int, epoch: int, when: str) -> None:
        image = class_embedding_grid(self.variant.embedding.weight, self.image_shape)
        if image is not None:
            self.tracker.track_image(image, name="class_embeddings", step=step, epoch=epoch, context={"when": when})


def block_number(unit: str) -> int | str:
    """A unit's name as the tracker's ``block``: an integer where the name ends in one (block10
    sorts after block2), else the name (``model`` of a one-unit variant)."""
    digits = unit[len(unit.rstrip("0123456789")) :]
    return int(digits) if digits else unit


def class_embedding_grid(weight: Tensor, image_shape: tuple[int, int, int]) -> Tensor | None:
    """Image-shaped class embeddings (prototypes) tiled into one (C, H, W) image in [0, 1], each
    class scaled on its own; None when the embeddings are not images."""
    if weight.shape[1] != math.prod(image_shape):
        return None
    from torchvision.utils import make_grid

    images = weight.detach().float().cpu().reshape(-1, *image_shape)
    low = images.amin(dim=(1, 2, 3), keepdim=True)
    high = images.amax(dim=(1, 2, 3), keepdim=True)
    images = (images - low) / (high - low).clamp_min(1e-12)
    return make_grid(images, nrow=min(10, len(images)), padding=1, pad_value=1.0)
