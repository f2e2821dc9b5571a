"""Training across processes (``torchrun``): blocks sharded over ranks, or plain data parallelism.

Launch any recipe with torchrun; noprop notices WORLD_SIZE > 1 and joins the process group
(NCCL on CUDA, gloo on CPU), each rank on ``cuda:LOCAL_RANK`` when GPUs are used:

    torchrun --nproc_per_node 4 -m noprop_core.cli.main run recipes/cifar10_dt.toml --set variant.order=simultaneous
    torchrun --nnodes 2 --nproc_per_node 8 --rdzv_endpoint HOST:29500 -m noprop_core.cli.main run RECIPE ...

``speed.distributed = "blocks"`` (default): unit u is trained by rank u mod world_size, on the
same minibatches on every rank (the data order is seeded by the recipe). Each rank computes only
its own units' losses; the gradients of the shared parameters (head, W_Embed, a learnable
schedule) are summed across ranks by all-reduce, so every rank applies the same shared update.
After every epoch each unit's parameters, buffers and optimizer state are broadcast from its
owner, so every rank — and rank 0's checkpoint — holds the whole model. Every update equals the
single-process simultaneous update: a unit's random draws come from its own seeded stream
(``Trainer.unit_seed``), whichever rank computes it. Needs ``order = "simultaneous"`` (in the
sequential order the shared head would see the blocks' phases in another order).

``speed.distributed = "data"``: every rank trains every unit on its 1/world_size share of each
minibatch, and all gradients are averaged by all-reduce (batch norm statistics stay per rank).

Only rank 0 writes the run directory and tracks; the others train and keep quiet.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import attrs
import torch
import torch.distributed as dist


@attrs.frozen
class Distributed:
    rank: int
    world_size: int
    local_rank: int
    mode: str

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def owns(self, unit_index: int) -> bool:
        return unit_index % self.world_size == self.rank

    def owner(self, unit_index: int) -> int:
        return unit_index % self.world_size

    def all_reduce_gradients(self, parameters: Iterable[torch.nn.Parameter], average: bool) -> None:
        for parameter in parameters:
            if parameter.grad is None:
                parameter.grad = torch.zeros_like(parameter)  # every rank must join every all-reduce
            dist.all_reduce(parameter.grad, op=dist.ReduceOp.SUM)
            if average:
                parameter.grad /= self.world_size

    def broadcast_unit(self, unit_index: int, module_tensors: Iterable[torch.Tensor], optimizer: Any) -> None:
        """Parameters, buffers and optimizer state of one unit, from its owner to every rank."""
        source = self.owner(unit_index)
        for tensor in module_tensors:
            dist.broadcast(tensor.data, src=source)
        if optimizer is not None:
            state = [optimizer.state_dict() if self.rank == source else None]
            dist.broadcast_object_list(state, src=source)
            if self.rank != source:
                optimizer.load_state_dict(state[0])

    def share_units(
        self, variant: Any, unit_optimizers: dict[str, Any], means: dict[str, dict[str, float]]
    ) -> dict[str, dict[str, float]]:
        """After a sharded epoch: every unit's state from its owner to every rank, and the loss
        means of every unit to every rank."""
        for index, unit in enumerate(variant.units):
            self.broadcast_unit(index, variant.unit_state(unit), unit_optimizers[unit])
        gathered: list[dict[str, Any]] = [{} for _ in range(self.world_size)]
        dist.all_gather_object(gathered, means)
        merged = {unit: terms for part in gathered for unit, terms in part.items()}
        return {unit: merged[unit] for unit in variant.units if unit in merged}


def launched_world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def setup(mode: str, device_type: str) -> Distributed | None:
    """Join the process group torchrun set up; None when not launched on several processes."""
    if launched_world_size() <= 1:
        return None
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device_type == "cuda":
        torch.cuda.set_device(local_rank)
    return Distributed(dist.get_rank(), dist.get_world_size(), local_rank, mode)
