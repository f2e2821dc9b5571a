"""The backbone contract kit (noprop_core.testing) on every first-party backbone."""

from __future__ import annotations

import pytest

from conftest import REPO
from noprop_core.plugin.manager import load_registry
from noprop_core.testing import BackboneContract

# Every registered first-party backbone with its default config, generated from the registry: a
# new backbone is checked without editing this file; the classes below add other settings.
for _entry in load_registry(autoload=True).entries("backbone"):
    if _entry.source.distribution == "noprop":
        globals()[f"TestDefault_{_entry.name}"] = type(
            f"TestDefault_{_entry.name}", (BackboneContract,), {"name": _entry.name}
        )


class TestCnn(BackboneContract):
    name = "cnn"


class TestResNet18(BackboneContract):
    name = "resnet18"
    image_shapes = [(1, 28, 28), (3, 32, 32), (3, 72, 72)]  # the last keeps torchvision's stem


class TestResNet50(BackboneContract):
    name = "resnet50"
    image_shapes = [(3, 32, 32)]
    batch = 2


class TestViT(BackboneContract):
    name = "vit"
    config = {"width": 32, "depth": 2, "heads": 4}
    image_shapes = [(1, 28, 28), (3, 32, 32), (1, 8, 8)]


class TestViTLabelToken(BackboneContract):
    """The ViT as the whole block, the noisy label a token beside [CLS] and the patches."""

    name = "vit"
    config = {"width": 32, "depth": 2, "heads": 4, "label_input": "token"}
    image_shapes = [(1, 28, 28), (3, 32, 32), (1, 8, 8)]


class TestViTDiT(BackboneContract):
    """DiffusionBlocks' reference ViT: the noisy label as [CLS], adaLN-Zero layers (its own stem
    when the variant shares none)."""

    name = "vit"
    config = {"width": 32, "depth": 2, "heads": 4, "label_input": "cls", "attention_dropout": 0.1}
    image_shapes = [(1, 28, 28), (3, 32, 32), (1, 8, 8)]
    time_conditioned_only = True


def test_the_label_token_carries_the_label_and_the_time(registry):
    import torch

    from noprop_core import BlockSpec

    entry = registry.get("backbone", "vit")
    config = entry.config(name="vit", width=32, depth=2, heads=4, label_input="token", dropout=0.0)
    spec = BlockSpec(image_shape=(1, 8, 8), embedding_dim=5, num_classes=3, time_conditioned=True, output_dim=5)
    torch.manual_seed(0)
    block = entry.factory(config, spec).eval()
    images, z, t = torch.randn(4, 1, 8, 8), torch.randn(4, 5), torch.rand(4)
    out = block(images, z, t)
    assert out.shape == (4, 5)
    # the output is read off [CLS], which attends to the label token: changing z or t changes it
    assert not torch.allclose(block(images, z + 1, t), out)
    assert not torch.allclose(block(images, z, 1 - t), out)
    assert not torch.allclose(block(images.flip(-1), z, t), out)
    assert block.encoder.position.shape == (1, 2 + 4, 32)  # [CLS], label, 2×2 patches of 4 px


@pytest.mark.slow
def test_vit_blocks_learn_the_digits(registry, tmp_path):
    """Far above chance (10 %) in a few short epochs: the ViT encoder trains inside the paper's block."""
    from noprop_core.engine.runs.fresh import start_run as run

    overrides = ["variant.timesteps=3", "train.epochs=6", "tracker.name=none", "device=cpu"]
    metrics = run(REPO / "recipes" / "digits_dt_vit.toml", registry, overrides=overrides, out_dir=tmp_path / "run")[1]
    assert metrics["test_accuracy"] > 60, metrics["test_accuracy"]
