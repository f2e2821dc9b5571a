"""The torch part of the plugin in this folder (see its ``__init__``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from noprop_core import (
    ImageConditioned,
    SingleBlockVariant,
    VariantParts,
    integrate,
)

from . import AdjointConfig


class VectorField(nn.Module):
    """f(t, z) = logits(z, x, t) · W_Embed for fixed images (torchdiffeq's argument order)."""

    def __init__(self, variant: AdjointODE, images: Tensor) -> None:
        super().__init__()
        self.variant = variant
        self.logits = ImageConditioned(variant.block, images)

    def forward(self, t: Tensor, z: Tensor) -> Tensor:
        return self.logits(z, t.expand(len(z))) @ self.variant.embedding.weight


class AdjointODE(SingleBlockVariant):
    units = ["model"]

    def __init__(self, config: AdjointConfig, parts: VariantParts) -> None:
        super().__init__(parts, steps=config.steps)

    def block_passes(self, units: list[str]) -> int:
        """Every step solves the ODE backward with a vector-Jacobian product at each of its
        ``steps`` Euler steps (the forward solve makes as many forward-only calls besides)."""
        return self.steps

    def unit_parameters(self, unit: str) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    def losses(self, images: Tensor, labels: Tensor, unit: str) -> dict[str, Tensor]:
        from torchdiffeq import odeint_adjoint

        field = VectorField(self, images)
        z_0 = self.initial_noise(images, None)
        times = torch.tensor([0.0, 1.0], device=images.device)
        options = {"step_size": 1.0 / self.steps}
        z = odeint_adjoint(
            field,
            z_0,
            times,
            method="euler",
            options=options,
            adjoint_options=options,
            adjoint_params=adjoint_parameters(self, field.logits.features),
        )[-1]
        return {"ce": F.cross_entropy(self.head(z), labels)}

    def trajectory(self, images: Tensor, generator: torch.Generator | None = None) -> list[Tensor]:
        field = VectorField(self, images)
        states = integrate(lambda z, t: field(t, z), self.initial_noise(images, generator), self.steps, "euler")
        return [self.head(z) for z in states]


def adjoint_parameters(model: nn.Module, features: Tensor | None) -> tuple[Tensor, ...]:
    """What the adjoint solve must return gradients for.

    The encoded image features enter the field as an adjoint parameter, so their gradient
    flows on into the convolutions. The parameters that produced them are left out: the vjp
    inside the adjoint would otherwise reach them through the features' graph as well, and
    they would be counted twice. (A parameter used both by the image path and by the rest of
    the block is not supported.)
    """
    trainable = [p for p in model.parameters() if p.requires_grad]
    if features is None or features.grad_fn is None:
        return tuple(trainable)
    encoder = _graph_leaves(features)
    return (*[p for p in trainable if id(p) not in encoder], features)


def _graph_leaves(tensor: Tensor) -> set[int]:
    """ids of the leaf tensors (parameters) that ``tensor`` was computed from."""
    leaves, seen, pending = set(), set(), [tensor.grad_fn]
    while pending:
        node = pending.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        if hasattr(node, "variable"):  # AccumulateGrad: the node of a leaf tensor
            leaves.add(id(node.variable))
        pending.extend(next_node for next_node, _ in node.next_functions)
    return leaves


def build(config: AdjointConfig, parts: VariantParts) -> AdjointODE:
    return AdjointODE(config, parts)
