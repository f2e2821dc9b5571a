"""Fused block training: T blocks of one architecture run as one vmapped computation.

``StackedBlocks`` stacks the blocks' parameters and buffers into (T, ...) tensors and makes each
block's own parameters and buffers *views* into them. The vmapped forward and backward work on
the stacked tensors (one batched kernel where T small kernels would be launched); gradients are
handed back to each block's parameters as views of the stacked gradient. The blocks stay the
source of truth: per-block optimizers, checkpoints, ``load_state_dict`` and per-block inference
work on them as before, and see every update the stacked computation makes.

Each block still gets only its own loss: the blocks share no parameters and no activations,
so the gradient of the summed loss with respect to block t's slice is block t's gradient.

Blocks whose ``image_module()`` is made of plain layers (the paper's conv path) run it as one wide
grouped network (``noprop_core.speed.grouped_network``) and vmap only the rest (``from_features``): vmap's own
lowering of convolutions copies the activations between layers and is slower than T separate
blocks on a CPU. Other blocks (ResNet encoders, third-party backbones) are vmapped whole.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn
from torch.func import functional_call, vmap

from noprop_core.model.blocks import Block
from noprop_core.speed import grouped_network as grouped


class _FromFeatures(nn.Module):
    """A block's ``from_features`` as a forward, so that functional_call can run it."""

    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        self.block = block

    def forward(self, features: Tensor, z: Tensor) -> Tensor:
        assert isinstance(self.block, Block)  # only a Block's image path is run on its own
        return self.block.from_features(features, z)


class StackedBlocks:
    def __init__(self, blocks: nn.ModuleList, grouped_image_path: bool = True) -> None:
        self.blocks = blocks
        self.template = copy.deepcopy(blocks[0]).to("meta")  # the architecture, without storage
        # A Block whose encode_image is one module of plain layers runs it grouped (see module doc).
        self.image_path = self.template.image_module() if isinstance(self.template, Block) else None
        self.image_path_prefix = next(
            (f"{name}." for name, module in self.template.named_modules() if module is self.image_path), ""
        )
        self.grouped_image_path = (
            grouped_image_path and self.image_path is not None and grouped.supports(self.image_path)
        )
        self.rest = _FromFeatures(self.template)
        self.params: dict[str, Tensor] = {}
        self.buffers: dict[str, Tensor] = {}
        self.per_block: list[dict[str, nn.Parameter]] = []  # each block's parameters by name, set by tie()
        self.rest_params: dict[str, Tensor] = {}
        self.rest_buffers: dict[str, Tensor] = {}

    def _tied(self) -> bool:
        if not self.params:
            return False
        name, stacked = next(iter(self.params.items()))
        first = self.per_block[0][name]
        return first.data_ptr() == stacked.data_ptr() and first.device == stacked.device

    def tie(self) -> None:
        """(Re)build the stacked tensors from the blocks; needed again after ``.to(device)``."""
        per_block = self.per_block = [dict(block.named_parameters()) for block in self.blocks]
        self.params = {}
        for name in per_block[0]:
            stacked = torch.stack([params[name].detach() for params in per_block]).requires_grad_()
            for index, params in enumerate(per_block):
                params[name].data = stacked.detach()[index]  # same Parameter object, stacked storage
            self.params[name] = stacked
        per_block_buffers = [dict(block.named_buffers()) for block in self.blocks]
        self.buffers = {}
        for name in per_block_buffers[0]:
            stacked = torch.stack([buffers[name] for buffers in per_block_buffers])
            for index, block in enumerate(self.blocks):
                owner, attribute = _owner(block, name)
                owner._buffers[attribute] = stacked[index]
            self.buffers[name] = stacked
        # The same stacked tensors under the names _FromFeatures gives them.
        self.rest_params = {f"block.{name}": value for name, value in self.params.items()}
        self.rest_buffers = {f"block.{name}": value for name, value in self.buffers.items()}

    def __call__(
        self, images: Tensor, z: Tensor, generators: list[torch.Generator] | None = None, groups: int | None = None
    ) -> Tensor:
        """Logits (T, B, classes) of block t on (images, z[t]) for every t, in one call.

        ``groups`` = G: the blocks are G groups of equal size (seeds trained together), group g
        on its own images ``images[g]`` ((G, B, …)). ``generators``: one per group, for the
        dropout masks of the grouped image path (see ``noprop_core.speed.grouped_network``)."""
        if not self._tied():
            self.tie()
        for stacked in self.params.values():
            stacked.grad = None
        self.template.train(self.blocks[0].training)  # batch norm and dropout follow the blocks' mode

        if self.grouped_image_path:
            return self._grouped_then_vmapped(images, z, generators, groups)
        if groups is not None:
            raise ValueError("per-group images need a grouped image path (plain layers)")

        def one_block(params: dict[str, Tensor], buffers: dict[str, Tensor], z_t: Tensor) -> Tensor:
            return functional_call(self.template, (params, buffers), (images, z_t))

        # randomness="different": every block draws its own dropout masks, as when run alone.
        vmapped = vmap(one_block, in_dims=(0, 0, 0), randomness="different")
        if generators is None or images.device.type != "cpu":
            # On a GPU the masks come from the device's global generator, which a CUDA graph
            # advances on every replay; reseeding it inside a recorded step is not possible.
            return vmapped(self.params, self.buffers, z)
        # vmap draws from the global generator only: seed it from the step's generator (its seed
        # is known on the host), so that the masks follow the step's draws as a grouped path's do.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(generators[0].initial_seed() + 1)
            return vmapped(self.params, self.buffers, z)

    def _grouped_then_vmapped(
        self, images: Tensor, z: Tensor, generators: list[torch.Generator] | None, groups: int | None
    ) -> Tensor:
        assert self.image_path is not None  # grouped_image_path says there is one
        features = grouped.grouped_forward(
            self.image_path,
            self.image_path_prefix,
            self.params,
            self.buffers,
            images,
            len(self.blocks),
            generators,
            groups,
        )

        def rest_of_block(
            params: dict[str, Tensor], buffers: dict[str, Tensor], features_t: Tensor, z_t: Tensor
        ) -> Tensor:
            return functional_call(self.rest, (params, buffers), (features_t, z_t))

        return vmap(rest_of_block, in_dims=(0, 0, 0, 0), randomness="different")(
            self.rest_params, self.rest_buffers, features, z
        )

    def hand_back_gradients(self) -> None:
        """After backward: each block parameter's gradient is its slice of the stacked gradient."""
        for name, stacked in self.params.items():
            if stacked.grad is None:
                continue
            for index, params in enumerate(self.per_block):
                params[name].grad = stacked.grad[index]


def _owner(module: nn.Module, dotted: str) -> tuple[nn.Module, str]:
    *path, attribute = dotted.split(".")
    for part in path:
        module = getattr(module, part)
    return module, attribute
