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


def vit_config(**settings):
    from noprop_plugins.backbones.vit import ViTConfig

    return ViTConfig(
        **{"name": "vit", "width": 32, "depth": 1, "heads": 4, "patch_size": 2, "dropout": 0.0, **settings}
    )


def spec(**fields):
    from noprop_core import BlockSpec

    return BlockSpec(**{"image_shape": (1, 8, 8), "embedding_dim": 10, "num_classes": 10, **fields})


def test_each_label_input_builds_its_own_block_around_a_vit():
    import torch

    from noprop_core.model.paper_block import ContinuousTimeBlock, DiscreteTimeBlock
    from noprop_plugins.backbones.vit.encoder import DiTBlock, LabelTokenViT, ViTEncoder, build

    images, z, t = torch.randn(3, 1, 8, 8), torch.randn(3, 10), torch.rand(3)
    path = build(vit_config(), spec()).eval()
    assert type(path) is DiscreteTimeBlock and isinstance(path.image_path[0], ViTEncoder)
    assert path.image_path[1].in_features == 32 and path(images, z).shape == (3, 10)
    timed = build(vit_config(), spec(time_conditioned=True)).eval()
    assert type(timed) is ContinuousTimeBlock and timed(images, z, t).shape == (3, 10)
    # an image-shaped (prototype) embedding gets its own conv path, as the paper's block does
    prototype = build(vit_config(), spec(embedding_dim=64)).eval()
    assert prototype.label_in[0][0].image_shape == (1, 8, 8)
    assert prototype(images, torch.randn(3, 64)).shape == (3, 10)
    token = build(vit_config(label_input="token"), spec()).eval()
    assert type(token) is LabelTokenViT and token.encoder.position.shape == (1, 2 + 16, 32)
    assert token(images, z).shape == (3, 10)
    cls = build(vit_config(label_input="cls"), spec(time_conditioned=True, output_dim=10)).eval()
    assert type(cls) is DiTBlock and cls(images, z, t).shape == (3, 10)


def test_bad_vit_shapes_and_a_cls_block_without_time_are_refused_in_one_line():
    from noprop_core import NopropError
    from noprop_plugins.backbones.vit.encoder import build

    with pytest.raises(NopropError, match=r"^model.backbone.patch_size: 3 does not divide the 8×8 images; choose"):
        build(vit_config(patch_size=3), spec())
    with pytest.raises(NopropError, match=r"^model.backbone.heads: 5 does not divide width = 32$"):
        build(vit_config(heads=5), spec())
    with pytest.raises(NopropError, match=r"patch_size: 3 does not divide the 9×8 images"):  # one side divides
        build(vit_config(patch_size=3), spec(image_shape=(1, 9, 8)))
    with pytest.raises(
        NopropError,
        match=r"^model.backbone.label_input: 'cls' conditions every layer on the time; the variant gives none$",
    ):
        build(vit_config(label_input="cls"), spec())


def test_a_transformer_layer_and_a_dit_layer_compute_their_formulas():
    """Recomputed from the layers' weights: multi-head attention, the GELU MLP, the residuals,
    and (DiT) shift, scale and gate from SiLU(Linear(c)) on both branches; gates made non-zero."""
    import math

    import torch
    import torch.nn.functional as F

    from noprop_plugins.backbones.vit.encoder import DiTLayer, TransformerLayer

    torch.manual_seed(0)
    config = vit_config(heads=4)
    x, c = torch.randn(2, 5, 32), torch.randn(2, 6)

    def attention(layer, h):
        q, k, v = layer.qkv(h).chunk(3, dim=-1)
        heads = [
            torch.softmax(q[..., i * 8 : (i + 1) * 8] @ k[..., i * 8 : (i + 1) * 8].transpose(1, 2) / math.sqrt(8), -1)
            @ v[..., i * 8 : (i + 1) * 8]
            for i in range(4)
        ]
        return layer.attention_out(torch.cat(heads, dim=-1))

    def mlp(layer, h):
        return layer.mlp[3](F.gelu(layer.mlp[0](h)))

    plain = TransformerLayer(config).eval()
    with torch.no_grad():
        expected = x + attention(plain, plain.attention_norm(x))
        expected = expected + mlp(plain, plain.mlp_norm(expected))
        torch.testing.assert_close(plain(x), expected)

    dit = DiTLayer(config, conditioning=6).eval()
    with torch.no_grad():
        dit.modulation.linear.weight.normal_(std=0.5)
        dit.modulation.linear.bias.normal_(std=0.5)
        shift_a, scale_a, gate_a, shift_m, scale_m, gate_m = F.silu(dit.modulation.linear(c)).chunk(6, dim=-1)
        h = dit.attention_norm(x) * (1 + scale_a[:, None]) + shift_a[:, None]
        expected = x + gate_a[:, None] * attention(dit, h)
        h = dit.mlp_norm(expected) * (1 + scale_m[:, None]) + shift_m[:, None]
        expected = expected + gate_m[:, None] * mlp(dit, h)
        torch.testing.assert_close(dit(x, c), expected)


