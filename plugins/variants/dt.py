"""`dt`: NoProp-DT (paper §2.1, Eq. 8, Algorithm 1).

T blocks û_θt(z_{t−1}, x), a linear head p̂_θout(y | z) = softmax(Linear(z)) (Eq. 14) and the
class embeddings W_Embed. Each block is its own unit: its loss (see
``noprop_core.objectives.dt_block_loss``) only reaches its own parameters and the shared head
and embedding. Inference chains the blocks from z_0 ~ N(0, I) with the a_t, b_t, c_t update.
"""

from __future__ import annotations

import attrs
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from noprop_core.blocks import BlockSpec
from noprop_core.config import InvalidValue, VariantConfig, at_least, greater_than, one_of
from noprop_core.fused import StackedBlocks
from noprop_core.gaussian import kl_to_standard_normal
from noprop_core.hookspecs import hookimpl
from noprop_core.objectives import convex_denoise, dt_block_loss
from noprop_core.samplers import dt_chain
from noprop_core.schedule import DiscreteSchedule
from noprop_core.variant import UPDATE_ORDERS, Variant, VariantParts


@attrs.frozen(kw_only=True)
class DTConfig(VariantConfig):
    timesteps: int = attrs.field(default=10, validator=at_least(1))
    eta: float = attrs.field(default=0.1, validator=greater_than(0))
    order: str = attrs.field(default="sequential", validator=one_of(*UPDATE_ORDERS))
    # With order = "simultaneous": compute all T blocks in one vmapped pass (noprop_core.fused).
    # Same updates as unfused; faster where kernel launches dominate (GPUs, small blocks).
    fused: bool = False

    def __attrs_post_init__(self):
        if self.fused and self.order != "simultaneous":
            raise InvalidValue(
                "fused",
                f"fused = true needs order = 'simultaneous' (all blocks on each minibatch), got order = {self.order!r}",
            )


class NoPropDT(Variant):
    def __init__(self, config: DTConfig, parts: VariantParts):
        super().__init__()
        self.eta = config.eta
        self.update_order = config.order
        self.embedding = parts.embedding
        self.schedule = parts.schedule
        spec = BlockSpec(
            image_shape=parts.image_shape, embedding_dim=parts.embedding.dim, num_classes=parts.num_classes
        )
        self.blocks = nn.ModuleList(parts.make_block(spec) for _ in range(config.timesteps))
        self.head = parts.make_head()
        self.units = [f"block{t}" for t in range(1, config.timesteps + 1)]
        self._fixed_chain: DiscreteSchedule | None = None
        self.stacked = StackedBlocks(self.blocks) if config.fused else None

    def chain(self) -> DiscreteSchedule:
        """The discretised schedule; computed once unless the schedule is learnable."""
        if self.schedule.learnable:
            return self.schedule.discretize(len(self.blocks))
        device = self.embedding.weight.device
        if self._fixed_chain is None or self._fixed_chain.alpha_bar.device != device:
            self._fixed_chain = self.schedule.discretize(len(self.blocks)).to(device)
        return self._fixed_chain

    def block_index(self, unit: str) -> int:
        return self.units.index(unit)

    def unit_parameters(self, unit: str) -> list[nn.Parameter]:
        return list(self.blocks[self.block_index(unit)].parameters())

    def unit_state(self, unit: str) -> list[Tensor]:
        block = self.blocks[self.block_index(unit)]
        return [*block.parameters(), *block.buffers()]

    def losses(self, images: Tensor, labels: Tensor, unit: str) -> dict[str, Tensor]:
        index = self.block_index(unit)
        return dt_block_loss(
            block=self.blocks[index],
            head=self.head,
            embedding_weight=self.embedding.weight,
            images=images,
            labels=labels,
            chain=self.chain(),
            t=index + 1,
            eta=self.eta,
        )

    def fused_losses(self, images: Tensor, labels: Tensor, noise: tuple[Tensor, Tensor] | None = None):
        """Every block's L_t (the terms of ``dt_block_loss``) in one vmapped pass; ``noise``
        optionally gives the standard normal draws for z_{t−1} and z_T, each (T, B, d)."""
        if self.stacked is None:
            return None
        weight, chain, steps = self.embedding.weight, self.chain(), len(self.blocks)
        u = weight[labels]
        eps_prev, eps_last = (
            noise if noise is not None else (torch.randn(2, steps, *u.shape, device=u.device).unbind(0))
        )
        alpha_prev = chain.alpha_bar[:-1].view(-1, 1, 1)  # ᾱ_{t−1} for t = 1..T
        z_prev = alpha_prev.sqrt() * u + (1 - alpha_prev).sqrt() * eps_prev
        u_hat = convex_denoise(self.stacked(images, z_prev), weight)  # (T, B, d)
        squared_error = (u_hat - u).pow(2).sum(-1).mean(-1)  # (T,)
        alpha_last = chain.alpha_bar[-1]
        z_last = alpha_last.sqrt() * u + (1 - alpha_last).sqrt() * eps_last
        ce = (
            F.cross_entropy(self.head(z_last).flatten(0, 1), labels.repeat(steps), reduction="none")
            .view(steps, -1)
            .mean(-1)
        )
        kl = kl_to_standard_normal(u, chain.alpha_bar[0]).mean()
        denoise = 0.5 * steps * self.eta * chain.snr_weight * squared_error
        return {unit: {"ce": ce[t], "kl": kl, "denoise": denoise[t]} for t, unit in enumerate(self.units)}

    def after_backward(self) -> None:
        if self.stacked is not None:
            self.stacked.hand_back_gradients()

    def inference_states(self, images: Tensor, generator: torch.Generator | None = None) -> list[Tensor]:
        weight = self.embedding.weight

        def denoise(t: int, z_prev: Tensor) -> Tensor:
            return convex_denoise(self.blocks[t - 1](images, z_prev), weight)

        return dt_chain(denoise, self.chain(), len(images), weight.shape[1], device=images.device, generator=generator)

    def trajectory(self, images: Tensor, generator: torch.Generator | None = None) -> list[Tensor]:
        return [self.head(z) for z in self.inference_states(images, generator)]


def build(config: DTConfig, parts: VariantParts) -> NoPropDT:
    return NoPropDT(config, parts)


@hookimpl
def noprop_register_variants(registry):
    registry.add("dt", build, config=DTConfig, description="NoProp-DT: T blocks, each trained alone (Algorithm 1)")
