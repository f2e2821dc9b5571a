"""Label embeddings' starting values by value: prototypes are the per-class median medoids of
the sampled images, the other inits have the documented shape and scale."""

from __future__ import annotations

import pytest
import torch

from noprop_core import NopropError
from noprop_plugins.embeddings.onehot import OneHotConfig
from noprop_plugins.embeddings.onehot import build as build_onehot
from noprop_plugins.embeddings.prototype import PrototypeConfig
from noprop_plugins.embeddings.prototype import build as build_prototype
from noprop_plugins.embeddings.prototype.embedding import median_medoids


def brute_force_medoid(members: torch.Tensor) -> torch.Tensor:
    """The member whose median distance to the *other* members is smallest, by loops."""
    best, best_median = None, None
    for i, candidate in enumerate(members):
        distances = torch.stack([(candidate - other).norm() for j, other in enumerate(members) if j != i])
        median = distances.sort().values[(len(distances) - 1) // 2]  # torch's lower median
        if best_median is None or median < best_median:
            best, best_median = candidate, median
    return best


def test_prototypes_are_median_medoids_of_each_classes_sample():
    torch.manual_seed(0)
    images = torch.randn(60, 1, 3, 3) * torch.linspace(0.5, 2, 60)[:, None, None, None]
    labels = torch.arange(60) % 3
    weight = median_medoids(images, labels, 3, per_class_sample=7)
    flat = images.reshape(60, -1)
    for label in range(3):
        sample = flat[labels == label][:7]  # only the first per_class_sample images count
        torch.testing.assert_close(weight[label], brute_force_medoid(sample))
    embedding = build_prototype(
        PrototypeConfig(name="prototype", per_class_sample=7),
        num_classes=3,
        image_shape=(1, 3, 3),
        train_images=images,
        train_labels=labels,
    )
    torch.testing.assert_close(embedding.weight.detach(), weight)


def test_a_class_with_one_image_uses_it_and_a_class_with_none_is_an_error():
    images = torch.arange(3 * 4, dtype=torch.float32).reshape(3, 1, 2, 2)
    labels = torch.tensor([0, 0, 1])
    weight = median_medoids(images, labels, 2, per_class_sample=5)
    torch.testing.assert_close(weight[1], images[2].flatten())
    with pytest.raises(NopropError, match="class 2 has no training images"):
        median_medoids(images, labels, 3, per_class_sample=5)


@pytest.mark.parametrize("init", ["orthogonal", "random"])
def test_prototype_with_another_init_has_pixel_dimension(init):
    torch.manual_seed(1)
    embedding = build_prototype(
        PrototypeConfig(name="prototype", init=init),
        num_classes=5,
        image_shape=(1, 4, 4),
        train_images=None,
        train_labels=None,
    )
    assert embedding.weight.shape == (5, 16) and embedding.learnable
    if init == "orthogonal":  # 5 classes ≤ 16 dimensions: orthonormal rows
        torch.testing.assert_close(embedding.weight @ embedding.weight.T, torch.eye(5), atol=1e-5, rtol=0)


def test_onehot_is_the_fixed_identity():
    embedding = build_onehot(OneHotConfig(name="onehot"), num_classes=4)
    torch.testing.assert_close(embedding.weight, torch.eye(4))
    assert not embedding.learnable
    torch.testing.assert_close(embedding(torch.tensor([2, 0])), torch.eye(4)[[2, 0]])


@pytest.mark.parametrize("kind", ["learned", "prototype"])
def test_fixed_norms_keep_each_rows_starting_norm_while_its_direction_learns(kind):
    from noprop_plugins.embeddings.learned import LearnedConfig
    from noprop_plugins.embeddings.learned import build as build_learned

    torch.manual_seed(0)
    images = torch.rand(30, 1, 3, 3) * torch.linspace(0.5, 3, 30)[:, None, None, None]
    labels = torch.arange(30) % 3

    def build(fixed_norms):
        torch.manual_seed(1)
        if kind == "learned":
            return build_learned(
                LearnedConfig(name="learned", dim=9, init="random", fixed_norms=fixed_norms), num_classes=3
            )
        return build_prototype(
            PrototypeConfig(name="prototype", fixed_norms=fixed_norms),
            num_classes=3,
            image_shape=(1, 3, 3),
            train_images=images,
            train_labels=labels,
        )

    fixed, free = build(True), build(False)
    start = free.weight.detach().clone()
    torch.testing.assert_close(fixed.weight.detach(), start)  # the same start either way
    assert fixed.learnable
    # a loss that shrinks the rows and turns them towards one direction
    target = torch.tensor([1.0] + [0.0] * 8)
    for embedding in (fixed, free):
        optimizer = torch.optim.SGD(embedding.parameters(), lr=0.1)
        for _ in range(20):
            optimizer.zero_grad()
            (embedding.weight - 0.1 * target).pow(2).sum().backward()
            optimizer.step()
    torch.testing.assert_close(fixed.weight.norm(dim=-1).detach(), start.norm(dim=-1))
    assert (free.weight.norm(dim=-1) < 0.8 * start.norm(dim=-1)).all()  # without: the rows shrink
    cosine = torch.nn.functional.cosine_similarity(fixed.weight.detach(), target[None])
    assert (cosine > torch.nn.functional.cosine_similarity(start, target[None]) + 0.05).all()
    # the state dict holds what rebuilds the same rows
    rebuilt = build(True)
    rebuilt.load_state_dict(fixed.state_dict())
    torch.testing.assert_close(rebuilt.weight, fixed.weight)


def test_a_trainable_embedding_is_free_unless_asked_to_fix_its_norms():
    from torch.nn.utils import parametrize

    from noprop_core import TrainableEmbedding

    weight = torch.randn(3, 5)
    assert not parametrize.is_parametrized(TrainableEmbedding(weight))
    assert parametrize.is_parametrized(TrainableEmbedding(weight, fixed_norms=True), "weight")
