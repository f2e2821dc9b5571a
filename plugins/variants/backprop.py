"""`backprop`: the paper's back-propagation baseline (Eq. 17–19).

The same T discrete-time blocks, chained at training time as at inference:
z_0 ~ N(0, I), z_t = (1 − α_t) z_{t−1} + α_t û_θt(z_{t−1}, x), α_t = tanh(w_t) with learnable
w_t, and cross-entropy on p̂_θout(y | z_T), trained end to end (gradients flow through the whole
chain). w_t starts at atanh(alpha_init), default α_t = 0.5 (the paper gives no initial value).

The head p̂_θout starts as the nearest-class-embedding classifier (``head_init = "embedding"``,
see `noprop_core.start_at_nearest_embedding`); the paper does not say how it starts. With
PyTorch's random start (``head_init = "default"``) the blocks learn much faster than the small
random head: each block's softmax saturates on whichever class embedding the random head happens
to read as the label, several labels land on the same one, and a saturated softmax passes back no
gradient, so the merge is permanent — on digits, 5 of the 10 classes survive and test accuracy
stays near 57 % (98 % with the embedding start, same budget). NoProp-DT does not need this: its
head is trained on z_T ~ q(z_T | y), which ties z to the labels from the first step.
"""

from __future__ import annotations

import math

import attrs
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from noprop_core import (
    BlockSpec,
    Inference,
    Variant,
    VariantConfig,
    VariantParts,
    at_least,
    between,
    convex_denoise,
    hookimpl,
    one_of,
    start_at_nearest_embedding,
)


@attrs.frozen(kw_only=True)
class BackpropConfig(VariantConfig):
    timesteps: int = attrs.field(default=10, validator=at_least(1))
    alpha_init: float = attrs.field(default=0.5, validator=between(0.001, 0.999))  # α_t = tanh(w_t) at the start
    head_init: str = attrs.field(default="embedding", validator=one_of("embedding", "default"))

    def inference(self) -> Inference:
        return Inference(steps=self.timesteps)  # one step per block


class BackpropChain(Variant):
    units = ["model"]  # one optimizer over everything: this is ordinary end-to-end training

    def __init__(self, config: BackpropConfig, parts: VariantParts):
        super().__init__()
        self.embedding = parts.embedding
        spec = BlockSpec(
            image_shape=parts.image_shape, embedding_dim=parts.embedding.dim, num_classes=parts.num_classes
        )
        self.blocks = nn.ModuleList(parts.make_block(spec) for _ in range(config.timesteps))
        self.mixing = nn.Parameter(torch.full((config.timesteps,), math.atanh(config.alpha_init)))
        self.head = parts.make_head()
        if config.head_init == "embedding":
            start_at_nearest_embedding(self.head, self.embedding.weight)

    def unit_parameters(self, unit: str) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    def block_modules(self) -> list[nn.Module]:
        return list(self.blocks)

    def chain(self, images: Tensor, generator: torch.Generator | None = None) -> list[Tensor]:
        """z_0 ~ N(0, I), then z_t = (1 − α_t) z_{t−1} + α_t û_θt(z_{t−1}, x): every state."""
        weight = self.embedding.weight
        states = [torch.randn((len(images), weight.shape[1]), generator=generator, device=images.device)]
        for block, w in zip(self.blocks, self.mixing):
            alpha = torch.tanh(w)
            states.append((1 - alpha) * states[-1] + alpha * convex_denoise(block(images, states[-1]), weight))
        return states

    def losses(self, images: Tensor, labels: Tensor, unit: str) -> dict[str, Tensor]:
        return {"ce": F.cross_entropy(self.head(self.chain(images)[-1]), labels)}

    def diagnostics(self) -> dict[str, list[float]]:
        """α_1 … α_T: how much of each state the blocks overwrite."""
        return {"mixing_alpha": torch.tanh(self.mixing.detach()).tolist()}

    def trajectory(self, images: Tensor, generator: torch.Generator | None = None) -> list[Tensor]:
        return [self.head(z) for z in self.chain(images, generator)]


def build(config: BackpropConfig, parts: VariantParts) -> BackpropChain:
    return BackpropChain(config, parts)


@hookimpl
def noprop_register_variants(registry):
    registry.add(
        "backprop", build, config=BackpropConfig, description="baseline: DT blocks chained, end-to-end backprop"
    )
