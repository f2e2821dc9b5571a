"""`mlp_mixer`: an MLP-Mixer (Tolstikhin et al. 2021) as the image encoder of a NoProp block.

The image is cut into square patches, each patch embedded linearly; ``depth`` mixer layers
alternate an MLP across patches (token mixing) and an MLP across channels, each with layer
norm and a residual connection; the patches are averaged into one feature vector. The rest of
the block — label path, time path, fusion, logits — is noprop's Figure 6 block
(``noprop_core.paper_block``), so the result is comparable with the paper's CNN.
"""

from __future__ import annotations

import attrs
from torch import Tensor, nn

from noprop_core import BackboneConfig, BlockSpec, NopropError, at_least, hookimpl, paper_block

__version__ = "0.1.0"


@attrs.frozen(kw_only=True)
class MixerConfig(BackboneConfig):
    """The keys of a recipe's ``[model.backbone]`` section besides ``name = "mlp_mixer"``."""

    patch_size: int = attrs.field(default=4, validator=at_least(1))
    width: int = attrs.field(default=64, validator=at_least(1))
    depth: int = attrs.field(default=2, validator=at_least(1))
    expansion: int = attrs.field(default=2, validator=at_least(1))


def mlp(size: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(size, hidden), nn.GELU(), nn.Linear(hidden, size))


class MixerLayer(nn.Module):
    def __init__(self, patches: int, width: int, expansion: int):
        super().__init__()
        self.token_norm, self.token_mlp = nn.LayerNorm(width), mlp(patches, patches * expansion)
        self.channel_norm, self.channel_mlp = nn.LayerNorm(width), mlp(width, width * expansion)

    def forward(self, x: Tensor) -> Tensor:  # (B, patches, width)
        x = x + self.token_mlp(self.token_norm(x).transpose(1, 2)).transpose(1, 2)
        return x + self.channel_mlp(self.channel_norm(x))


class MixerEncoder(nn.Module):
    def __init__(self, image_shape: tuple[int, int, int], config: MixerConfig):
        super().__init__()
        channels, height, width = image_shape
        patch = config.patch_size
        if height % patch or width % patch:
            raise NopropError(
                f"model.backbone.patch_size: {patch} does not divide the {height}×{width} images; "
                f"choose a divisor of both"
            )
        patches = (height // patch) * (width // patch)
        self.embed = nn.Conv2d(channels, config.width, kernel_size=patch, stride=patch)
        self.layers = nn.Sequential(*(MixerLayer(patches, config.width, config.expansion) for _ in range(config.depth)))
        self.norm = nn.LayerNorm(config.width)

    def forward(self, images: Tensor) -> Tensor:
        x = self.embed(images).flatten(2).transpose(1, 2)  # (B, patches, width)
        return self.norm(self.layers(x)).mean(dim=1)


def build(config: MixerConfig, spec: BlockSpec) -> nn.Module:
    return paper_block(spec, MixerEncoder(spec.image_shape, config), config.width)


@hookimpl
def noprop_register_backbones(registry):
    registry.add("mlp_mixer", build, config=MixerConfig, description="MLP-Mixer image encoder in the paper's block")
