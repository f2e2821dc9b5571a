"""The variant contract: what the trainer needs from NoProp-DT, -CT, -FM or a baseline.

A variant is an nn.Module holding every trainable part (blocks, head, embedding, schedule).
It names its independently trained ``units``; each unit gets its own optimizer over
``unit_parameters(unit)``; every other parameter is *shared* (head, W_Embed, a learnable
schedule) and is updated on every step. ``losses(x, y, unit)`` returns the terms whose sum is
that unit's objective; the trainer never lets one unit's loss reach another unit.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
import torch
from torch import Tensor, nn

from noprop_core.blocks import BlockSpec
from noprop_core.embedding import LabelEmbedding
from noprop_core.heads import make_head
from noprop_core.schedule import NoiseSchedule

UPDATE_ORDERS = ("sequential", "simultaneous")


@attrs.frozen(kw_only=True)
class VariantParts:
    """The plugins a variant is built from, already constructed from the recipe."""

    embedding: LabelEmbedding
    schedule: NoiseSchedule
    image_shape: tuple[int, int, int]
    num_classes: int
    make_block: Callable[[BlockSpec], nn.Module]
    head: str = "softmax"  # see noprop_core.heads
    head_sigma: float = 1.0

    def make_head(self) -> nn.Module:
        """p̂_θout(y | z) as the recipe's ``model.head`` asks (softmax, Eq. 14, or radial, Eq. 15–16)."""
        return make_head(self.head, self.embedding, self.num_classes, self.head_sigma)


class Variant(nn.Module):
    units: list[str]
    # "sequential": unit-by-unit, each a full pass over the data per epoch (Algorithm 1);
    # "simultaneous": every unit is updated on every minibatch.
    update_order: str = "simultaneous"

    def unit_parameters(self, unit: str) -> list[nn.Parameter]:
        raise NotImplementedError

    def unit_state(self, unit: str) -> list[Tensor]:
        """Every tensor a unit's training changes (parameters, and buffers such as batch-norm
        statistics): what distributed training broadcasts from the unit's owner."""
        return list(self.unit_parameters(unit))

    def shared_parameters(self) -> list[nn.Parameter]:
        owned = {id(p) for unit in self.units for p in self.unit_parameters(unit)}
        return [p for p in self.parameters() if p.requires_grad and id(p) not in owned]

    def losses(self, images: Tensor, labels: Tensor, unit: str) -> dict[str, Tensor]:
        raise NotImplementedError

    def fused_losses(self, images: Tensor, labels: Tensor) -> dict[str, dict[str, Tensor]] | None:
        """Every unit's loss terms from one batched computation, or None (the default): the
        trainer then calls ``losses`` unit by unit. A variant that fuses its units hands the
        gradients back to them in ``after_backward``."""
        return None

    def after_backward(self) -> None:
        """Called after each backward pass, before gradients are clipped and applied."""

    def trajectory(self, images: Tensor, generator: torch.Generator | None = None) -> list[Tensor]:
        """Class scores (B, num_classes) read off every state of the inference chain, z_0 … z_T:
        NoProp's own view of how denoising proceeds. The last entry is the prediction."""
        raise NotImplementedError

    def diagnostics(self) -> dict[str, list[float]]:
        """Per-epoch values worth watching besides losses and accuracy, each a list over t (for
        example the back-propagation baseline's mixing weights α_t). Recorded in the history of
        metrics.json and tracked, one curve per epoch. Default: none."""
        return {}

    def predict(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Class scores (B, num_classes) by the variant's inference procedure."""
        return self.trajectory(images, generator)[-1]
