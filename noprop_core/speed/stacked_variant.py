"""A variant of one block per unit that can also train all its blocks in one stacked pass.

Subclass ``StackedBlockVariant`` and write the three members where variants differ —
``draw_noise``, ``stacked_inputs`` and ``stacked_terms`` (``StackedVariant``'s contract) —, call
``stack_blocks(fused)`` after ``set_blocks``; ``runs_stacked``, ``fused_losses`` and
``after_backward`` follow from them, and seeds then stack too (``--stack-seeds``).
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from noprop_core.model.block_units import BlockPerUnitVariant
from noprop_core.speed.stacked import StackedBlocks


class StackedBlockVariant(BlockPerUnitVariant):
    stacked: StackedBlocks | None = None

    def stack_blocks(self, fused: bool) -> None:
        """With ``fused``, every step computes all the blocks in one vmapped pass."""
        self.stacked = StackedBlocks(self.blocks) if fused else None

    @property
    def runs_stacked(self) -> bool:
        return self.stacked is not None

    def fused_losses(
        self, images: Tensor, labels: Tensor, generator: torch.Generator | None = None, *, noise: Any = None
    ) -> dict[str, dict[str, Tensor]] | None:
        """Every block's terms from one stacked pass; ``noise``: the step's draws when given
        (else drawn with ``generator``, which also draws the dropout masks)."""
        if self.stacked is None:
            return None
        stacked = self.stacked
        noise = self.draw_noise(labels, generator) if noise is None else noise
        generators = None if generator is None else [generator]
        return self.stacked_terms(lambda inputs: stacked(images, inputs, generators), labels, noise)

    def after_backward(self) -> None:
        if self.stacked is not None:
            self.stacked.hand_back_gradients()

    @abc.abstractmethod
    def draw_noise(self, labels: Tensor, generator: torch.Generator | None = None) -> Any:
        """The step's random draws, before any block runs."""
        raise NotImplementedError

    @abc.abstractmethod
    def stacked_inputs(self, labels: Tensor, noise: Any) -> Tensor:
        """Every block's label input for this step, (number of blocks, B, d)."""
        raise NotImplementedError

    @abc.abstractmethod
    def stacked_terms(
        self, denoiser: Callable[[Tensor], Tensor], labels: Tensor, noise: Any
    ) -> dict[str, dict[str, Tensor]]:
        """Every unit's loss terms; ``denoiser`` maps ``stacked_inputs`` to the blocks' outputs."""
        raise NotImplementedError
