"""Label embeddings (learned, prototype) and heads (softmax, radial): the maths and a real run."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import REPO
from noprop_core import TrainableEmbedding, initial_embedding_weight, start_at_nearest_embedding
from noprop_core.model.blocks import BlockSpec
from noprop_plugins.backbones.cnn import CnnConfig
from noprop_plugins.backbones.cnn import build as build_cnn
from noprop_plugins.embeddings.onehot.embedding import OneHotEmbedding
from noprop_plugins.embeddings.prototype import PrototypeConfig
from noprop_plugins.embeddings.prototype import build as build_prototype
from noprop_plugins.embeddings.prototype.embedding import median_medoids
from noprop_plugins.heads.radial import RadialHeadConfig
from noprop_plugins.heads.radial import build as build_radial
from noprop_plugins.heads.radial.head import RadialHead
from noprop_plugins.heads.softmax import SoftmaxHeadConfig
from noprop_plugins.heads.softmax import build as build_softmax


def test_prototype_is_the_image_with_the_smallest_median_distance_not_the_mean():
    # Class 0 is the constant images 0, 1, 2, 10: median distances 2, 1, 2, 9 -> the image "1"
    # (the image nearest the mean, 3.25, would be "2"). Class 1 is 5, 5.5, 20: with two others
    # the lower median is taken (0.5, 0.5, 14.5) and the first of a tie wins -> "5".
    values = torch.tensor([0.0, 1.0, 2.0, 10.0, 5.0, 5.5, 20.0])
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1])
    images = values.view(-1, 1, 1, 1).expand(-1, 1, 2, 2)
    prototypes = median_medoids(images, labels, num_classes=2, per_class_sample=100)
    assert prototypes[:, 0].tolist() == [1.0, 5.0]
    # Only the first `per_class_sample` images of a class are considered.
    assert median_medoids(images, labels, 2, per_class_sample=2)[0, 0] == 0.0


def test_prototype_embedding_is_trainable_pixel_space_and_matches_a_training_image():
    images = torch.randn(40, 1, 8, 8)
    labels = torch.arange(40) % 4
    embedding = build_prototype(
        PrototypeConfig(name="prototype"),
        num_classes=4,
        image_shape=(1, 8, 8),
        train_images=images,
        train_labels=labels,
    )
    assert embedding.weight.shape == (4, 64) and embedding.learnable
    for label in range(4):
        row = embedding.weight[label].detach()
        assert any(torch.equal(row, image.flatten()) for image in images[labels == label])


def test_cnn_sends_image_shaped_labels_through_their_own_conv_path():
    spec = BlockSpec(image_shape=(1, 8, 8), embedding_dim=64, num_classes=4)
    block = build_cnn(CnnConfig(name="cnn"), spec)
    assert any(isinstance(m, torch.nn.Conv2d) for m in block.label_in.modules())
    flat = build_cnn(CnnConfig(name="cnn"), BlockSpec(image_shape=(1, 8, 8), embedding_dim=20, num_classes=4))
    assert not any(isinstance(m, torch.nn.Conv2d) for m in flat.label_in.modules())


@pytest.mark.parametrize(("classes", "dim"), [(10, 20), (10, 10), (100, 20)])
def test_orthogonal_init_is_orthonormal_where_possible_else_random(classes, dim):
    """Paper §2.2.1: "initialized as an orthogonal matrix when possible, or randomly otherwise"."""
    torch.manual_seed(3)
    weight = initial_embedding_weight(classes, dim, "orthogonal")
    torch.manual_seed(3)
    random = initial_embedding_weight(classes, dim, "random")
    if classes <= dim:
        torch.testing.assert_close(weight @ weight.T, torch.eye(classes), atol=1e-5, rtol=0)
    else:  # the random start itself (not a tight frame, whose WᵀW would be (m/d) I)
        assert torch.equal(weight, random)
        assert (weight.T @ weight - torch.eye(dim) * classes / dim).abs().max() > 1


def test_random_init_rows_are_n_0_i_over_d():
    """Rows from N(0, I/d): entries have variance 1/d, so rows have unit squared norm on average."""
    torch.manual_seed(0)
    weight = initial_embedding_weight(2000, 20, "random")
    assert abs(weight.var().item() - 1 / 20) < 0.002 and abs(weight.mean().item()) < 0.003
    assert abs(weight.pow(2).sum(1).mean().item() - 1) < 0.02
    with pytest.raises(ValueError, match="^unknown embedding init 'identity'; expected one of orthogonal, random$"):
        initial_embedding_weight(3, 3, "identity")


def test_radial_head_is_the_gaussian_log_likelihood_of_eq_15_16():
    embedding = OneHotEmbedding(3)
    head = build_radial(RadialHeadConfig(name="radial", sigma=0.5), embedding=embedding, num_classes=3)
    assert isinstance(head, RadialHead)
    z = torch.randn(5, 3)
    y_tilde = head.linear(z).softmax(-1)  # times W_Embed = I
    expected = torch.stack([-(y_tilde - torch.eye(3)[c]).pow(2).sum(-1) / (2 * 0.25) for c in range(3)], dim=-1)
    torch.testing.assert_close(head(z), expected)
    # W_Embed stays the variant's: the head holds no copy of it.
    assert "weight" not in dict(head.named_buffers()) and len(list(head.parameters())) == 2


@pytest.mark.parametrize("head_name", ["softmax", "radial"])
@pytest.mark.parametrize("scale", [1.0, 30.0])  # one-hot-sized and pixel-sized embeddings
def test_nearest_embedding_start_reads_z_as_squared_distance_to_each_class(head_name, scale):
    torch.manual_seed(0)
    weight = torch.randn(4, 6) * scale
    builders = {"softmax": (build_softmax, SoftmaxHeadConfig), "radial": (build_radial, RadialHeadConfig)}
    build, config = builders[head_name]
    head = build(config(name=head_name), embedding=TrainableEmbedding(weight), num_classes=4)
    start_at_nearest_embedding(head, weight)
    linear = head.linear if head_name == "radial" else head
    spread = sum((weight[i] - weight[j]).pow(2).sum() for i in range(4) for j in range(4) if i != j) / 12
    z = torch.randn(50, 6) * scale
    logits = linear(z).double()
    expected = -torch.cdist(z, weight).pow(2).double() / spread
    difference = logits - expected  # equal up to a constant per example (the −‖z‖² / d̄² term)
    torch.testing.assert_close(difference, difference[:, :1].expand_as(difference), rtol=0, atol=1e-3 * scale**2)
    # Each class embedding is read as its own class, with a margin that does not depend on the
    # embedding's scale: the mean logit gap logit_i(u_i) − logit_j(u_i) over i ≠ j is exactly 1.
    at_embeddings = linear(weight).double()
    assert torch.equal(at_embeddings.argmax(-1), torch.arange(4))
    gaps = at_embeddings.diagonal()[:, None] - at_embeddings
    assert (gaps.sum() / 12).item() == pytest.approx(1.0, rel=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("variant", "embedding", "head"),
    [
        ("dt", "learned", "radial"),
        ("dt", "prototype", "softmax"),
        ("ct", "learned", "softmax"),
        ("fm", "prototype", "softmax"),
    ],
)
def test_digits_run_with_other_embeddings_and_heads(variant, embedding, head, registry, tmp_path):
    from noprop_core.engine.runs.fresh import start_run as run

    overrides = [
        "train.epochs=1",
        "data.subset=200",
        "eval.train_subset=50",
        f"model.embedding.name={embedding}",
        f"model.head.name={head}",
    ]
    if variant != "dt":
        overrides.append("variant.steps=5")
    _, metrics = run(
        REPO / "recipes" / f"digits_{variant}.toml", registry, overrides=overrides, out_dir=tmp_path / "run"
    )
    assert metrics["embedding"] == embedding
    assert all(math.isfinite(v) for v in metrics["history"][0]["loss"].values())
    if variant == "fm":
        assert "anchor" in metrics["history"][0]["loss"]  # a learned embedding gets the anchor term
