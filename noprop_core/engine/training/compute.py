"""Training compute, counted so that methods compare at equal compute, not only at equal epochs.

- Block passes: one example through one trained block, forward and backward (the variant says
  how many a step of its units makes: ``Variant.block_passes``). A NoProp-DT epoch makes T per
  example, NoProp-CT and -FM one, DiffusionBlocks B, back-propagation T.
- FLOPs: counted with torch's FLOP formulas (``torch.utils.flop_counter``: matrix products and
  convolutions, forward and backward) on the first step of each set of units trained together,
  then per example. The count runs as a dispatch mode without ``FlopCounterMode``'s module
  hooks, which break a loss that calls ``torch.autograd.grad`` (NoProp-CT's SNR′).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import attrs
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry


@attrs.define
class ComputeCount:
    block_passes: int = 0
    flops: float = 0.0
    # FLOPs per example of a step of each set of units, once measured; a set never measured
    # (a CUDA graph, a compiled model) leaves the count incomplete.
    per_example: dict[tuple[str, ...], float] = attrs.Factory(dict)
    complete: bool = True

    @contextlib.contextmanager
    def measuring(self, units: list[str], examples: int, allowed: bool = True) -> Iterator[None]:
        """Count the FLOPs of the step inside the block when this set of units has none yet."""
        key = tuple(units)
        if key in self.per_example or not allowed:
            yield
            return
        with FlopCount() as counter:
            yield
        self.per_example[key] = counter.total / examples

    def add(self, units: list[str], examples: int, passes_per_example: int) -> None:
        """A step of ``units`` on ``examples`` examples."""
        self.block_passes += examples * passes_per_example
        flops = self.per_example.get(tuple(units))
        if flops is None:
            self.complete = False
        else:
            self.flops += examples * flops

    def totals(self) -> dict[str, Any]:
        """What the history and metrics.json record: passes, and FLOPs when every step was counted."""
        return {"block_passes": self.block_passes, "flops": self.flops if self.complete else None}

    def state_dict(self) -> dict[str, Any]:
        return {**attrs.asdict(self), "per_example": [[list(k), v] for k, v in self.per_example.items()]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.block_passes, self.flops, self.complete = state["block_passes"], state["flops"], state["complete"]
        self.per_example = {tuple(units): flops for units, flops in state["per_example"]}


class FlopCount(TorchDispatchMode):
    """Every operator run inside it, its FLOPs added by torch's formula where it has one."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # torch leaves it unannotated
        self.total = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.total += formula(*args, **kwargs, out_val=out)
        return out
