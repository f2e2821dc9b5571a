"""The training loop shared by every variant.

Each unit (a NoProp block, or the whole model of a single-unit variant) has its own optimizer
over its own parameters; the shared parameters (head, W_Embed, learnable schedule) have one
more, stepped on every update. Gradients are set to None before each step, so an optimizer
never moves parameters that took no part in the step (Adam would, with zeroed gradients).

Everything needed to continue a run exactly (model, optimizers, learning-rate schedules, the
random number generators and, after an interruption, the position inside the epoch) is in
``Trainer.state_dict()``: a resumed run reproduces the uninterrupted one on CPU.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import torch
from torch import Tensor

from noprop_core.engine.training.augment import augmentation_for
from noprop_core.engine.training.compute import ComputeCount
from noprop_core.engine.training.data import batch_count, loaded_batches, shuffled_batches
from noprop_core.engine.training.evaluation import evaluate_epoch, peak_memory_bytes
from noprop_core.engine.training.experiment import Experiment
from noprop_core.engine.training.progress import Progress
from noprop_core.engine.training.records import EpochRecord, mean_over_units
from noprop_core.engine.training.tracking import TrainingTracking
from noprop_core.errors import NopropError
from noprop_core.model.variant import Variant
from noprop_core.plugin.tracker import Tracker
from noprop_core.recipe.schema import TrainSection
from noprop_core.speed.allocator import keep_freed_memory
from noprop_core.speed.cuda_graph import GraphedUpdate

RUNNING_LOSS_EVERY = 20  # steps between updates of the live display's running loss
OPTIMIZERS = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam}


def make_optimizer(
    parameters: list[torch.nn.Parameter] | list[dict[str, Any]], train: TrainSection, capturable: bool = False
) -> torch.optim.Optimizer | None:
    """``parameters``: a list of parameters, or of parameter groups (each may set its own lr).
    ``capturable``: the step counts stay on the device, as a CUDA graph of the update needs."""
    if not parameters:
        return None
    # fused: one kernel for all tensors instead of PyTorch's CPU default, a Python loop per tensor.
    return OPTIMIZERS[train.optimizer](
        parameters, lr=train.lr, weight_decay=train.weight_decay, fused=True, capturable=capturable
    )


def learning_rate_schedule(
    optimizer: torch.optim.Optimizer, train: TrainSection
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """The per-epoch learning-rate schedule of ``train``: cosine decay to 0 over the epochs, or
    constant, after a linear warm-up over ``warmup_epochs`` when there is one; None: constant."""
    schedulers = torch.optim.lr_scheduler
    cosine = train.lr_schedule == "cosine"
    if not train.warmup_epochs:
        return schedulers.CosineAnnealingLR(optimizer, T_max=train.epochs) if cosine else None
    warm = min(train.warmup_epochs, train.epochs)
    warmup = schedulers.LinearLR(optimizer, start_factor=1 / train.warmup_epochs, total_iters=train.warmup_epochs - 1)
    if warm == train.epochs:
        return warmup
    after = (
        schedulers.CosineAnnealingLR(optimizer, T_max=train.epochs - warm)
        if cosine
        else schedulers.ConstantLR(optimizer, factor=1.0, total_iters=0)
    )
    return schedulers.SequentialLR(optimizer, [warmup, after], milestones=[warm])


def shared_parameter_groups(variant: Variant) -> list[torch.nn.Parameter] | list[dict[str, Any]]:
    """The shared parameters, with a learnable schedule's in a group of its own learning rate
    when it asks for one (``NoiseSchedule.learning_rate``)."""
    shared = variant.shared_parameters()
    schedule = variant.noise_schedule()
    if schedule is None or schedule.learning_rate is None:
        return shared
    own = {id(p) for p in schedule.parameters()}
    groups: list[dict[str, Any]] = [
        {"params": [p for p in shared if id(p) not in own]},
        {"params": [p for p in shared if id(p) in own], "lr": schedule.learning_rate},
    ]
    return [group for group in groups if group["params"]]


class NonFiniteLoss(NopropError):
    """A loss term became NaN or infinite. Eager updates stop before applying it; a CUDA graph
    (speed.cuda_graph) has applied it. Either way the checkpoint on disk is the last good one."""


class TrainingInterrupted(Exception):
    """A stop was requested (Ctrl-C, SIGTERM); the trainer stopped after a whole step."""


@attrs.define
class EpochPosition:
    """Where an epoch stands: the phase and batch reached, and the loss sums so far (saved in a
    checkpoint taken inside an epoch, so that a resumed run continues from that step)."""

    epoch: int
    phase: int = 0
    batches_done: int = 0
    phase_order_state: Tensor | None = None  # data-order generator at the start of the phase
    sums: dict[str, dict[str, Tensor]] = attrs.Factory(dict)
    counts: dict[str, int] = attrs.Factory(dict)
    seconds: float = 0.0


class Trainer:
    """Trains one experiment's variant, epoch by epoch: each step updates a phase's units on a
    minibatch (``update``), the epoch's record is evaluated when due and tracked (``end_epoch``),
    and ``state_dict`` holds all it needs to continue exactly. ``fit`` runs the remaining
    epochs; ``SeedStack`` drives several trainers' steps as one. ``progress`` is the display,
    ``position`` where the current epoch stands (None between epochs)."""

    def __init__(
        self, experiment: Experiment, progress: Progress | None = None, tracker: Tracker | None = None
    ) -> None:
        self.experiment = experiment
        if experiment.device.type == "cpu":
            keep_freed_memory()  # large tensors reused instead of page-faulted in every step
        self.variant = experiment.variant
        self.recipe = experiment.recipe
        self.progress = progress or Progress()
        self.tracking = TrainingTracking(
            tracker or Tracker(), self.variant, experiment.device, experiment.splits.image_shape
        )
        train, graph = self.recipe.train, self.experiment.speed.cuda_graph
        self.unit_optimizers = {
            u: make_optimizer(self.variant.unit_parameters(u), train, capturable=graph) for u in self.variant.units
        }
        # speed.cuda_graph: stacked updates replayed as one CUDA graph (noprop_core.speed.cuda_graph).
        self.graphed = GraphedUpdate(experiment.device) if graph else None
        self.shared_optimizer = make_optimizer(shared_parameter_groups(self.variant), train, capturable=graph)
        self.lr_schedulers = [
            scheduler for scheduler in (learning_rate_schedule(o, train) for o in self.optimizers()) if scheduler
        ]
        self.data_order = torch.Generator().manual_seed(self.recipe.seed)
        self.augmentation = augmentation_for(self.recipe.data.augment, experiment.splits)
        self.history: list[EpochRecord] = []
        self.train_seconds = 0.0
        self.compute = ComputeCount()  # training compute so far: block passes and FLOPs
        self.step = 0
        self.position: EpochPosition | None = None  # set while an epoch is under way
        self.stop_requested = False  # set from a signal handler; checked after every step
        self.stop_signal: int | None = None  # the signal that asked for the stop, if one did
        # Loss terms that carry no gradient (the KL of a fixed embedding): constant by
        # construction, so the per-epoch line omits them and trackers get them once.
        self.fixed_terms: frozenset[str] | None = None  # known after the first step
        self._epoch_started = 0.0  # perf_counter() at the epoch's start, less the time before an interruption

    @property
    def tracker(self) -> Tracker:
        return self.tracking.tracker

    @tracker.setter
    def tracker(self, tracker: Tracker) -> None:
        self.tracking.tracker = tracker

    def optimizers(self) -> list[torch.optim.Optimizer]:
        every = [*self.unit_optimizers.values(), self.shared_optimizer]
        return [optimizer for optimizer in every if optimizer is not None]

    # -- training -------------------------------------------------------------------------
    def phases(self) -> list[list[str]]:
        units = self.variant.units
        return [[u] for u in units] if self.variant.update_order == "sequential" else [list(units)]

    # The stream of a stacked step: past any unit's index, so it never repeats a unit's stream.
    STACKED_STREAM = 999_983

    def draw_seed(self, stream: int) -> int:
        """The seed of one stream of random draws at the current step (a unit's index, or
        ``STACKED_STREAM``): a function of the run's seed, the step and the stream only."""
        return ((self.recipe.seed * 1_000_003 + self.step) * 1_009 + stream) % 2**63

    def unit_seed(self, unit: str) -> int:
        """The seed of a unit's random draws (noise, dropout) at the current step: a unit's
        update does not depend on which other units share the step, or on which process runs it."""
        return self.draw_seed(self.variant.units.index(unit))

    def step_generator(self) -> torch.Generator:
        """The random draws of a stacked step (noise, dropout) of this run at the current step:
        the same whether the run trains alone or stacked with other seeds (``SeedStack``)."""
        return torch.Generator(device=self.experiment.device).manual_seed(self.draw_seed(self.STACKED_STREAM))

    def unit_losses(self, images: Tensor, labels: Tensor, unit: str) -> dict[str, Tensor]:
        devices = [self.experiment.device] if self.experiment.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), self.experiment.speed.loss_context():
            torch.manual_seed(self.unit_seed(unit))
            terms = self.variant.losses(images, labels, unit)
        return {name: value.float() for name, value in terms.items()}

    def update(self, images: Tensor, labels: Tensor, units: list[str]) -> dict[str, dict[str, Tensor]]:
        """One optimisation step of ``units`` on a minibatch; returns each unit's loss terms
        (under distributed block sharding: those of the units this process owns)."""
        distributed = self.experiment.distributed
        if distributed is not None and distributed.mode == "data":
            images, labels = (
                images[distributed.rank :: distributed.world_size],
                labels[distributed.rank :: distributed.world_size],
            )
        elif distributed is not None:
            units = [u for u in units if distributed.owns(self.variant.units.index(u))]
        optimizers = self.step_optimizers(units)

        def clear_gradients() -> None:
            for optimizer in optimizers:
                optimizer.zero_grad(set_to_none=True)

        if self.graphed is not None and len(units) > 1:
            learning_rates = tuple(group["lr"] for o in optimizers for group in o.param_groups)
            terms, total = self.graphed(
                images,
                labels,
                units,
                learning_rates,
                lambda x, y: self._losses_and_step(x, y, units, optimizers, check=False, generator=None),
                clear_gradients,
            )
            if not torch.isfinite(total):  # checked after the step: a graph cannot stop half-way
                raise self._non_finite(terms)
        else:
            clear_gradients()
            generator = self.step_generator() if len(units) > 1 and self.variant.runs_stacked else None
            with self.compute.measuring(units, len(labels), allowed=self.experiment.speed.eager):
                terms, _ = self._losses_and_step(images, labels, units, optimizers, check=True, generator=generator)
        self.compute.add(units, len(labels), self.variant.block_passes(units))
        self.step += 1
        return {unit: {k: v.detach() for k, v in unit_terms.items()} for unit, unit_terms in terms.items()}

    def _losses_and_step(
        self,
        images: Tensor,
        labels: Tensor,
        units: list[str],
        optimizers: list[torch.optim.Optimizer],
        check: bool,
        generator: torch.Generator | None,
    ) -> tuple[dict[str, dict[str, Tensor]], Tensor]:
        """The losses, their backward and the optimizer steps; with ``check``, a non-finite
        loss stops before anything is updated (a host synchronisation)."""
        if len(units) > 1:
            with self.experiment.speed.loss_context():
                terms = self.variant.fused_losses(images, labels, generator=generator)
        else:
            terms = None
        if terms is None:
            terms = {unit: self.unit_losses(images, labels, unit) for unit in units}
        if self.fixed_terms is None:
            self.fixed_terms = frozenset(
                name for unit_terms in terms.values() for name, value in unit_terms.items() if not value.requires_grad
            )
        total = torch.stack([value for unit_terms in terms.values() for value in unit_terms.values()]).sum()
        if check and not torch.isfinite(total):
            raise self._non_finite(terms)
        # Units share no activations, so one backward of the sum gives each unit exactly the
        # gradient of its own loss; shared parameters receive the sum over units.
        total.backward()
        self.variant.after_backward()
        self.apply_gradients(units, optimizers)
        return terms, total

    def apply_gradients(self, units: list[str], optimizers: list[torch.optim.Optimizer]) -> None:
        """After backward: all-reduce (torchrun), clip per unit, step the optimizers."""
        distributed = self.experiment.distributed
        if distributed is not None:
            data_parallel = distributed.mode == "data"
            unit_parameters = [p for u in units for p in self.variant.unit_parameters(u)] if data_parallel else []
            distributed.all_reduce_gradients(
                [*unit_parameters, *self.variant.shared_parameters()], average=data_parallel
            )
        clip = self.recipe.train.grad_clip
        if clip > 0:  # per unit, so that one block's gradient never scales another's
            for unit in units:
                torch.nn.utils.clip_grad_norm_(self.variant.unit_parameters(unit), clip)
            torch.nn.utils.clip_grad_norm_(self.variant.shared_parameters(), clip)
        for optimizer in optimizers:
            optimizer.step()

    def step_optimizers(self, units: list[str]) -> list[torch.optim.Optimizer]:
        """The optimizers a step of ``units`` moves: theirs and the shared one."""
        every = [self.unit_optimizers[u] for u in units] + [self.shared_optimizer]
        return [o for o in every if o is not None]

    def _non_finite(self, terms: dict[str, dict[str, Tensor]]) -> NonFiniteLoss:
        bad = [
            f"{unit} {name}"
            for unit, unit_terms in terms.items()
            for name, v in unit_terms.items()
            if not torch.isfinite(v)
        ]
        epoch = self.position.epoch if self.position else len(self.history) + 1
        return NonFiniteLoss(
            f"non-finite loss ({', '.join(bad)}) in variant '{self.recipe.variant.name}' at epoch {epoch}, "
            f"step {self.step + 1}; training stopped and the last good checkpoint is kept "
            f"(a smaller train.lr or train.grad_clip may help)"
        )

    def train_epoch(self, epoch: int) -> tuple[dict[str, dict[str, float]], float]:
        """Train one epoch, or the rest of it after an interruption; returns mean loss terms per unit."""
        for images, labels, units in self.epoch_steps(epoch):
            self.record_step(units, self.update(images, labels, units))
            self.stop_if_requested()
        return self.finish_epoch()

    def epoch_steps(self, epoch: int) -> Iterator[tuple[Tensor, Tensor, list[str]]]:
        """The epoch's steps as (images, labels, units), from where an interruption left it. The
        caller updates the units and hands the loss terms to ``record_step``; ``train_epoch``
        does so with ``update``, ``SeedStack`` with one stacked update of several runs."""
        if self.position is None or self.position.epoch != epoch:
            self.position = EpochPosition(epoch)
        state = self.position
        splits = self.experiment.splits
        batch_size = self.recipe.train.batch_size
        self.variant.train()
        self._epoch_started = time.perf_counter() - state.seconds
        phases = self.phases()
        for index in range(state.phase, len(phases)):
            units = phases[index]
            if state.phase_order_state is not None and index == state.phase:
                self.data_order.set_state(state.phase_order_state)  # replay this phase's order
            state.phase, state.phase_order_state = index, self.data_order.get_state()
            label = units[0] if len(units) == 1 else "all units"
            limit = self.recipe.train.max_batches or None
            total = batch_count(len(splits.train_labels), batch_size)
            self.progress.start_phase(label, index + 1, len(phases), min(total, limit or total))
            if self.experiment.data_placement == "host":
                batches = loaded_batches(
                    splits.train_images,
                    splits.train_labels,
                    batch_size,
                    self.data_order,
                    self.experiment.device,
                    self.recipe.data.workers,
                )
            else:
                batches = shuffled_batches(splits.train_images, splits.train_labels, batch_size, self.data_order)
            for position, (images, labels) in enumerate(itertools.islice(batches, limit)):
                if position < state.batches_done:
                    continue  # done before the interruption
                if self.augmentation is not None:
                    images = self.augmentation(images)
                yield images, labels, units
            state.batches_done = 0

    def record_step(self, units: list[str], terms: dict[str, dict[str, Tensor]]) -> None:
        """Account a step's loss terms (the epoch's sums, the live display)."""
        state = self.position
        assert state is not None, "record_step outside an epoch"
        for unit, unit_terms in terms.items():
            unit_sums = state.sums.setdefault(unit, {})
            for name, value in unit_terms.items():
                unit_sums[name] = unit_sums.get(name, 0.0) + value
            state.counts[unit] = state.counts.get(unit, 0) + 1
        state.batches_done += 1
        self.progress.advance()
        if self.progress.wants_running_loss and state.batches_done % RUNNING_LOSS_EVERY == 0:
            # One host synchronisation every RUNNING_LOSS_EVERY steps, for the live display only.
            unit_sums = state.sums[units[-1]]
            self.progress.running_loss(units[-1], float(sum(unit_sums.values())) / state.counts[units[-1]])

    def stop_if_requested(self) -> None:
        """After a whole step: when a stop was requested (a signal, a sweep's pruner), keep the
        epoch's time so far and raise ``TrainingInterrupted`` (the caller saves a checkpoint)."""
        if self.stop_requested:
            assert self.position is not None, "a stop between epochs is taken at the next step"
            self.position.seconds = time.perf_counter() - self._epoch_started
            raise TrainingInterrupted

    def finish_epoch(self) -> tuple[dict[str, dict[str, float]], float]:
        """After the last step: the epoch's mean loss terms per unit and its training seconds."""
        state = self.position
        assert state is not None, "finish_epoch outside an epoch"
        self._synchronize()
        seconds = time.perf_counter() - self._epoch_started
        means = {u: {k: float(v) / state.counts[u] for k, v in terms.items()} for u, terms in state.sums.items()}
        self.position = None
        if self.experiment.distributed is not None and self.experiment.distributed.mode == "blocks":
            means = self.experiment.distributed.share_units(self.variant, self.unit_optimizers, means)
        return means, seconds

    def examples_per_epoch(self) -> int:
        count, train = len(self.experiment.splits.train_labels), self.recipe.train
        return min(count, train.max_batches * train.batch_size) if train.max_batches else count

    # -- the whole run --------------------------------------------------------------------
    def fit(self, on_epoch_end: Callable[[Trainer], None] = lambda trainer: None) -> None:
        for epoch in self.remaining_epochs():
            per_unit, seconds = self.train_epoch(epoch)
            self.end_epoch(epoch, per_unit, seconds, on_epoch_end)

    def remaining_epochs(self) -> Iterator[int]:
        """The epochs still to train, each announced to the progress display as it starts."""
        epochs = self.recipe.train.epochs
        if not self.history and self.position is None:
            self.tracking.run_started(self.step)
        for epoch in range(len(self.history) + 1, epochs + 1):
            self.progress.start_epoch(epoch, epochs)
            yield epoch

    def end_epoch(
        self, epoch: int, per_unit: dict[str, dict[str, float]], seconds: float, on_epoch_end: Callable[[Trainer], None]
    ) -> None:
        """Learning-rate schedules, the epoch's record (evaluated when due), tracking, then ``on_epoch_end``."""
        epochs = self.recipe.train.epochs
        self.train_seconds += seconds
        for scheduler in self.lr_schedulers:
            scheduler.step()
        record = EpochRecord(
            epoch=epoch,
            loss=mean_over_units(per_unit),
            loss_per_unit=per_unit,
            test_accuracy=None,
            train_seconds=seconds,
            examples_per_second=self.examples_per_epoch() / seconds if seconds > 0 else None,
            peak_memory_bytes=peak_memory_bytes(self.experiment.device),
            diagnostics=self.variant.diagnostics() or None,
            **self.compute.totals(),
        )
        if self._evaluates(epoch):
            fields = evaluate_epoch(self.variant, self.experiment.splits, self.recipe, last=epoch == epochs)
            record = attrs.evolve(record, **fields)
        self.history.append(record)
        fixed = self.fixed_terms or frozenset()
        self.tracking.epoch_ended(record, self.step, last=epoch == epochs, fixed_terms=fixed)
        shown = {term: value for term, value in record.loss.items() if term not in fixed}
        self.progress.end_epoch(epoch, epochs, shown, record.test_accuracy, seconds, record.nearest_embedding_accuracy)
        on_epoch_end(self)

    def _evaluates(self, epoch: int) -> bool:
        return epoch % self.recipe.eval.every == 0 or epoch == self.recipe.train.epochs

    def _synchronize(self) -> None:
        if self.experiment.device.type == "cuda":
            torch.cuda.synchronize(self.experiment.device)

    # -- checkpoints ----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        device = self.experiment.device
        return {
            "model": self.variant.state_dict(),
            "unit_optimizers": {u: o.state_dict() for u, o in self.unit_optimizers.items() if o is not None},
            "shared_optimizer": self.shared_optimizer.state_dict() if self.shared_optimizer else None,
            "lr_schedulers": [scheduler.state_dict() for scheduler in self.lr_schedulers],
            "history": [record.as_dict() for record in self.history],
            "step": self.step,
            "train_seconds": self.train_seconds,
            "compute": self.compute.state_dict(),
            "rng": {
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
                "data_order": self.data_order.get_state(),
            },
            "current_epoch": attrs.asdict(self.position) if self.position else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.graphed is not None:
            self.graphed.clear()  # optimizer states are replaced: recorded graphs would update the old ones
        self.variant.load_state_dict(state["model"])
        for unit, optimizer_state in state["unit_optimizers"].items():
            optimizer = self.unit_optimizers[unit]
            if optimizer is not None:
                optimizer.load_state_dict(optimizer_state)
        if self.shared_optimizer is not None and state["shared_optimizer"] is not None:
            self.shared_optimizer.load_state_dict(state["shared_optimizer"])
        for scheduler, scheduler_state in zip(self.lr_schedulers, state["lr_schedulers"]):
            scheduler.load_state_dict(scheduler_state)
            rescale_cosine(scheduler, self.recipe.train.epochs)
        self.history = [EpochRecord(**record) for record in state["history"]]
        self.step, self.train_seconds = state["step"], state["train_seconds"]
        if "compute" in state:  # checkpoints of earlier versions have none: counted from here on
            self.compute.load_state_dict(state["compute"])
        else:
            self.compute.complete = False
        torch.set_rng_state(state["rng"]["torch"])
        if state["rng"]["cuda"] is not None and self.experiment.device.type == "cuda":
            torch.cuda.set_rng_state(state["rng"]["cuda"], self.experiment.device)
        self.data_order.set_state(state["rng"]["data_order"])
        self.position = EpochPosition(**state["current_epoch"]) if state["current_epoch"] else None


def rescale_cosine(scheduler: torch.optim.lr_scheduler.LRScheduler, epochs: int) -> None:
    """A cosine schedule resumed with another ``train.epochs`` follows the cosine of the new
    length from the current epoch on (its closed form; the rate jumps once to that curve)."""
    if not isinstance(scheduler, torch.optim.lr_scheduler.CosineAnnealingLR) or scheduler.T_max == epochs:
        return
    scheduler.T_max = epochs
    progress = math.cos(math.pi * scheduler.last_epoch / epochs)
    rates = [scheduler.eta_min + (base - scheduler.eta_min) * (1 + progress) / 2 for base in scheduler.base_lrs]
    for group, rate in zip(scheduler.optimizer.param_groups, rates):
        group["lr"] = rate
    scheduler._last_lr = rates
