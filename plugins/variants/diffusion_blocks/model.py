"""The torch part of the plugin in this folder (see its ``__init__``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from noprop_core import (
    HEAD_CONDITIONING,
    TIME_SCALE,
    BlockPerUnitVariant,
    BlockSpec,
    LogNormalNoiseLevels,
    NoiseModulation,
    ReadOut,
    SharedParts,
    TimeEmbedder,
    VariantParts,
    convex_denoise,
    edm_preconditioning,
    edm_weight,
    edm_weighted,
    grid_blocks,
    integrate,
    nearest_embedding_scores,
    start_head,
)

from . import DiffusionBlocksConfig


class DiffusionBlocks(BlockPerUnitVariant):
    def __init__(self, config: DiffusionBlocksConfig, parts: VariantParts) -> None:
        super().__init__()
        self.config = config
        self.update_order = config.order
        self.levels = LogNormalNoiseLevels(config.p_mean, config.p_std, config.sigma_min, config.sigma_max)
        self.embedding = parts.embedding
        self.shared_parts = SharedParts()  # what the blocks share (the reference ViT's stem), trained every step
        spec = BlockSpec(
            image_shape=parts.image_shape,
            embedding_dim=parts.embedding.dim,
            num_classes=parts.num_classes,
            time_conditioned=True,
            output_dim=parts.embedding.dim,
            shared=self.shared_parts,
        )
        self.set_blocks(parts.make_block(spec) for _ in range(config.blocks))
        self.head = parts.make_head()
        start_head(self.head, self.class_embeddings().detach(), config.head_init)
        self.head_modulation = None
        if config.head_conditioning == "adaln":  # the blocks' time embedder where they share one (the reference)
            time = self.shared_parts[SharedParts.TIME] if SharedParts.TIME in self.shared_parts else None
            shared = time if isinstance(time, TimeEmbedder) else None
            self.head_modulation = NoiseModulation(parts.embedding.dim, HEAD_CONDITIONING, shared)

    def training_range(self, block: int) -> tuple[float, float]:
        """(σ_low, σ_high) block ``block`` ∈ 1..B trains on: its partition range widened by γ."""
        return self.levels.block_range(block, len(self.blocks), self.config.overlap)

    def class_embeddings(self) -> Tensor:
        """W_Embed with every row of unit length (App. C: against embedding collapse)."""
        return F.normalize(self.embedding.weight, dim=-1)

    def denoise(self, block: int, images: Tensor, z: Tensor, sigma: Tensor) -> tuple[Tensor, Tensor]:
        """(logits, D) of block ``block`` ∈ 1..B at noise level σ (B,):
        D = c_skip·z + c_out·h(x, c_in·z, c_noise), logits = head(D) (modulated by σ)."""
        c_in, c_skip, c_out, c_noise = edm_preconditioning(sigma, self.config.sigma_data)
        # The block embeds its time input t as a sinusoid of TIME_SCALE·t: t = c_noise·scale/TIME_SCALE.
        h = self.blocks[block - 1](images, c_in[:, None] * z, c_noise * (self.config.c_noise_scale / TIME_SCALE))
        denoised = c_skip[:, None] * z + c_out[:, None] * h
        return self.read(denoised, c_noise), denoised

    def read(self, denoised: Tensor, c_noise: Tensor) -> Tensor:
        """The head's logits of D, after the σ-modulation when there is one."""
        if self.head_modulation is not None:
            denoised = self.head_modulation(denoised, c_noise)
        return self.head(denoised)

    def losses(self, images: Tensor, labels: Tensor, unit: str) -> dict[str, Tensor]:
        block = self.block_index(unit) + 1
        u = self.class_embeddings()[labels]
        sigma = self.levels.draw(*self.training_range(block), len(labels), device=u.device)
        z = u + sigma[:, None] * torch.randn_like(u)
        logits, _ = self.denoise(block, images, z, sigma)
        ce = F.cross_entropy(logits, labels, reduction="none")
        return {"weighted_ce": edm_weighted(ce, edm_weight(sigma, self.config.sigma_data), self.config.weighting)}

    def inference_plan(self) -> tuple[Tensor, list[int]]:
        """The noise levels inference visits (σ_max … σ_min, float64) and the block at each."""
        points = self.config.grid_points
        return self.levels.inference_grid(points), grid_blocks(points, len(self.blocks))

    def trajectory(self, images: Tensor, generator: torch.Generator | None = None) -> list[Tensor]:
        return self.read_out(images, generator).trajectory

    def read_out(self, images: Tensor, generator: torch.Generator | None = None) -> ReadOut:
        """The logits at every level of the grid; between levels an Euler step of the
        probability-flow ODE dz/dσ = (z − D)/σ with D = softmax(logits)·W (normalised). The
        nearest-embedding side reads the last call's D, what the prediction's head reads."""
        sigmas, blocks = self.inference_plan()
        weight = self.class_embeddings()
        z = torch.randn((len(images), weight.shape[1]), generator=generator, device=images.device)
        z = z * (1 + sigmas[0].float() ** 2).sqrt()
        scores: list[Tensor] = []

        def velocity(z: Tensor, sigma: Tensor) -> Tensor:  # Euler: one call per level, in order
            logits, _ = self.denoise(blocks[len(scores)], images, z, sigma.expand(len(z)))
            scores.append(logits)
            return (z - convex_denoise(logits, weight)) / sigma

        states = integrate(velocity, z, sigmas.tolist(), "euler")
        last = torch.tensor(sigmas[-1].item(), device=images.device).expand(len(images))
        logits, denoised = self.denoise(blocks[-1], images, states[-1], last)
        return ReadOut([*scores, logits], nearest_embedding_scores(denoised, weight))

    def blind_scores(self, images: Tensor, generator: torch.Generator | None = None) -> list[Tensor]:
        """Each block at the noisiest level of its own range, with z = σ ε (nothing of the label)."""
        scores = []
        for block in range(1, len(self.blocks) + 1):
            _, high = self.levels.block_range(block, len(self.blocks))
            sigma = torch.full((len(images),), high, device=images.device)
            noise = torch.randn((len(images), self.embedding.dim), generator=generator, device=images.device)
            scores.append(self.denoise(block, images, sigma[:, None] * noise, sigma)[0])
        return scores


def build(config: DiffusionBlocksConfig, parts: VariantParts) -> DiffusionBlocks:
    return DiffusionBlocks(config, parts)
