"""`resnet18`, `resnet50`: torchvision's ResNets as the image encoder of a NoProp block.

Adapted to small images as is usual for CIFAR: the 7×7 stride-2 stem becomes a 3×3 stride-1
convolution taking any number of channels, and the max-pool is dropped (for images of at most
``small_image_max`` pixels a side; larger images keep torchvision's stem). The classifier is
removed; the pooled features (512 for ResNet-18, 2048 for ResNet-50) feed the paper's block
(label path, fusion, logits: ``noprop_core.paper_block``). Image-shaped embeddings
(prototypes) go through the paper's small conv path (``noprop_core.image_label_path``), as a
label needs no ResNet.
"""

from __future__ import annotations

import attrs

from noprop_core import BackboneConfig, at_least, between, hookimpl

FEATURES = {"resnet18": 512, "resnet50": 2048}  # pooled features of each architecture


@attrs.frozen(kw_only=True)
class ResNetConfig(BackboneConfig):
    # Images with height and width ≤ this get the 3×3 stride-1 stem and no max-pool.
    small_image_max: int = attrs.field(default=64, validator=at_least(0))
    # Dropout of the label path's conv encoder (prototype embeddings only).
    dropout: float = attrs.field(default=0.2, validator=between(0.0, 0.9))


def builder(architecture: str):
    def build(config: ResNetConfig, spec):
        from .encoder import build_block  # torch and torchvision: imported when a block is built

        return build_block(architecture, config, spec)

    return build


@hookimpl
def noprop_register_backbones(registry) -> None:
    for architecture in FEATURES:
        registry.add(
            architecture,
            builder(architecture),
            config=ResNetConfig,
            description=f"torchvision {architecture} image encoder, small-image stem, in the paper's block",
        )
