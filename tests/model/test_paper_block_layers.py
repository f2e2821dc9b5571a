"""Figure 6, layer by layer: widths, order, batch norm only in the DT block, the time path, and
an image-shaped label processed the way the image is (its own conv path, no FC residual)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from noprop_core.model.blocks import BlockSpec
from noprop_core.model.paper_block import TIME_EMBEDDING, sinusoidal_embedding
from noprop_plugins.backbones.cnn import CnnConfig, build


def layers(module: nn.Module) -> list[str]:
    """The leaf layers in forward order, each as a short signature."""
    names = []
    for leaf in module.modules():
        if list(leaf.children()) or isinstance(leaf, nn.Identity):
            continue
        if isinstance(leaf, nn.Conv2d):
            names.append(f"conv{leaf.in_channels}>{leaf.out_channels}k{leaf.kernel_size[0]}p{leaf.padding[0]}")
        elif isinstance(leaf, nn.Linear):
            names.append(f"fc{leaf.in_features}>{leaf.out_features}")
        elif isinstance(leaf, nn.BatchNorm1d):
            names.append(f"bn{leaf.num_features}")
        elif isinstance(leaf, nn.MaxPool2d):
            names.append(f"pool{leaf.kernel_size}")
        else:
            names.append(type(leaf).__name__.lower())
    return names


def convs(channels: int = 1) -> list[str]:
    return [
        f"conv{channels}>32k3p1",
        "relu",
        "pool2",
        "dropout",
        "conv32>64k3p1",
        "relu",
        "dropout",
        "conv64>128k3p1",
        "relu",
        "pool2",
        "dropout",
        "flatten",
    ]


CONVS = convs()


def block(time_conditioned: bool, embedding_dim: int = 20, image_shape=(1, 28, 28)):
    spec = BlockSpec(
        image_shape=image_shape, embedding_dim=embedding_dim, num_classes=10, time_conditioned=time_conditioned
    )
    return build(CnnConfig(name="cnn", dropout=0.2), spec)


def test_discrete_time_block_is_figure_6_left():
    dt = block(False)
    assert layers(dt.image_path) == [*CONVS, "fc6272>256", "bn256"]  # 128 · 7 · 7 features
    assert layers(dt.label_in) == ["fc20>256", "bn256", "relu"]
    assert layers(dt.label_residual) == ["fc256>256", "bn256", "relu", "fc256>256", "bn256"]
    assert layers(dt.fusion) == ["fc512>256", "bn256", "relu", "fc256>128", "bn128", "relu", "fc128>10"]
    assert all(m.p == 0.2 for m in dt.modules() if type(m).__name__ == "Dropout")


def test_continuous_time_block_is_figure_6_right():
    ct = block(True)
    assert layers(ct.image_path) == [*CONVS, "fc6272>256", "relu"]
    assert layers(ct.label_path) == ["fc20>256", "relu"]
    assert layers(ct.time_path) == [f"fc{TIME_EMBEDDING}>256", "relu"]
    assert layers(ct.fusion) == ["fc768>256", "relu", "fc256>128", "relu", "fc128>10"]
    assert not any(isinstance(m, nn.BatchNorm1d) for m in ct.modules())


def test_an_image_shaped_label_goes_the_images_way():
    dt = block(False, embedding_dim=784)
    assert layers(dt.label_in) == ["reshapetoimage", *CONVS, "fc6272>256", "bn256"]
    assert dt.label_residual is None
    ct = block(True, embedding_dim=784)
    assert layers(ct.label_path) == ["reshapetoimage", *CONVS, "fc6272>256", "relu"]
    z = torch.randn(3, 784)
    reshape = dt.label_in[0][0]
    torch.testing.assert_close(reshape(z), z.reshape(3, 1, 28, 28))


@pytest.mark.parametrize("time_conditioned", [False, True])
def test_the_forward_pass_is_the_figure_in_order(time_conditioned):
    """Logits recomputed from the block's own layers, wired as the figure wires them."""
    torch.manual_seed(0)
    net = block(time_conditioned, image_shape=(1, 8, 8)).eval()
    x, z, t = torch.randn(4, 1, 8, 8), torch.randn(4, 20), torch.rand(4)
    with torch.no_grad():
        image = net.image_path(x)
        if time_conditioned:
            parts = [image, net.label_path(z), net.time_path(sinusoidal_embedding(t))]
            expected = net.fusion(torch.cat(parts, -1))
            got = net(x, z, t)
        else:
            label = net.label_in(z)
            expected = net.fusion(torch.cat([image, label + net.label_residual(label)], -1))
            got = net(x, z)
    torch.testing.assert_close(got, expected)


def test_sinusoidal_embedding_by_value():
    """[sin(1000 t ω_k), cos(1000 t ω_k)], ω_k = 10000^(−k/32), k = 0 … 31."""
    t = torch.tensor([0.0, 0.25, 0.9])
    embedding = sinusoidal_embedding(t)
    assert embedding.shape == (3, TIME_EMBEDDING)
    for row, value in enumerate(t.tolist()):
        for k in (0, 1, 17, 31):
            angle = 1000 * value * math.exp(-math.log(10_000) * k / 32)
            assert embedding[row, k].item() == pytest.approx(math.sin(angle), abs=1e-4)
            assert embedding[row, 32 + k].item() == pytest.approx(math.cos(angle), abs=1e-4)


def test_a_continuous_time_block_without_t_says_so():
    ct = block(True, image_shape=(1, 8, 8))
    with pytest.raises(ValueError, match="^a continuous-time block needs the time t$"):
        ct(torch.randn(2, 1, 8, 8), torch.randn(2, 20))


def test_image_shaped_labels_of_colour_images_run_through_their_conv_path():
    """CIFAR prototypes: d = 3·8·8, the label reshaped to 3 channels, both flavours run forward."""
    for time_conditioned in (False, True):
        net = block(time_conditioned, embedding_dim=192, image_shape=(3, 8, 8)).eval()
        path = net.label_path if time_conditioned else net.label_in
        assert layers(path)[:2] == ["reshapetoimage", "conv3>32k3p1"]
        t = torch.rand(2) if time_conditioned else None
        assert net(torch.randn(2, 3, 8, 8), torch.randn(2, 192), t).shape == (2, 10)


@pytest.mark.parametrize("shape", [(1, 4, 4), (1, 4, 9), (1, 9, 4)])
def test_four_pixels_are_enough_for_two_poolings(shape):
    net = block(False, image_shape=shape).eval()
    assert net(torch.randn(2, *shape), torch.randn(2, 20)).shape == (2, 10)


def test_a_scalar_time_is_the_same_time_for_the_whole_batch():
    torch.manual_seed(0)
    net = block(True, image_shape=(1, 8, 8)).eval()
    x, z = torch.randn(3, 1, 8, 8), torch.randn(3, 20)
    torch.testing.assert_close(net(x, z, torch.tensor(0.3)), net(x, z, torch.full((3,), 0.3)))
