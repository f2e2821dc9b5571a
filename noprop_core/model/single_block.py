"""What NoProp-CT, NoProp-FM and the adjoint baseline share: one time-conditioned block û(z, x, t)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from noprop_core.diffusion.schedule import NoiseSchedule
from noprop_core.model.blocks import BlockSpec
from noprop_core.model.heads import nearest_embedding_scores
from noprop_core.model.variant import Variant, VariantParts


class SingleBlockVariant(Variant):
    """One block taking t as an input (Figure 6, right), a head and the class embeddings."""

    units = ["block"]

    def __init__(self, parts: VariantParts, *, steps: int, sampler: str = "euler", output_dim: int = 0) -> None:
        super().__init__()
        self.steps = steps  # inference steps over t ∈ [0, 1]
        self.sampler = sampler
        self.embedding = parts.embedding
        self.schedule: NoiseSchedule | None = parts.schedule  # FM and the adjoint use none
        spec = BlockSpec(
            image_shape=parts.image_shape,
            embedding_dim=parts.embedding.dim,
            num_classes=parts.num_classes,
            time_conditioned=True,
            output_dim=output_dim,
        )
        self.block = parts.make_block(spec)
        self.head = parts.make_head()

    def set_inference(self, steps: int | None, sampler: str | None) -> None:
        self.steps = self.steps if steps is None else steps
        self.sampler = self.sampler if sampler is None else sampler

    def unit_parameters(self, unit: str) -> list[nn.Parameter]:
        return list(self.block.parameters())

    def block_modules(self) -> list[nn.Module]:
        return [self.block]

    def noise_schedule(self) -> NoiseSchedule | None:
        return self.schedule

    def initial_noise(self, images: Tensor, generator: torch.Generator | None) -> Tensor:
        """z_0 ~ N(0, I), one row per image."""
        return torch.randn((len(images), self.embedding.dim), generator=generator, device=images.device)

    def nearest_embedding_scores(self, z: Tensor) -> Tensor:
        """−‖z − u_c‖² for every class c: the argmax is the nearest class embedding."""
        return nearest_embedding_scores(z, self.embedding.weight)
