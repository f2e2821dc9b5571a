"""The torch part of the plugin in this folder (see its ``__init__``)."""

from __future__ import annotations

import torch
from torch import Tensor

from noprop_core import (
    BlockSpec,
    DiscreteSchedule,
    NoiseSchedule,
    ReadOut,
    StackedBlockVariant,
    VariantParts,
    convex_denoise,
    dt_chain,
    dt_loss,
    dt_noisy_inputs,
    nearest_embedding_scores,
    start_head,
)

from . import DTConfig


class NoPropDT(StackedBlockVariant):
    def __init__(self, config: DTConfig, parts: VariantParts) -> None:
        super().__init__()
        self.eta = config.eta
        config = config.resolved_for("cpu")  # built outside the engine with order = "auto": Algorithm 1
        self.update_order = config.order
        self.embedding = parts.embedding
        self.schedule = parts.noise_schedule()
        spec = BlockSpec(
            image_shape=parts.image_shape, embedding_dim=parts.embedding.dim, num_classes=parts.num_classes
        )
        self.set_blocks(parts.make_block(spec) for _ in range(config.timesteps))
        self.head = parts.make_head()
        start_head(self.head, self.embedding.weight, config.head_init)
        self._fixed_chain: DiscreteSchedule | None = None
        self.stack_blocks(config.fused)

    def chain(self) -> DiscreteSchedule:
        """The discretised schedule; computed once unless the schedule is learnable."""
        if self.schedule.learnable:
            return self.schedule.discretize(len(self.blocks))
        device = self.embedding.weight.device
        if self._fixed_chain is None or self._fixed_chain.alpha_bar.device != device:
            self._fixed_chain = self.schedule.discretize(len(self.blocks)).to(device)
        return self._fixed_chain

    def noise_schedule(self) -> NoiseSchedule:
        return self.schedule

    def _loss(self, denoiser, labels: Tensor, t: Tensor, noise=None) -> dict[str, Tensor]:
        return dt_loss(
            denoiser=denoiser,
            head=self.head,
            embedding_weight=self.embedding.weight,
            labels=labels,
            chain=self.chain(),
            t=t,
            eta=self.eta,
            noise=noise,
        )

    def losses(self, images: Tensor, labels: Tensor, unit: str) -> dict[str, Tensor]:
        block = self.blocks[self.block_index(unit)]
        t = torch.tensor([self.block_index(unit) + 1], device=labels.device)
        terms = self._loss(lambda z_prev: block(images, z_prev[0]).unsqueeze(0), labels, t)
        return {name: value[0] for name, value in terms.items()}

    def draw_noise(self, labels: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """The standard normal draws for z_{t−1} and z_T of every block, before the blocks run."""
        shape = (2, len(self.blocks), len(labels), self.embedding.dim)
        eps_prev, eps_last = torch.randn(shape, device=labels.device, generator=generator).unbind(0)
        return eps_prev, eps_last

    def stacked_inputs(self, labels: Tensor, noise: tuple[Tensor, Tensor]) -> Tensor:
        """What every block sees in a stacked step: z_{t−1} for t = 1 … T, (T, B, d)."""
        t = torch.arange(1, len(self.blocks) + 1, device=labels.device)
        return dt_noisy_inputs(self.embedding.weight, labels, self.chain(), t, noise[0])

    def stacked_terms(self, denoiser, labels: Tensor, noise: tuple[Tensor, Tensor]) -> dict[str, dict[str, Tensor]]:
        """Every block's loss terms, ``denoiser`` mapping z_{t−1} (T, B, d) to the T blocks' logits."""
        t = torch.arange(1, len(self.blocks) + 1, device=labels.device)
        terms = self._loss(denoiser, labels, t, noise)
        return {unit: {name: value[index] for name, value in terms.items()} for index, unit in enumerate(self.units)}

    def inference_states(self, images: Tensor, generator: torch.Generator | None = None) -> list[Tensor]:
        weight = self.embedding.weight

        def denoise(t: int, z_prev: Tensor) -> Tensor:
            return convex_denoise(self.blocks[t - 1](images, z_prev), weight)

        return dt_chain(denoise, self.chain(), len(images), weight.shape[1], device=images.device, generator=generator)

    def trajectory(self, images: Tensor, generator: torch.Generator | None = None) -> list[Tensor]:
        return self.read_out(images, generator).trajectory

    def read_out(self, images: Tensor, generator: torch.Generator | None = None) -> ReadOut:
        states = self.inference_states(images, generator)
        return ReadOut([self.head(z) for z in states], nearest_embedding_scores(states[-1], self.embedding.weight))

    def blind_scores(self, images: Tensor, generator: torch.Generator | None = None) -> list[Tensor]:
        """Every block's logits with z ~ N(0, I) (the chain's start) for its noisy label."""
        z = torch.randn((len(images), self.embedding.dim), generator=generator, device=images.device)
        return [block(images, z) for block in self.blocks]


def build(config: DTConfig, parts: VariantParts) -> NoPropDT:
    return NoPropDT(config, parts)
