"""The torch part of the `resnet18` / `resnet50` plugins: torchvision's ResNet as an image encoder."""

from __future__ import annotations

from torch import nn
from torchvision import models

from noprop_core import BlockSpec, image_label_path, paper_block

from . import FEATURES, ResNetConfig


def resnet_encoder(architecture: str, image_shape: tuple[int, int, int], small_image_max: int) -> nn.Module:
    channels, height, width = image_shape
    network = getattr(models, architecture)(weights=None)
    if max(height, width) <= small_image_max:
        network.conv1 = nn.Conv2d(channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
        network.maxpool = nn.Identity()
    elif channels != 3:
        network.conv1 = nn.Conv2d(channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    network.fc = nn.Identity()
    return network


def build_block(architecture: str, config: ResNetConfig, spec: BlockSpec) -> nn.Module:
    encoder = resnet_encoder(architecture, spec.image_shape, config.small_image_max)
    label_encoder, label_features = image_label_path(spec, config.dropout)
    return paper_block(spec, encoder, FEATURES[architecture], label_encoder, label_features)
