"""The variant contract: everything the engine needs from NoProp-DT, -CT, -FM or a baseline.

A variant is an nn.Module holding every trainable part (blocks, head, embedding, schedule).
It names its independently trained ``units``; each unit gets its own optimizer over
``unit_parameters(unit)``; every other parameter is *shared* (head, W_Embed, a learnable
schedule) and is updated on every step. ``losses(x, y, unit)`` returns the terms whose sum is
that unit's objective; the trainer never lets one unit's loss reach another unit.

The engine asks a variant only through the members of ``Variant`` below; each has a default
where one makes sense. How it infers (steps, sampler) is declared by its config's
``inference()`` (``noprop_core.plugin.config.VariantConfig``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol, runtime_checkable

import attrs
import torch
from torch import Tensor, nn

from noprop_core.diffusion.schedule import NoiseSchedule
from noprop_core.model.blocks import BlockSpec
from noprop_core.model.embedding import LabelEmbedding


@attrs.frozen(kw_only=True)
class VariantParts:
    """The plugins a variant is built from, already constructed from the recipe."""

    embedding: LabelEmbedding
    schedule: NoiseSchedule | None  # None where the variant's config does not use one (``model_parts``)
    image_shape: tuple[int, int, int]
    num_classes: int
    make_block: Callable[[BlockSpec], nn.Module]  # the recipe's backbone, for a block of this spec
    make_head: Callable[[], nn.Module]  # the recipe's head p̂_θout(y | z), reading this embedding

    def noise_schedule(self) -> NoiseSchedule:
        """The schedule, for a variant that uses one (its config's ``model_parts`` names it)."""
        if self.schedule is None:
            raise ValueError("this variant uses a noise schedule: its config's model_parts() must name 'schedule'")
        return self.schedule


class ReadOut(NamedTuple):
    """What one inference run reads: class scores at every state of the chain (the last is the
    prediction), and the nearest-class-embedding scores of the state the prediction read (None
    where the prediction is not a head's)."""

    trajectory: list[Tensor]
    nearest: Tensor | None


class Variant(nn.Module):
    units: list[str]
    embedding: LabelEmbedding  # W_Embed; set in __init__ (tracking shows image-shaped ones)
    # "sequential": unit-by-unit, each a full pass over the data per epoch (Algorithm 1);
    # "simultaneous": every unit is updated on every minibatch.
    update_order: str = "simultaneous"

    @property
    def runs_stacked(self) -> bool:
        """Whether ``fused_losses`` computes every unit in one batched pass (default: no). Speed
        options that record the whole update (CUDA graphs) need it; ``compile`` skips it. A
        variant that says yes implements ``StackedVariant`` too (seeds stack through it)."""
        return False

    def block_passes(self, units: list[str]) -> int:
        """How many block passes (forward and backward through one block network) one example
        makes in a training step of ``units``: what training compute is counted in. Default: one
        per unit (each unit is one block)."""
        return len(units)

    def block_modules(self) -> list[nn.Module]:
        """The block networks (what ``speed.compile`` compiles), e.g. one per unit for DT."""
        raise NotImplementedError(f"{type(self).__name__} does not name its block modules (Variant.block_modules)")

    def noise_schedule(self) -> NoiseSchedule | None:
        """The schedule ᾱ(t) the variant trains with, for tracking and metrics; None if it has none."""
        return None

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

    def fused_losses(
        self, images: Tensor, labels: Tensor, generator: torch.Generator | None = None
    ) -> dict[str, dict[str, Tensor]] | None:
        """Every unit's loss terms from one batched computation, or None (the default): the
        trainer then calls ``losses`` unit by unit. A variant that fuses its units hands the
        gradients back to them in ``after_backward``. ``generator``, when given, is the step's
        source of randomness (noise, dropout); otherwise the global one."""
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

    def blind_scores(self, images: Tensor, generator: torch.Generator | None = None) -> list[Tensor]:
        """Per block, its class scores (B, num_classes) for these images when its label input is
        drawn at the noisiest level it is trained on and carries nothing of the label: what the
        block reads from the image alone. A block that ignores the image scores at chance here
        and leaves all the work to the end of the chain. Default: none (not measured)."""
        return []

    def read_out(self, images: Tensor, generator: torch.Generator | None = None) -> ReadOut:
        """One inference run's ``trajectory`` and, for a variant whose prediction is a head reading
        an embedding-space state, the class scores of the nearest class embedding to that same
        state (``ReadOut.nearest``): their accuracies differ by what the head loses. Default: the
        trajectory alone."""
        return ReadOut(self.trajectory(images, generator), None)

    def set_inference(self, steps: int | None, sampler: str | None) -> None:
        """Infer with ``steps`` and ``sampler`` from now on (None: keep): the engine switches to
        the config's ``Inference.training_*`` setting for evaluations during training and back.
        Needed only by a variant whose config declares one."""
        raise NotImplementedError(f"{type(self).__name__} cannot change its inference setting (Variant.set_inference)")

    def predict(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Class scores (B, num_classes) by the variant's inference procedure."""
        return self.trajectory(images, generator)[-1]


@runtime_checkable
class StackedVariant(Protocol):
    """What a variant whose ``runs_stacked`` is true also provides: its stacked step in three
    parts, so that several runs' steps can be stacked into one computation (seeds trained
    together, ``noprop_core.engine.training.seed_stack``): every run draws its noise, the runs' block
    inputs are concatenated and sent through one grouped network, and each run turns its own
    share of the output into its loss terms. The contract kit checks it.

    ``fused_losses(images, labels, generator=g)`` must equal
    ``stacked_terms(lambda z: blocks(images, z), labels, noise)`` with
    ``noise = draw_noise(labels, g)``, where ``blocks`` runs ``block_modules()`` on their inputs."""

    def draw_noise(self, labels: Tensor, generator: torch.Generator | None = None) -> Any:
        """The step's random draws, before any block runs (whatever ``stacked_*`` need)."""
        ...

    def stacked_inputs(self, labels: Tensor, noise: Any) -> Tensor:
        """Every block's label input for this step, (number of blocks, B, d)."""
        ...

    def stacked_terms(
        self, denoiser: Callable[[Tensor], Tensor], labels: Tensor, noise: Any
    ) -> dict[str, dict[str, Tensor]]:
        """Every unit's loss terms; ``denoiser`` maps ``stacked_inputs`` to the blocks' outputs."""
        ...


STACKED_METHODS = ("draw_noise", "stacked_inputs", "stacked_terms")


def missing_stacked_methods(model: Variant) -> list[str]:
    """The methods of ``StackedVariant`` that ``model`` lacks, leaves as non-callables, or
    leaves abstract (``StackedBlockVariant``'s stubs)."""
    found = {name: inspect.getattr_static(model, name, None) for name in STACKED_METHODS}
    return [
        name for name, method in found.items() if not callable(method) or getattr(method, "__isabstractmethod__", False)
    ]
