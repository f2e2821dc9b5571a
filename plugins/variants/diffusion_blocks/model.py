"""The torch part of the plugin in this folder (see its ``__init__``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from noprop_core import (
    BlockPerUnitVariant,
    BlockSpec,
    ImageConditioned,
    LogNormalNoiseLevels,
    VariantParts,
    block_interval,
    convex_denoise,
)

from . import DiffusionBlocksConfig


class DiffusionBlocks(BlockPerUnitVariant):
    def __init__(self, config: DiffusionBlocksConfig, parts: VariantParts):
        super().__init__()
        self.config = config
        self.update_order = config.order
        self.levels = LogNormalNoiseLevels(config.p_mean, config.p_std, config.sigma_min, config.sigma_max)
        self.embedding = parts.embedding
        spec = BlockSpec(image_shape=parts.image_shape, embedding_dim=parts.embedding.dim,
                         num_classes=parts.num_classes, time_conditioned=True)  # fmt: skip
        self.set_blocks(parts.make_block(spec) for _ in range(config.blocks))
        self.head = parts.make_head()

    def interval(self, block: int, overlap: float | None = None) -> tuple[float, float]:
        """Block ``block`` ∈ 1..B's t-interval (training widens it by ``overlap``, inference does not)."""
        return block_interval(block, len(self.blocks), self.config.overlap if overlap is None else overlap)

    def _readout(self, logits: Tensor, z: Tensor, sigma: Tensor) -> Tensor:
        """D(z, σ), the denoised embedding a block's logits give."""
        weight = self.embedding.weight
        if self.config.target == "noise":
            return z - sigma * (logits @ weight)
        return convex_denoise(logits, weight)

    def _scaled(self, z: Tensor, sigma: Tensor) -> Tensor:
        return z / (sigma.pow(2) + self.config.sigma_data**2).sqrt()

    def losses(self, images: Tensor, labels: Tensor, unit: str) -> dict[str, Tensor]:
        index = self.block_index(unit)
        low, high = self.interval(index + 1)
        weight = self.embedding.weight
        u = weight[labels]
        t = low + (high - low) * torch.rand(len(labels), device=u.device)
        sigma = self.levels.sigma(t)[:, None]
        noise = torch.randn_like(u)
        z = u + sigma * noise
        logits = self.blocks[index](images, self._scaled(z, sigma), t)
        sigma_data2 = self.config.sigma_data**2
        if self.config.target == "noise":
            error = (logits @ weight - noise).pow(2).sum(-1)
            loss_weight = (sigma.pow(2) + sigma_data2) / sigma_data2
        else:
            error = (convex_denoise(logits, weight) - u).pow(2).sum(-1)
            loss_weight = (sigma.pow(2) + sigma_data2) / (sigma.pow(2) * sigma_data2)
        terms = {
            "kl": u.pow(2).sum(-1).mean() / (2 * self.config.sigma_max**2),
            "denoise": (loss_weight[:, 0] * error).mean(),
        }
        if self.embedding.learnable:  # the anchor that keeps learned class embeddings apart
            clean = u + self.config.sigma_min * torch.randn_like(u)
            terms["ce"] = F.cross_entropy(self.head(clean), labels)
        return terms

    def inference_grid(self) -> list[tuple[int, Tensor]]:
        """(block, t values) in the order inference visits them: block 1 to B, ``steps`` equal
        steps of t across each block's own interval."""
        grid = []
        for block in range(1, len(self.blocks) + 1):
            low, high = self.interval(block, overlap=0.0)
            grid.append((block, torch.linspace(low, high, self.config.steps + 1, dtype=torch.float64)))
        return grid

    def _slope(self, logits: ImageConditioned, z: Tensor, sigma: Tensor, t: Tensor) -> Tensor:
        """dz/dσ = (z − D(z, σ))/σ, the probability-flow ODE of the VE process."""
        t = t.to(z.device, torch.float32).expand(len(z))
        return (z - self._readout(logits(self._scaled(z, sigma), t), z, sigma)) / sigma

    def trajectory(self, images: Tensor, generator: torch.Generator | None = None) -> list[Tensor]:
        weight = self.embedding.weight
        z = self.config.sigma_max * torch.randn((len(images), weight.shape[1]), generator=generator,
                                                device=images.device)  # fmt: skip
        states = [z]
        for block, ts in self.inference_grid():
            logits = ImageConditioned(self.blocks[block - 1], images)
            sigmas = self.levels.sigma(ts).to(images.device, torch.float32)

            for step in range(self.config.steps):
                h = sigmas[step + 1] - sigmas[step]
                d = self._slope(logits, z, sigmas[step], ts[step])
                z_next = z + h * d
                if self.config.sampler == "heun":
                    z_next = z + 0.5 * h * (d + self._slope(logits, z_next, sigmas[step + 1], ts[step + 1]))
                z = z_next
                states.append(z)
        return [-torch.cdist(z, weight).pow(2) for z in states]  # the nearest class embedding wins


def build(config: DiffusionBlocksConfig, parts: VariantParts) -> DiffusionBlocks:
    return DiffusionBlocks(config, parts)
