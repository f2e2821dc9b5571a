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
  GPU, limits a stacked step without it. ``"auto"`` (default): on where it applies (CUDA, a
  stacked variant, no ``compile``, a single process).
- ``threads``: intra-op CPU threads: ``"auto"`` (default; the rule is in
  ``noprop_core.speed.threads``), ``"torch"`` (PyTorch's own default, one per core) or a number.
- ``distributed``: under torchrun, ``"blocks"`` shards the units over ranks, ``"data"`` splits
  each minibatch (``noprop_core.speed.distributed``). Ignored in a single process.

Keys that lived in ``[train]`` before say so in their own field (``moved_from_train``), and the
recipe loader tells a recipe that still has them where they went. This module is the schema only
(no torch): ``noprop_core.speed.plan`` resolves it for a run's device and applies it.
"""

from __future__ import annotations

from typing import Any

import attrs

from noprop_core.plugin.config import CHANGEABLE_ON_RESUME, InvalidValue, one_of

COMPILE_BACKENDS = ("none", "inductor", "cudagraphs", "eager")
AUTOCAST_DTYPES = ("none", "bf16")
DISTRIBUTED_MODES = ("blocks", "data")


THREAD_POLICIES = ("auto", "torch")


def thread_setting(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value in THREAD_POLICIES or (isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 4096):
        return
    raise InvalidValue(attribute.name, f"expected 'auto', 'torch' or a whole number from 1 to 4096, got {value!r}")


MOVED = {"moved_from_train": True}  # the key was in [train] before the [speed] section existed


# How a seed group's new seeds train in one process (``--stack-seeds``): "auto" stacked on a
# GPU only, "on" stacked wherever the update is fused, "off" one after another.
STACK_SEEDS = ("auto", "on", "off")


@attrs.frozen(kw_only=True)
class SpeedSection:
    compile: str = attrs.field(default="none", validator=one_of(*COMPILE_BACKENDS), metadata=MOVED)
    channels_last: bool = attrs.field(default=False, metadata=MOVED)
    autocast: str = attrs.field(default="none", validator=one_of(*AUTOCAST_DTYPES), metadata=MOVED)
    cuda_graph: bool | str = attrs.field(default="auto", validator=one_of(True, False, "auto"), metadata=MOVED)
    distributed: str = attrs.field(default="blocks", validator=one_of(*DISTRIBUTED_MODES), metadata=MOVED)
    threads: str | int = attrs.field(default="auto", validator=thread_setting, metadata=CHANGEABLE_ON_RESUME)


MOVED_FROM_TRAIN = tuple(field.name for field in attrs.fields(SpeedSection) if field.metadata.get("moved_from_train"))
