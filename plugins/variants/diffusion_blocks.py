"""`diffusion_blocks`: DiffusionBlocks (Shing, Koyama & Akiba, arXiv:2506.14202) on NoProp's labels.

B blocks, each a denoiser of the noisy label embedding z = u_y + σ ε for its own range of noise
levels, trained alone with its own optimizer (each block is a unit: no gradient crosses blocks).
The ranges cut the training noise distribution, ln σ ~ N(P_mean, P_std²) on [σ_min, σ_max],
into B pieces of *equal probability* (``noprop_core.LogNormalNoiseLevels``, t linear in its
cumulative probability; block 1 owns the noisiest levels); ``overlap`` widens each block's
range into its neighbours' by that fraction of its own length on each side.

A block sees (x, c_in·z, t) with c_in = 1/√(σ² + σ_data²) (EDM's input scaling) and t ∈ [0, 1]
the noise level's position in the partition, through the continuous-time paper block. Its
denoised embedding is D = softmax(logits)·W_Embed (``target = "embedding"``, as NoProp), or
D = z − σ ε̂ with ε̂ = logits·W_Embed (``target = "noise"``). Per block, terms:

- ``denoise``: E[λ(σ) ‖D − u_y‖²], σ drawn from the block's range of the log-normal, with EDM's
  weight λ(σ) = (σ² + σ_data²)/(σ σ_data)² (for the noise target the same term written in ε:
  (σ² + σ_data²)/σ_data² ‖ε̂ − ε‖²);
- ``ce`` (learned embeddings only): E[−log p̂(y | u_y + σ_min ε)], the anchor that keeps learned
  class embeddings apart, as NoProp-FM's;
- ``kl``: KL(N(u_y, σ_max² I) ‖ N(0, σ_max² I)) = ‖u_y‖²/(2σ_max²), the prior term of the VE
  process (it keeps a learned W_Embed bounded).

Inference starts from z ~ N(0, σ_max² I) and integrates the probability-flow ODE
dz/dσ = (z − D(z, σ))/σ from σ_max to σ_min, block 1's range first, ``steps`` steps per block
(equal steps in t), ``euler`` or ``heun``; the class whose embedding is nearest to each state is
its prediction (the denoised z at σ_min is an embedding, as in NoProp-FM).

Where the follow-up paper's text available here does not settle a choice, this plugin takes
EDM's values (P_mean = −1.2, P_std = 1.2, σ_min = 0.002, σ_max = 80, σ_data = 0.5, the weight
λ) and NoProp's (T = 10 blocks, the paper block, NoProp-FM's anchor and read-out).
"""

from __future__ import annotations

import attrs
import torch
import torch.nn.functional as F
from torch import Tensor

from noprop_core import (
    ODE_SOLVERS,
    PREDICTION_TARGETS,
    UPDATE_ORDERS,
    BlockPerUnitVariant,
    BlockSpec,
    ImageConditioned,
    Inference,
    InvalidValue,
    LogNormalNoiseLevels,
    VariantConfig,
    VariantParts,
    at_least,
    between,
    block_interval,
    convex_denoise,
    greater_than,
    hookimpl,
    one_of,
)


@attrs.frozen(kw_only=True)
class DiffusionBlocksConfig(VariantConfig):
    blocks: int = attrs.field(default=10, validator=at_least(1))
    overlap: float = attrs.field(default=0.0, validator=between(0.0, 1.0))
    steps: int = attrs.field(default=4, validator=at_least(1))  # inference steps per block
    sampler: str = attrs.field(default="heun", validator=one_of(*ODE_SOLVERS))
    order: str = attrs.field(default="simultaneous", validator=one_of(*UPDATE_ORDERS))
    target: str = attrs.field(default="embedding", validator=one_of(*PREDICTION_TARGETS))
    sigma_min: float = attrs.field(default=0.002, validator=greater_than(0))
    sigma_max: float = attrs.field(default=80.0, validator=greater_than(0))
    p_mean: float = -1.2
    p_std: float = attrs.field(default=1.2, validator=greater_than(0))
    sigma_data: float = attrs.field(default=0.5, validator=greater_than(0))

    def __attrs_post_init__(self):
        if self.sigma_min >= self.sigma_max:
            raise InvalidValue("sigma_min", f"expected less than sigma_max = {self.sigma_max}, got {self.sigma_min}")

    def inference(self) -> Inference:
        return Inference(steps=self.steps, sampler=self.sampler, steps_key="steps", sampler_key="sampler",
                         samplers=ODE_SOLVERS)  # fmt: skip


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


@hookimpl
def noprop_register_variants(registry):
    registry.add("diffusion_blocks", build, config=DiffusionBlocksConfig,
                 description="DiffusionBlocks: B blocks, equal-probability noise ranges (arXiv:2506.14202)")  # fmt: skip
