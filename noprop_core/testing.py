"""Contract tests for plugin authors: inherit a class, name your plugin, run pytest.

    from noprop_core.testing import BackboneContract

    class TestMixer(BackboneContract):
        name = "mlp_mixer"                 # the registered name
        config = {"depth": 2}              # recipe keys besides ``name``
        plugins = [("mixer", my_module)]   # optional: register in-process instead of by entry point

Each class checks what the trainer and the samplers rely on: shapes and dtypes, both time
flavours, image-shaped (prototype) embeddings, that every parameter gets a gradient,
determinism under a seed, a state_dict round trip and moves between devices and dtypes. The
first-party plugins run the same contracts (tests/test_contracts.py). Needs pytest.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import pytest
import torch

from noprop_core.blocks import Block, BlockSpec, ImageConditioned
from noprop_core.plugins import load_registry
from noprop_core.registry import Registry


def _devices() -> list[str]:
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


class PluginContract:
    kind: ClassVar[str]
    name: ClassVar[str]
    config: ClassVar[dict[str, Any]] = {}
    plugins: ClassVar[list[tuple[str, object]]] = []

    @pytest.fixture(scope="class")
    @classmethod
    def registry(cls) -> Registry:
        return load_registry(cls.plugins)

    def make_config(self, registry: Registry):
        return registry.get(self.kind, self.name).config(name=self.name, **self.config)

    def factory(self, registry: Registry):
        return registry.get(self.kind, self.name).factory


class BackboneContract(PluginContract):
    kind = "backbone"
    image_shapes: ClassVar[list[tuple[int, int, int]]] = [(1, 28, 28), (3, 32, 32)]
    num_classes: ClassVar[int] = 10
    batch: ClassVar[int] = 4

    def build(self, registry: Registry, spec: BlockSpec, seed: int = 0) -> torch.nn.Module:
        torch.manual_seed(seed)
        return self.factory(registry)(self.make_config(registry), spec)

    def spec(self, image_shape, time_conditioned=False, embedding_dim=None) -> BlockSpec:
        return BlockSpec(image_shape=image_shape, embedding_dim=embedding_dim or self.num_classes,
                         num_classes=self.num_classes, time_conditioned=time_conditioned)  # fmt: skip

    def inputs(self, spec: BlockSpec, seed: int = 1):
        generator = torch.Generator().manual_seed(seed)
        images = torch.randn(self.batch, *spec.image_shape, generator=generator)
        z = torch.randn(self.batch, spec.embedding_dim, generator=generator)
        t = torch.rand(self.batch, generator=generator) if spec.time_conditioned else None
        return images, z, t

    @pytest.mark.parametrize("time_conditioned", [False, True], ids=["dt", "ct"])
    def test_logits_have_the_right_shape_and_dtype(self, registry, time_conditioned):
        for image_shape in self.image_shapes:
            spec = self.spec(image_shape, time_conditioned)
            logits = self.build(registry, spec)(*self.inputs(spec))
            assert logits.shape == (self.batch, self.num_classes), image_shape
            assert logits.dtype == torch.float32 and torch.isfinite(logits).all()

    def test_image_shaped_embeddings_are_accepted(self, registry):
        image_shape = self.image_shapes[0]
        spec = self.spec(image_shape, embedding_dim=math.prod(image_shape))
        assert self.build(registry, spec)(*self.inputs(spec)).shape == (self.batch, self.num_classes)

    @pytest.mark.parametrize("time_conditioned", [False, True], ids=["dt", "ct"])
    def test_every_parameter_receives_a_gradient(self, registry, time_conditioned):
        spec = self.spec(self.image_shapes[0], time_conditioned)
        block = self.build(registry, spec).train()
        block(*self.inputs(spec)).square().sum().backward()
        missing = [name for name, p in block.named_parameters() if p.requires_grad and p.grad is None]
        assert not missing, f"parameters outside the computation: {missing}"

    def test_same_seed_same_block_and_outputs(self, registry):
        spec = self.spec(self.image_shapes[0])
        first, second = self.build(registry, spec, seed=3).eval(), self.build(registry, spec, seed=3).eval()
        inputs = self.inputs(spec)
        torch.testing.assert_close(first(*inputs), second(*inputs), rtol=0, atol=0)

    def test_state_dict_round_trip(self, registry):
        spec = self.spec(self.image_shapes[0], time_conditioned=True)
        source, target = self.build(registry, spec, seed=3).eval(), self.build(registry, spec, seed=4).eval()
        target.load_state_dict(source.state_dict())
        inputs = self.inputs(spec)
        torch.testing.assert_close(target(*inputs), source(*inputs), rtol=0, atol=0)

    @pytest.mark.parametrize("device", _devices())
    def test_moves_between_devices_and_dtypes(self, registry, device):
        spec = self.spec(self.image_shapes[0])
        block = self.build(registry, spec).eval().to(device=device, dtype=torch.float64)
        images, z, t = (None if v is None else v.to(device, torch.float64) for v in self.inputs(spec))
        logits = block(images, z, t)
        assert logits.device.type == device and logits.dtype == torch.float64

    @pytest.mark.parametrize("time_conditioned", [False, True], ids=["dt", "ct"])
    def test_encoding_images_once_gives_the_same_logits(self, registry, time_conditioned):
        spec = self.spec(self.image_shapes[0], time_conditioned)
        block = self.build(registry, spec).eval()
        if not isinstance(block, Block):
            pytest.skip("not a noprop_core.blocks.Block: samplers re-encode images each step (slower, still correct)")
        images, z, t = self.inputs(spec)
        torch.testing.assert_close(ImageConditioned(block, images)(z, t), block(images, z, t))


class LabelEmbeddingContract(PluginContract):
    kind = "label_embedding"
    num_classes: ClassVar[int] = 10
    image_shape: ClassVar[tuple[int, int, int]] = (1, 8, 8)
    expected_dim: ClassVar[int | None] = None  # None: not checked
    learnable: ClassVar[bool | None] = None

    def build(self, registry: Registry, seed: int = 0):
        generator = torch.Generator().manual_seed(42)
        labels = torch.arange(60) % self.num_classes
        images = torch.randn(60, *self.image_shape, generator=generator) + labels.view(-1, 1, 1, 1)
        torch.manual_seed(seed)
        return self.factory(registry)(self.make_config(registry), num_classes=self.num_classes,
                                      image_shape=self.image_shape, train_images=images, train_labels=labels)  # fmt: skip

    def test_weight_is_a_float_matrix_with_a_row_per_class(self, registry):
        embedding = self.build(registry)
        assert embedding.weight.dim() == 2 and embedding.weight.shape[0] == self.num_classes
        assert embedding.weight.dtype == torch.float32 and torch.isfinite(embedding.weight).all()
        if self.expected_dim is not None:
            assert embedding.dim == self.expected_dim
        if self.learnable is not None:
            assert embedding.learnable is self.learnable

    def test_forward_returns_the_rows_of_the_labels(self, registry):
        embedding = self.build(registry)
        labels = torch.tensor([3, 0, 3, 9 % self.num_classes])
        torch.testing.assert_close(embedding(labels), embedding.weight[labels])

    def test_classes_are_distinct(self, registry):
        weight = self.build(registry).weight.detach()
        distances = torch.cdist(weight, weight) + torch.eye(len(weight)) * 1e9
        assert distances.min() > 1e-3, "two classes share an embedding"

    def test_same_seed_same_weight_and_state_dict_round_trip(self, registry):
        first, second = self.build(registry, seed=5), self.build(registry, seed=5)
        torch.testing.assert_close(first.weight, second.weight, rtol=0, atol=0)
        other = self.build(registry, seed=6)
        other.load_state_dict(first.state_dict())
        torch.testing.assert_close(other.weight, first.weight, rtol=0, atol=0)

    @pytest.mark.parametrize("device", _devices())
    def test_moves_between_devices_and_dtypes(self, registry, device):
        embedding = self.build(registry).to(device=device, dtype=torch.float64)
        assert embedding.weight.device.type == device and embedding.weight.dtype == torch.float64
        assert embedding(torch.tensor([1], device=device)).dtype == torch.float64


class ScheduleContract(PluginContract):
    """NoProp's convention: t = 0 is pure noise, t = 1 is the clean label; ᾱ increases with t."""

    kind = "schedule"

    def build(self, registry: Registry, seed: int = 0):
        torch.manual_seed(seed)
        return self.factory(registry)(self.make_config(registry))

    def test_alpha_bar_is_increasing_inside_zero_one(self, registry):
        schedule = self.build(registry)
        t = torch.linspace(0, 1, 257)
        alpha_bar = schedule.alpha_bar(t).detach()
        assert ((alpha_bar > 0) & (alpha_bar < 1)).all()
        assert (alpha_bar.diff() > 0).all()

    def test_snr_derivative_is_positive_and_matches_a_finite_difference(self, registry):
        schedule = self.build(registry).double()
        t = torch.linspace(0.05, 0.95, 19, dtype=torch.float64)
        h = 1e-5
        numeric = (schedule.snr(t + h) - schedule.snr(t - h)).detach() / (2 * h)
        exact = schedule.snr_derivative(t).detach()
        assert (exact > 0).all()
        torch.testing.assert_close(exact, numeric, rtol=1e-4, atol=1e-6)

    @pytest.mark.parametrize("steps", [1, 10, 1000])
    def test_discretisation_is_strictly_increasing(self, registry, steps):
        chain = self.build(registry).discretize(steps)
        assert chain.steps == steps and (chain.alpha_bar.diff() > 0).all()
        assert (chain.snr_weight > 0).all()

    def test_state_dict_round_trip(self, registry):
        first, other = self.build(registry, seed=1), self.build(registry, seed=2)
        other.load_state_dict(first.state_dict())
        t = torch.linspace(0, 1, 11)
        torch.testing.assert_close(other.alpha_bar(t), first.alpha_bar(t), rtol=0, atol=0)
