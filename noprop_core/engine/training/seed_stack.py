"""Seeds trained together: S runs of one fused configuration as one stacked computation.

Where a variant's update is stacked (NoProp-DT with ``fused = true``: T blocks in one pass),
the seeds of a protocol group are one more stacked dimension: S seeds × T blocks run as one
grouped network (``StackedBlocks`` over all S·T blocks, seed s on its own minibatch). Nothing is
shared across seeds: each run keeps its own data order, initialisation, noise and dropout
(drawn from its own step generator, ``Trainer.step_generator``), optimizers, head and W_Embed;
one backward of the summed losses gives every parameter exactly its own run's gradient, as the
runs share no parameters and no activations. A seed trained in the stack therefore follows the
same trajectory as that seed trained alone with the fused update, to float rounding.

Each run still has its own Trainer: epochs, evaluation, checkpoints and metrics are per run.
The stack only replaces the update step; every run's epoch time is the stack's.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import cast

import torch
from torch import Tensor, nn

from noprop_core.engine.training.trainer import Trainer, TrainingInterrupted
from noprop_core.model.variant import StackedVariant, missing_stacked_methods
from noprop_core.speed.stacked import StackedBlocks


def unstackable(trainers: list[Trainer]) -> str | None:
    """Why these runs cannot train as one stack, or None when they can."""
    first = trainers[0]
    if len(trainers) < 2:
        return "one run"
    if not all(t.variant.runs_stacked for t in trainers):
        return "the update is not stacked (a fused variant: dt with fused = true)"
    missing = missing_stacked_methods(first.variant)
    if missing:
        return f"variant '{first.recipe.variant.name}' says runs_stacked but lacks {', '.join(missing)}"
    if any(t.graphed is not None for t in trainers):
        return "speed.cuda_graph records one run's update"
    if any(t.experiment.distributed is not None for t in trainers):
        return "torchrun"
    if any(t.experiment.data_placement != "device" for t in trainers):
        return "data.placement = 'host'"
    sizes = {
        (len(t.variant.block_modules()), len(t.experiment.splits.train_labels), t.recipe.train.batch_size)
        for t in trainers
    }
    if len(sizes) > 1 or len({t.experiment.device for t in trainers}) > 1:
        return "the runs differ in blocks, data, batch size or device"
    blocks = nn.ModuleList(b for t in trainers for b in t.variant.block_modules())
    if not StackedBlocks(blocks).grouped_image_path:
        return f"the blocks' image path is not made of plain layers (backbone '{first.recipe.model.backbone.name}')"
    return None


class SeedStack:
    def __init__(self, trainers: list[Trainer]) -> None:
        reason = unstackable(trainers)
        if reason is not None:
            raise ValueError(f"these runs cannot be stacked: {reason}")
        self.trainers = trainers
        self.stack = StackedBlocks(nn.ModuleList(b for t in trainers for b in t.variant.block_modules()))

    def update(self, steps: list[tuple[Tensor, Tensor, list[str]]]) -> list[dict[str, dict[str, Tensor]]]:
        """One stacked step of every run on its own minibatch; returns each run's loss terms."""
        trainers, first = self.trainers, self.trainers[0]
        for trainer, (_, _, units) in zip(trainers, steps):
            for optimizer in trainer.step_optimizers(units):
                optimizer.zero_grad(set_to_none=True)
        generators = [trainer.step_generator() for trainer in trainers]
        variants = [cast(StackedVariant, t.variant) for t in trainers]  # checked when the stack was built
        noises = [v.draw_noise(labels, g) for v, (_, labels, _), g in zip(variants, steps, generators)]
        z_prev = torch.cat(
            [v.stacked_inputs(labels, noise) for v, (_, labels, _), noise in zip(variants, steps, noises)]
        )
        images = torch.stack([images for images, _, _ in steps])
        with first.experiment.speed.loss_context():
            logits = self.stack(images, z_prev, generators, groups=len(trainers)).chunk(len(trainers))

            def computed(own: Tensor) -> Callable[[Tensor], Tensor]:
                return lambda _z: own  # the stack already ran this run's blocks

            terms = [
                v.stacked_terms(computed(own), labels, noise)
                for v, own, (_, labels, _), noise in zip(variants, logits, steps, noises)
            ]
        totals = [torch.stack([v for unit in run.values() for v in unit.values()]).sum() for run in terms]
        for trainer, run_terms, total in zip(trainers, terms, totals):
            if not torch.isfinite(total):  # before anything is updated, as a run alone stops
                raise trainer._non_finite(run_terms)
        torch.stack(totals).sum().backward()
        self.stack.hand_back_gradients()
        for trainer, (_, _, units) in zip(trainers, steps):
            trainer.apply_gradients(units, trainer.step_optimizers(units))
            trainer.step += 1
        return [{u: {k: v.detach() for k, v in unit.items()} for u, unit in run.items()} for run in terms]

    def fit(self, on_epoch_end: Callable[[Trainer], None] = lambda trainer: None) -> None:
        """Every run's remaining epochs, in lockstep; ``on_epoch_end`` is called per run."""
        trainers = self.trainers
        for epochs in zip(*(t.remaining_epochs() for t in trainers)):
            for steps in zip(*(t.epoch_steps(epoch) for t, epoch in zip(trainers, epochs))):
                for trainer, (_, _, units), terms in zip(trainers, steps, self.update(list(steps))):
                    trainer.record_step(units, terms)
                if any(trainer.stop_requested for trainer in trainers):  # every run keeps its epoch's time
                    for trainer in trainers:
                        with contextlib.suppress(TrainingInterrupted):
                            trainer.stop_if_requested()
                    raise TrainingInterrupted
            for trainer, epoch in zip(trainers, epochs):
                per_unit, seconds = trainer.finish_epoch()
                trainer.end_epoch(epoch, per_unit, seconds, on_epoch_end)
