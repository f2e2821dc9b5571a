"""The recipe's ``[speed]`` section (``noprop_core.speed.section``) resolved once for a run: a
``SpeedPlan`` that the engine consumes (the model prepared, images laid out, losses computed under
it, one line describing it). Choices left to the device (``cuda_graph = "auto"``) are made and
checked here, once; the engine never reads the section itself."""

from __future__ import annotations

import contextlib
from contextlib import AbstractContextManager

import attrs
import torch

from noprop_core.errors import NopropError
from noprop_core.model.variant import Variant
from noprop_core.speed.section import SpeedSection


def check_supported(speed: SpeedSection, device: torch.device, variant: Variant, distributed: bool = False) -> None:
    if speed.compile == "cudagraphs" and device.type != "cuda":
        raise NopropError(f"speed.compile: 'cudagraphs' needs a CUDA device, the run is on {device}")
    if not speed.cuda_graph:
        return
    if device.type != "cuda":
        raise NopropError(f"speed.cuda_graph: needs a CUDA device, the run is on {device}")
    if not variant.runs_stacked:
        raise NopropError(
            "speed.cuda_graph: records the stacked update of all blocks; set variant.order = 'simultaneous' "
            "and variant.fused = true (a variant that has them)"
        )
    if distributed:
        raise NopropError("speed.cuda_graph: not available under torchrun (the all-reduce is not recorded)")


def resolve_cuda_graph(speed: SpeedSection, device: torch.device, variant: Variant, distributed: bool) -> SpeedSection:
    """``cuda_graph = "auto"``: on where a graph applies (CUDA, a stacked variant, no compile, one process)."""
    if speed.cuda_graph != "auto":
        return speed
    applies = device.type == "cuda" and variant.runs_stacked and speed.compile == "none" and not distributed
    return attrs.evolve(speed, cuda_graph=applies)


@attrs.frozen
class SpeedPlan:
    """What a run does for speed on its device. ``section`` is the resolved section (no "auto"
    left), as metrics.json and the checkpoint's recipe record it."""

    section: SpeedSection
    device: torch.device

    @property
    def cuda_graph(self) -> bool:
        return self.section.cuda_graph is True

    @property
    def eager(self) -> bool:
        """The model runs as written: not compiled (what FLOPs are counted on)."""
        return self.section.compile == "none"

    def apply_to_model(self, variant: Variant) -> None:
        """Compile the blocks and change memory formats, in place, after the model is on its device."""
        if self.section.channels_last:
            variant.to(memory_format=torch.channels_last)
        if self.section.compile != "none" and not variant.runs_stacked:
            for block in variant.block_modules():
                block.compile(backend=self.section.compile)

    def prepare_images(self, images: torch.Tensor) -> torch.Tensor:
        return images.contiguous(memory_format=torch.channels_last) if self.section.channels_last else images

    def loss_context(self) -> AbstractContextManager[object]:
        """The context the training losses are computed in."""
        if self.section.autocast == "bf16":
            # No cast cache under a CUDA graph: cached bf16 weights would be stale on replay.
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, cache_enabled=not self.cuda_graph)
        return contextlib.nullcontext()

    def describe(self, variant: Variant) -> str:
        """One line: how this run trains, e.g. "order simultaneous, fused, CUDA graph on cuda:0"."""
        parts = [f"order {variant.update_order}"]
        parts += ["fused (stacked blocks)"] if variant.runs_stacked else []
        parts += ["CUDA graph"] if self.cuda_graph else []
        parts += [f"compile {self.section.compile}"] if self.section.compile != "none" else []
        parts += ["bf16 autocast"] if self.section.autocast == "bf16" else []
        parts += ["channels_last"] if self.section.channels_last else []
        return f"{', '.join(parts)} on {self.device}"


def plan_speed(
    section: SpeedSection, device: torch.device, variant: Variant, *, distributed: bool = False
) -> SpeedPlan:
    """The section resolved for ``variant`` on ``device`` and checked: a one-line error for an
    option the run cannot have."""
    resolved = resolve_cuda_graph(section, device, variant, distributed)
    check_supported(resolved, device, variant, distributed)
    return SpeedPlan(resolved, device)