def test_the_mlp_drops_out_inside_in_training():
    import torch

    from noprop_plugins.backbones.vit.encoder import TransformerLayer

    layer = TransformerLayer(vit_config(dropout=0.5))
    h = torch.randn(4, 5, 32)
    layer.train()
    trained = layer.mlp(h)
    layer.eval()
    assert not torch.allclose(trained, layer.mlp(h))


def test_a_dit_stem_alone_builds_its_parts_as_the_reference_sizes_them():
    import torch

    from noprop_core import TIME_SCALE, TimeEmbedder
    from noprop_plugins.backbones.vit.encoder import DiTBlock

    torch.manual_seed(0)
    block = DiTBlock(spec(time_conditioned=True, output_dim=7), vit_config(label_input="cls")).eval()
    stem = block.stem
    assert isinstance(stem.time, TimeEmbedder) and stem.time.width == 32 // 6
    assert 0.017 < stem.position.std().item() < 0.023 and stem.position.shape == (1, 1 + 16, 32)
    assert (stem.label_in.in_features, stem.label_in.out_features) == (10, 32)
    assert (stem.label_out.in_features, stem.label_out.out_features) == (32, 7)
    assert DiTBlock(spec(time_conditioned=True), vit_config(label_input="cls", width=12, heads=2)).stem.time.width == 2
    assert DiTBlock(spec(time_conditioned=True), vit_config(label_input="cls", width=6, heads=2)).stem.time.width == 1
    same = DiTBlock(spec(embedding_dim=32, time_conditioned=True, output_dim=32), vit_config(label_input="cls"))
    assert isinstance(same.stem.label_in, torch.nn.Identity) and isinstance(same.stem.label_out, torch.nn.Identity)

    images, z, t = torch.randn(3, 1, 8, 8), torch.randn(3, 10), torch.rand(3)
    with torch.no_grad():
        for layer in block.layers:  # open the gates, so that the time reaches the output
            layer.modulation.linear.weight.normal_(std=0.5)
            layer.modulation.linear.bias.normal_(std=0.5)
        x = stem.tokens(images, z)
        for layer in block.layers:
            x = layer(x, stem.time(TIME_SCALE * t))
        torch.testing.assert_close(block(images, z, t), stem.label_out(stem.norm(x)[:, 0]))
        one_time = torch.tensor(0.3)
        torch.testing.assert_close(block(images, z, one_time), block(images, z, one_time.expand(3)))


def test_the_label_token_vit_reads_cls_after_the_label_and_time_token_and_the_patches():
    import torch

    from noprop_core import sinusoidal_embedding
    from noprop_plugins.backbones.vit.encoder import LabelTokenViT

    torch.manual_seed(0)
    block = LabelTokenViT(spec(time_conditioned=True), vit_config()).eval()
    encoder = block.encoder
    assert 0.017 < encoder.position.std().item() < 0.023
    with torch.no_grad():
        block.cls.normal_()
        images, z, t = torch.randn(3, 1, 8, 8), torch.randn(3, 10), torch.rand(3)
        label = block.label(z) + block.time(sinusoidal_embedding(t))
        patches = encoder.embed(images).flatten(2).transpose(1, 2)
        x = torch.cat([block.cls.expand(3, 1, 32), label[:, None], patches], dim=1) + encoder.position
        expected = block.out(encoder.norm(encoder.layers(x))[:, 0])
        torch.testing.assert_close(block(images, z, t), expected)
        torch.testing.assert_close(block(images, z, torch.tensor(0.4)), block(images, z, torch.full((3,), 0.4)))
    with pytest.raises(ValueError, match="^a continuous-time block needs the time t$"):
        block(images, z)
