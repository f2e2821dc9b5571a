"""The recipe's ``[speed]`` section: how fast, never what is computed. All off by default.

- ``compile``: ``torch.compile`` every block in place (``nn.Module.compile``: parameter names and
  checkpoints stay the same) with the named backend: ``"inductor"`` (generated kernels; the
  first steps pay the compilation), ``"cudagraphs"`` (CUDA graphs: replays each block's
  kernels without launch overhead; CUDA only), ``"eager"`` (graph capture only: checks that a
  block compiles, without speed-up). Stacked blocks (vmap) are not compiled.
- ``channels_last``: images and 4-D weights in NHWC layout, which convolution kernels on recent
  GPUs (and oneDNN on CPU) prefer.
- ``autocast = "bf16"``: the training losses computed under ``torch.autocast`` in bfloat16 (on
  CUDA, and on CPU where oneDNN supports it); parameters and optimizer state stay float32.
- ``cuda_graph``: the stacked update of all blocks (a variant that runs stacked, e.g. ``dt``
  with ``order = "simultaneous"`` and ``fused = true``) recorded once as a CUDA graph and
  replayed on every minibatch (``noprop_core.speed.cuda_graph``): on a GPU the host, not the
  GPU, limits a stacked step without it.
- ``distributed``: under torchrun, ``"blocks"`` shards the units over ranks, ``"data"`` splits
  each minibatch (``noprop_core.speed.distributed``). Ignored in a single process.

These keys lived in ``[train]`` before; ``MOVED_FROM_TRAIN`` lets the recipe loader say so.
"""

from __future__ import annotations

import contextlib

import attrs
import torch

from noprop_core.errors import NopropError
from noprop_core.model.variant import Variant
from noprop_core.plugin.config import one_of

COMPILE_BACKENDS = ("none", "inductor", "cudagraphs", "eager")
AUTOCAST_DTYPES = ("none", "bf16")
DISTRIBUTED_MODES = ("blocks", "data")


@attrs.frozen(kw_only=True)
class SpeedSection:
    compile: str = attrs.field(default="none", validator=one_of(*COMPILE_BACKENDS))
    channels_last: bool = False
    autocast: str = attrs.field(default="none", validator=one_of(*AUTOCAST_DTYPES))
    cuda_graph: bool = False
    distributed: str = attrs.field(default="blocks", validator=one_of(*DISTRIBUTED_MODES))


MOVED_FROM_TRAIN = tuple(field.name for field in attrs.fields(SpeedSection))


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
