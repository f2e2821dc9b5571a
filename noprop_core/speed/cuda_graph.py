"""The fused update of all blocks (losses, backward, optimizer steps) as one CUDA graph.

On a GPU a fused NoProp-DT update of the paper's ten blocks spends more time in Python and kernel
launches than in kernels (docs/measurements.md, "Measured on one H100"): the GPU waits for the host. A CUDA graph records the update's kernels once and replays them with one launch,
so the host only copies the minibatch in and reads the loss terms out.

What a replay needs, and how it is kept:
- the same tensors every time: the minibatch is copied into static inputs; parameters,
  optimizer states and batch-norm buffers are updated in place and never reallocated (a
  ``load_state_dict`` of the trainer drops the graphs);
- gradients written, not accumulated: they are set to None before the capture, so the
  captured backward allocates them in the graph's own memory and every replay overwrites them;
- the same constants: a graph is recorded per minibatch shape and per learning rates (a
  cosine schedule changes them once per epoch: the graph is recorded again);
- no host synchronisation inside: the loss is checked for NaN after the replay, so a non-finite
  step is reported one step after it was applied (the checkpoint on disk is the last good one);
- random draws (noise, dropout) come from the default CUDA generator, which graphs advance on
  every replay: each replay draws new noise.

The first ``WARMUP_STEPS`` updates of each shape run eagerly on a side stream (PyTorch's rule
for capturing: lazy initialisation — cuDNN plans, optimizer state — must not happen inside).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

WARMUP_STEPS = 3

# step(images, labels) -> (loss terms per unit, the summed loss); runs the whole update
# without reading anything back to the host.
Update = Callable[[Tensor, Tensor], tuple[dict[str, dict[str, Tensor]], Tensor]]


class _Recording:
    def __init__(
        self, images: Tensor, labels: Tensor, constants: tuple[Any, ...], update: Update, before: Callable[[], None]
    ) -> None:
        self.images, self.labels, self.constants = images.clone(), labels.clone(), constants
        self.graph = torch.cuda.CUDAGraph()
        before()  # gradients to None: the captured backward allocates them in the graph's memory
        with torch.cuda.graph(self.graph):
            terms, total = update(self.images, self.labels)
            self.layout = [(unit, list(unit_terms)) for unit, unit_terms in terms.items()]
            # Detached: holding the recorded autograd graph would keep its gradient accumulators
            # (and their stream) alive into later eager steps.
            self.packed = torch.stack(
                [v.float() for unit_terms in terms.values() for v in unit_terms.values()]
            ).detach()
            self.total = total.detach()

    def replay(self, images: Tensor, labels: Tensor) -> tuple[dict[str, dict[str, Tensor]], Tensor]:
        self.images.copy_(images)
        self.labels.copy_(labels)
        self.graph.replay()
        packed, total = self.packed.clone(), self.total.clone()  # the next replay overwrites them
        terms, position = {}, 0
        for unit, names in self.layout:
            terms[unit] = {name: packed[position + offset] for offset, name in enumerate(names)}
            position += len(names)
        return terms, total


class GraphedUpdate:
    """Runs ``update`` eagerly for the first steps of each minibatch shape, then as a graph."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.recordings: dict[tuple[Any, ...], _Recording] = {}
        self.eager_steps: Counter[tuple[Any, ...]] = Counter()
        self.side_stream = torch.cuda.Stream(device)

    def __call__(
        self,
        images: Tensor,
        labels: Tensor,
        units: list[str],
        constants: tuple[Any, ...],
        update: Update,
        before: Callable[[], None],
    ) -> tuple[dict[str, dict[str, Tensor]], Tensor]:
        """``before`` sets the gradients to None; ``constants`` are the values baked into the
        graph (the learning rates): when they change, the graph is recorded again."""
        key = (tuple(units), tuple(images.shape), images.stride())
        recording = self.recordings.get(key)
        if recording is not None and recording.constants == constants:
            return recording.replay(images, labels)
        if recording is None and self.eager_steps[key] < WARMUP_STEPS:
            self.eager_steps[key] += 1
            return self._eager_on_side_stream(images, labels, update, before)
        self.recordings.pop(key, None)  # frees the old graph's memory before recording anew
        recording = self.recordings[key] = _Recording(images, labels, constants, update, before)
        return recording.replay(images, labels)  # recording runs nothing: this minibatch runs now

    def _eager_on_side_stream(
        self, images: Tensor, labels: Tensor, update: Update, before: Callable[[], None]
    ) -> tuple[dict[str, dict[str, Tensor]], Tensor]:
        side, main = self.side_stream, torch.cuda.current_stream(self.device)
        side.wait_stream(main)
        with torch.cuda.stream(side):
            before()
            terms, total = update(images, labels)
        main.wait_stream(side)
        return terms, total

    def clear(self) -> None:
        self.recordings.clear()
        self.eager_steps.clear()
