"""Speed options of a recipe's ``[train]`` section, all off by default.

- ``compile``: ``torch.compile`` every block in place (``nn.Module.compile``: parameter names and
  checkpoints stay the same) with the named backend: ``"inductor"`` (generated kernels; the
  first steps pay the compilation), ``"cudagraphs"`` (CUDA graphs: replays each block's
  kernels without launch overhead; CUDA only), ``"eager"`` (graph capture only: checks that a
  block compiles, without speed-up). Fused blocks (vmap) are not compiled.
- ``channels_last``: images and 4-D weights in NHWC layout, which convolution kernels on recent
  GPUs (and oneDNN on CPU) prefer.
- ``autocast = "bf16"``: the training losses computed under ``torch.autocast`` in bfloat16 (on
  CUDA, and on CPU where oneDNN supports it); parameters and optimizer state stay float32.
- ``cuda_graph``: the fused update of all blocks (``variant.order = "simultaneous"``,
  ``variant.fused = true``) recorded once as a CUDA graph and replayed on every minibatch
  (``noprop_core.graphed``): on a GPU the host, not the GPU, limits a fused step without it.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from noprop_core.errors import NopropError

COMPILE_BACKENDS = ("none", "inductor", "cudagraphs", "eager")
AUTOCAST_DTYPES = ("none", "bf16")


def check_supported(train, device: torch.device, variant: nn.Module, distributed: bool = False) -> None:
    if train.compile == "cudagraphs" and device.type != "cuda":
        raise NopropError(f"train.compile: 'cudagraphs' needs a CUDA device, the run is on {device}")
    if not train.cuda_graph:
        return
    if device.type != "cuda":
        raise NopropError(f"train.cuda_graph: needs a CUDA device, the run is on {device}")
    if getattr(variant, "stacked", None) is None:
        raise NopropError(
            "train.cuda_graph: records the fused update of all blocks; set variant.order = 'simultaneous' "
            "and variant.fused = true (a variant that has them)"
        )
    if distributed:
        raise NopropError("train.cuda_graph: not available under torchrun (the all-reduce is not recorded)")


def apply_to_model(variant: nn.Module, train) -> None:
    """Compile the blocks and change memory formats, in place, after the model is on its device."""
    if train.channels_last:
        variant.to(memory_format=torch.channels_last)
    if train.compile != "none" and getattr(variant, "stacked", None) is None:
        blocks = getattr(variant, "blocks", None) or [variant.block]
        for block in blocks:
            block.compile(backend=train.compile)


def prepare_images(images: torch.Tensor, train) -> torch.Tensor:
    return images.contiguous(memory_format=torch.channels_last) if train.channels_last else images


def loss_context(train, device: torch.device):
    if train.autocast == "bf16":
        # No cast cache under a CUDA graph: cached bf16 weights would be stale on replay.
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16, cache_enabled=not train.cuda_graph)
    return contextlib.nullcontext()
