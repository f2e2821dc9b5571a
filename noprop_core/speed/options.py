"""Applying the recipe's ``[speed]`` section (``noprop_core.speed.section``) to a model and its losses."""

from __future__ import annotations

import contextlib

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


def describe_path(variant: Variant, speed: SpeedSection, device: torch.device) -> str:
    """One line: how this run trains, e.g. "order simultaneous, fused, CUDA graph on cuda:0"."""
    parts = [f"order {variant.update_order}"]
    parts += ["fused (stacked blocks)"] if variant.runs_stacked else []
    parts += ["CUDA graph"] if speed.cuda_graph is True else []
    parts += [f"compile {speed.compile}"] if speed.compile != "none" else []
    parts += ["bf16 autocast"] if speed.autocast == "bf16" else []
    parts += ["channels_last"] if speed.channels_last else []
    return f"{', '.join(parts)} on {device}"


def apply_to_model(variant: Variant, speed: SpeedSection) -> None:
    """Compile the blocks and change memory formats, in place, after the model is on its device."""
    if speed.channels_last:
        variant.to(memory_format=torch.channels_last)
    if speed.compile != "none" and not variant.runs_stacked:
        for block in variant.block_modules():
            block.compile(backend=speed.compile)


def prepare_images(images: torch.Tensor, speed: SpeedSection) -> torch.Tensor:
    return images.contiguous(memory_format=torch.channels_last) if speed.channels_last else images


def loss_context(speed: SpeedSection, device: torch.device):
    if speed.autocast == "bf16":
        # No cast cache under a CUDA graph: cached bf16 weights would be stale on replay.
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16, cache_enabled=not speed.cuda_graph)
    return contextlib.nullcontext()
