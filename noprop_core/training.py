"""The training loop shared by every variant.

Each unit (a NoProp block, or the whole model of a single-unit variant) has its own optimizer
over its own parameters; the shared parameters (head, W_Embed, learnable schedule) have one
more, stepped on every update. Gradients are set to None before each step, so an optimizer
never moves parameters that took no part in the step (Adam would, with zeroed gradients).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable

import attrs
import torch
from torch import Tensor

from noprop_core.data import batch_count, ordered_batches, shuffled_batches
from noprop_core.experiment import Experiment
from noprop_core.progress import Progress
from noprop_core.recipe import TrainSection
from noprop_core.tracking import Tracker
from noprop_core.variant import Variant

OPTIMIZERS = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam}


def make_optimizer(parameters: list[torch.nn.Parameter], train: TrainSection) -> torch.optim.Optimizer | None:
    if not parameters:
        return None
    # The fused kernels are ~4× faster than PyTorch's CPU default (a Python loop per tensor).
    return OPTIMIZERS[train.optimizer](parameters, lr=train.lr, weight_decay=train.weight_decay, fused=True)


@attrs.define
class EpochRecord:
    epoch: int
    loss: dict[str, float]
    loss_per_unit: dict[str, dict[str, float]]
    test_accuracy: float
    train_seconds: float

    def as_dict(self) -> dict:
        return attrs.asdict(self)


class Trainer:
    def __init__(self, experiment: Experiment, progress: Progress, tracker: Tracker):
        self.experiment = experiment
        self.variant = experiment.variant
        self.recipe = experiment.recipe
        self.progress = progress
        self.tracker = tracker
        train = self.recipe.train
        self.unit_optimizers = {u: make_optimizer(self.variant.unit_parameters(u), train) for u in self.variant.units}
        self.shared_optimizer = make_optimizer(self.variant.shared_parameters(), train)
        self.lr_schedulers = [
            torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=train.epochs)
            for optimizer in self.optimizers()
            if train.lr_schedule == "cosine"
        ]
        self.data_order = torch.Generator().manual_seed(self.recipe.seed)
        self.history: list[EpochRecord] = []
        self.train_seconds = 0.0
        self.step = 0

    def optimizers(self) -> list[torch.optim.Optimizer]:
        every = [*self.unit_optimizers.values(), self.shared_optimizer]
        return [optimizer for optimizer in every if optimizer is not None]

    # -- training -------------------------------------------------------------------------
    def phases(self) -> list[list[str]]:
        units = self.variant.units
        return [[u] for u in units] if self.variant.update_order == "sequential" else [list(units)]

    def update(self, images: Tensor, labels: Tensor, units: list[str]) -> dict[str, dict[str, Tensor]]:
        """One optimisation step of ``units`` on a minibatch; returns each unit's loss terms."""
        optimizers = [self.unit_optimizers[u] for u in units] + [self.shared_optimizer]
        optimizers = [o for o in optimizers if o is not None]
        for optimizer in optimizers:
            optimizer.zero_grad(set_to_none=True)
        terms = {unit: self.variant.losses(images, labels, unit) for unit in units}
        # Units share no activations, so one backward of the sum gives each unit exactly the
        # gradient of its own loss; shared parameters receive the sum over units.
        torch.stack([value for unit_terms in terms.values() for value in unit_terms.values()]).sum().backward()
        for optimizer in optimizers:
            optimizer.step()
        self.step += 1
        return {unit: {k: v.detach() for k, v in unit_terms.items()} for unit, unit_terms in terms.items()}

    def train_epoch(self, epoch: int) -> tuple[dict[str, dict[str, float]], float]:
        splits = self.experiment.splits
        batch_size = self.recipe.train.batch_size
        sums: dict[str, dict[str, Tensor]] = defaultdict(dict)
        counts: dict[str, int] = defaultdict(int)
        self.variant.train()
        started = time.perf_counter()
        phases = self.phases()
        for index, units in enumerate(phases, start=1):
            label = units[0] if len(units) == 1 else "all units"
            self.progress.start_phase(label, index, len(phases), batch_count(len(splits.train_labels), batch_size))
            for images, labels in shuffled_batches(splits.train_images, splits.train_labels, batch_size, self.data_order):
                for unit, terms in self.update(images, labels, units).items():
                    for name, value in terms.items():
                        sums[unit][name] = sums[unit].get(name, 0.0) + value
                    counts[unit] += 1
                self.progress.advance()
        self._synchronize()
        seconds = time.perf_counter() - started
        means = {u: {k: float(v) / counts[u] for k, v in terms.items()} for u, terms in sums.items()}
        return means, seconds

    # -- evaluation -----------------------------------------------------------------------
    def accuracy(self, images: Tensor, labels: Tensor) -> float:
        return accuracy(self.variant, images, labels, batch_size=self.recipe.eval.batch_size, seed=self.recipe.seed)

    def test_accuracy(self) -> float:
        return self.accuracy(self.experiment.splits.test_images, self.experiment.splits.test_labels)

    def train_accuracy(self) -> tuple[float, int]:
        splits = self.experiment.splits
        count = self.recipe.eval.train_subset or len(splits.train_labels)
        images, labels = splits.train_images[:count], splits.train_labels[:count]
        return self.accuracy(images, labels), len(labels)

    # -- the whole run --------------------------------------------------------------------
    def fit(self, on_epoch_end: Callable[[Trainer], None] = lambda trainer: None) -> None:
        epochs = self.recipe.train.epochs
        for epoch in range(len(self.history) + 1, epochs + 1):
            self.progress.start_epoch(epoch, epochs)
            per_unit, seconds = self.train_epoch(epoch)
            self.train_seconds += seconds
            for scheduler in self.lr_schedulers:
                scheduler.step()
            record = EpochRecord(
                epoch=epoch,
                loss=_mean_over_units(per_unit),
                loss_per_unit=per_unit,
                test_accuracy=self.test_accuracy(),
                train_seconds=seconds,
            )
            self.history.append(record)
            self._track(record)
            self.progress.end_epoch(epoch, epochs, record.loss, record.test_accuracy, seconds)
            on_epoch_end(self)

    def _track(self, record: EpochRecord) -> None:
        for unit, terms in record.loss_per_unit.items():
            for term, value in terms.items():
                context = {"subset": "train", "unit": unit, "term": term}
                self.tracker.track(value, name="loss", step=self.step, epoch=record.epoch, context=context)
        self.tracker.track(
            record.test_accuracy, name="accuracy", step=self.step, epoch=record.epoch, context={"subset": "test"}
        )

    def _synchronize(self) -> None:
        if self.experiment.device.type == "cuda":
            torch.cuda.synchronize(self.experiment.device)


@torch.no_grad()
def accuracy(variant: Variant, images: Tensor, labels: Tensor, *, batch_size: int, seed: int) -> float:
    """Percent correct by the variant's own inference procedure, its noise seeded by ``seed``."""
    variant.eval()
    generator = torch.Generator(device=images.device).manual_seed(seed)
    correct = 0
    for batch_images, batch_labels in ordered_batches(images, labels, batch_size):
        correct += int((variant.predict(batch_images, generator).argmax(-1) == batch_labels).sum())
    return 100.0 * correct / len(labels)


def _mean_over_units(per_unit: dict[str, dict[str, float]]) -> dict[str, float]:
    names = next(iter(per_unit.values())).keys()
    means = {name: sum(terms[name] for terms in per_unit.values()) / len(per_unit) for name in names}
    means["total"] = sum(means.values())
    return means
