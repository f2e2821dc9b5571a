"""DiffusionBlocks' reference ViT (``label_input = "cls"``) by value: the blocks share one stem
(one tensor, not copies), a block starts as the identity under adaLN-Zero and reads the label
from the [CLS] slot after the final norm, attention dropout acts in training only, and the
variant's head modulation reads the stem's time embedder."""

from __future__ import annotations

import pytest

from conftest import REPO


@pytest.fixture(scope="module")
def registry():
    from noprop_core.plugin.manager import load_registry

    return load_registry(autoload=False)


def dit_parts(registry, **config):
    from noprop_core import BlockSpec, SharedParts

    entry = registry.get("backbone", "vit")
    settings = {"name": "vit", "width": 32, "depth": 2, "heads": 4, "label_input": "cls", "dropout": 0.0, **config}
    shared = SharedParts()
    spec = BlockSpec(
        image_shape=(1, 8, 8), embedding_dim=32, num_classes=3, time_conditioned=True, output_dim=32, shared=shared
    )
    return entry.factory(entry.config(**settings), spec), entry.factory(entry.config(**settings), spec), shared


def test_the_dit_blocks_share_one_stem_and_keep_only_their_layers(registry):
    import torch

    first, second, shared = dit_parts(registry)
    assert first.stem is second.stem is shared["vit_stem"] and first.stem.time is shared["time"]
    stem = {id(p) for p in shared.parameters()}
    assert stem and not stem & {id(p) for p in first.parameters()}  # a block's parameters are its layers'
    assert len(list(first.parameters())) == len(list(first.layers.parameters()))
    assert shared["vit_stem"].position.data_ptr() == first.stem.position.data_ptr()  # one tensor, not a copy
    assert not any(key.startswith("stem") for key in first.state_dict())
    assert set(shared.state_dict()) >= {"vit_stem.embed.weight", "vit_stem.position", "vit_stem.norm.weight"}
    torch.testing.assert_close(shared["time"].mlp[0].weight, first.stem.time.mlp[0].weight, rtol=0, atol=0)


def test_a_dit_block_starts_as_the_identity_reading_the_label_in_the_cls_slot_after_the_final_norm(registry):
    """adaLN-Zero: every gate starts at 0, so each layer returns its input and the block's
    output is LayerNorm(z + position[0]) of the [CLS] slot, whatever the image and the time."""
    import torch
    import torch.nn.functional as F

    first, _, shared = dit_parts(registry)
    first.eval()
    stem = shared["vit_stem"]
    images, z, t = torch.randn(5, 1, 8, 8), torch.randn(5, 32), torch.rand(5)
    expected = F.layer_norm(z + stem.position[0, 0], (32,), stem.norm.weight, stem.norm.bias)
    torch.testing.assert_close(first(images, z, t), expected)
    x = torch.randn(5, 5, 32)
    for layer in first.layers:
        torch.testing.assert_close(layer(x, torch.randn(5, shared["time"].width)), x, rtol=0, atol=0)
    with torch.no_grad():  # once the gates open, the image and the time reach the output
        for layer in first.layers:
            layer.modulation.linear.bias.fill_(0.5)
            layer.modulation.linear.weight.normal_(std=0.5)
    moved = first(images, z, t)
    assert not torch.allclose(moved, expected)
    assert not torch.allclose(first(images.flip(-1), z, t), moved) and not torch.allclose(
        first(images, z, 1 - t), moved
    )


def test_attention_dropout_acts_in_training_only(registry):
    import torch

    first, _, _ = dit_parts(registry, attention_dropout=0.5)
    layer = first.layers[0]
    x = torch.randn(4, 6, 32)
    layer.eval()
    torch.testing.assert_close(layer.attend(x), layer.attend(x), rtol=0, atol=0)
    evaluated = layer.attend(x)
    layer.train()
    torch.manual_seed(0)
    assert not torch.allclose(layer.attend(x), evaluated)


def test_diffusion_blocks_share_the_stems_time_embedder_with_the_heads_modulation(registry):
    import attrs

    from noprop_core.engine.training.experiment import build_on_splits
    from noprop_core.engine.training.stand_in import stand_in_splits
    from noprop_core.plugin.manager import load_registry
    from noprop_core.recipe.loading import load_recipe

    full = load_registry()
    recipe = load_recipe(REPO / "recipes" / "cifar100_diffusion_blocks_vit.toml", full, ['device="cpu"'])
    recipe = attrs.evolve(
        recipe, model=attrs.evolve(recipe.model, backbone=attrs.evolve(recipe.model.backbone, mlp_ratio=2))
    )
    variant = build_on_splits(
        recipe, full, stand_in_splits("cifar100", (3, 32, 32), 100), __import__("torch").device("cpu")
    ).variant
    stems = {id(block.stem) for block in variant.blocks}
    assert len(stems) == 1 and len(variant.blocks) == 3 and all(len(block.layers) == 4 for block in variant.blocks)
    assert variant.head_modulation.time is variant.shared_parts["time"]
    shared = {id(p) for p in variant.shared_parameters()}
    assert {id(p) for p in variant.shared_parts.parameters()} <= shared
    for unit in variant.units:
        assert not {id(p) for p in variant.unit_parameters(unit)} & shared
