"""Contract tests for plugin authors: inherit a class, name your plugin, run pytest.

    from noprop_core.testing import BackboneContract

    class TestMixer(BackboneContract):
        name = "mlp_mixer"                 # the registered name
        config = {"depth": 2}              # recipe keys besides ``name``
        plugins = [("mixer", my_module)]   # optional: register in-process instead of by entry point

One class per plugin kind (``noprop_core.plugin.kinds.KINDS``): ``VariantContract``,
``BackboneContract``, ``LabelEmbeddingContract``, ``ScheduleContract``, ``HeadContract``,
``DatasetContract``, ``TrackerContract``, ``LauncherContract``. Each checks what the engine and the samplers rely on
(shapes and dtypes, gradients reaching only what they should, determinism under a seed,
state_dict round trips, the factory's signature against its kind's protocol). The first-party
plugins run the same contracts (tests/plugins/). Needs pytest.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, ClassVar

import attrs
import pytest
import torch

from noprop_core.model.blocks import Block, BlockSpec, ImageConditioned
from noprop_core.model.embedding import TrainableEmbedding
from noprop_core.model.heads import Head, start_at_nearest_embedding
from noprop_core.model.splits import TensorSplits
from noprop_core.model.variant import StackedVariant, Variant
from noprop_core.plugin.kinds import BY_NAME
from noprop_core.plugin.launcher import Job, Launcher
from noprop_core.plugin.manager import load_registry
from noprop_core.plugin.parts import variant_parts
from noprop_core.plugin.registry import Registry
from noprop_core.plugin.tracker import Tracker


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

    def make_config(self, registry: Registry) -> Any:
        return registry.get(self.kind, self.name).config(name=self.name, **self.config)

    def factory(self, registry: Registry) -> Any:
        return registry.get(self.kind, self.name).factory

    def test_factory_can_be_called_as_its_kind_says(self, registry: Registry) -> None:
        assert BY_NAME[self.kind].factory_mismatch(self.factory(registry)) is None

    def test_config_defaults_are_valid(self, registry: Registry) -> None:
        config = self.make_config(registry)
        assert isinstance(config, BY_NAME[self.kind].config_base)


class BackboneContract(PluginContract):
    kind = "backbone"
    image_shapes: ClassVar[list[tuple[int, int, int]]] = [(1, 28, 28), (3, 32, 32)]
    num_classes: ClassVar[int] = 10
    batch: ClassVar[int] = 4
    # A backbone whose blocks need the time (DiffusionBlocks' DiT): every spec is time-conditioned.
    time_conditioned_only: ClassVar[bool] = False

    def build(self, registry: Registry, spec: BlockSpec, seed: int = 0) -> torch.nn.Module:
        torch.manual_seed(seed)
        return self.factory(registry)(self.make_config(registry), spec)

    def spec(
        self, image_shape: tuple[int, int, int], time_conditioned: bool = False, embedding_dim: int | None = None
    ) -> BlockSpec:
        return BlockSpec(
            image_shape=image_shape,
            embedding_dim=embedding_dim or self.num_classes,
            num_classes=self.num_classes,
            time_conditioned=time_conditioned or self.time_conditioned_only,
        )

    def inputs(self, spec: BlockSpec, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        generator = torch.Generator().manual_seed(seed)
        images = torch.randn(self.batch, *spec.image_shape, generator=generator)
        z = torch.randn(self.batch, spec.embedding_dim, generator=generator)
        t = torch.rand(self.batch, generator=generator) if spec.time_conditioned else None
        return images, z, t

    @pytest.mark.parametrize("time_conditioned", [False, True], ids=["dt", "ct"])
    def test_logits_have_the_right_shape_and_dtype(self, registry: Registry, time_conditioned: bool) -> None:
        for image_shape in self.image_shapes:
            spec = self.spec(image_shape, time_conditioned)
            logits = self.build(registry, spec)(*self.inputs(spec))
            assert logits.shape == (self.batch, self.num_classes), image_shape
            assert logits.dtype == torch.float32 and torch.isfinite(logits).all()

    @pytest.mark.parametrize("time_conditioned", [False, True], ids=["dt", "ct"])
    def test_output_dim_sets_the_output_width(self, registry: Registry, time_conditioned: bool) -> None:
        # Noise-predicting and denoising blocks return a vector of the embedding space.
        spec = attrs.evolve(self.spec(self.image_shapes[0], time_conditioned, embedding_dim=23), output_dim=23)
        assert self.build(registry, spec)(*self.inputs(spec)).shape == (self.batch, 23)

    def test_image_shaped_embeddings_are_accepted(self, registry: Registry) -> None:
        image_shape = self.image_shapes[0]
        spec = self.spec(image_shape, embedding_dim=math.prod(image_shape))
        assert self.build(registry, spec)(*self.inputs(spec)).shape == (self.batch, self.num_classes)

    @pytest.mark.parametrize("time_conditioned", [False, True], ids=["dt", "ct"])
    def test_every_parameter_receives_a_gradient(self, registry: Registry, time_conditioned: bool) -> None:
        spec = self.spec(self.image_shapes[0], time_conditioned)
        block = self.build(registry, spec).train()
        block(*self.inputs(spec)).square().sum().backward()
        missing = [name for name, p in block.named_parameters() if p.requires_grad and p.grad is None]
        assert not missing, f"parameters outside the computation: {missing}"

    def test_same_seed_same_block_and_outputs(self, registry: Registry) -> None:
        spec = self.spec(self.image_shapes[0])
        first, second = self.build(registry, spec, seed=3).eval(), self.build(registry, spec, seed=3).eval()
        inputs = self.inputs(spec)
        torch.testing.assert_close(first(*inputs), second(*inputs), rtol=0, atol=0)

    def test_state_dict_round_trip(self, registry: Registry) -> None:
        spec = self.spec(self.image_shapes[0], time_conditioned=True)
        source, target = self.build(registry, spec, seed=3).eval(), self.build(registry, spec, seed=4).eval()
        target.load_state_dict(source.state_dict())
        inputs = self.inputs(spec)
        torch.testing.assert_close(target(*inputs), source(*inputs), rtol=0, atol=0)

    @pytest.mark.parametrize("device", _devices())
    def test_moves_between_devices_and_dtypes(self, registry: Registry, device: str) -> None:
        spec = self.spec(self.image_shapes[0])
        block = self.build(registry, spec).eval().to(device=device, dtype=torch.float64)
        images, z, t = (None if v is None else v.to(device, torch.float64) for v in self.inputs(spec))
        logits = block(images, z, t)
        assert logits.device.type == device and logits.dtype == torch.float64

    @pytest.mark.parametrize("time_conditioned", [False, True], ids=["dt", "ct"])
    def test_encoding_images_once_gives_the_same_logits(self, registry: Registry, time_conditioned: bool) -> None:
        spec = self.spec(self.image_shapes[0], time_conditioned)
        block = self.build(registry, spec).eval()
        if not isinstance(block, Block):
            pytest.skip(
                "not a noprop_core.model.blocks.Block: samplers re-encode images each step (slower, still correct)"
            )
        images, z, t = self.inputs(spec)
        torch.testing.assert_close(ImageConditioned(block, images)(z, t), block(images, z, t))
        image_module = block.image_module()
        if image_module is not None:  # stacked training may run this module in its place
            assert any(image_module is m for m in block.modules())
            torch.testing.assert_close(image_module(images), block.encode_image(images))


class LabelEmbeddingContract(PluginContract):
    kind = "label_embedding"
    num_classes: ClassVar[int] = 10
    image_shape: ClassVar[tuple[int, int, int]] = (1, 8, 8)
    expected_dim: ClassVar[int | None] = None  # None: not checked
    learnable: ClassVar[bool | None] = None

    def build(self, registry: Registry, seed: int = 0) -> Any:
        generator = torch.Generator().manual_seed(42)
        labels = torch.arange(60) % self.num_classes
        images = torch.randn(60, *self.image_shape, generator=generator) + labels.view(-1, 1, 1, 1)
        torch.manual_seed(seed)
        return self.factory(registry)(
            self.make_config(registry),
            num_classes=self.num_classes,
            image_shape=self.image_shape,
            train_images=images,
            train_labels=labels,
        )

    def test_weight_is_a_float_matrix_with_a_row_per_class(self, registry: Registry) -> None:
        embedding = self.build(registry)
        assert embedding.weight.dim() == 2 and embedding.weight.shape[0] == self.num_classes
        assert embedding.weight.dtype == torch.float32 and torch.isfinite(embedding.weight).all()
        if self.expected_dim is not None:
            assert embedding.dim == self.expected_dim
        if self.learnable is not None:
            assert embedding.learnable is self.learnable

    def test_forward_returns_the_rows_of_the_labels(self, registry: Registry) -> None:
        embedding = self.build(registry)
        labels = torch.tensor([3, 0, 3, 9 % self.num_classes])
        torch.testing.assert_close(embedding(labels), embedding.weight[labels])

    def test_classes_are_distinct(self, registry: Registry) -> None:
        weight = self.build(registry).weight.detach()
        distances = torch.cdist(weight, weight) + torch.eye(len(weight)) * 1e9
        assert distances.min() > 1e-3, "two classes share an embedding"

    def test_same_seed_same_weight_and_state_dict_round_trip(self, registry: Registry) -> None:
        first, second = self.build(registry, seed=5), self.build(registry, seed=5)
        torch.testing.assert_close(first.weight, second.weight, rtol=0, atol=0)
        other = self.build(registry, seed=6)
        other.load_state_dict(first.state_dict())
        torch.testing.assert_close(other.weight, first.weight, rtol=0, atol=0)

    @pytest.mark.parametrize("device", _devices())
    def test_moves_between_devices_and_dtypes(self, registry: Registry, device: str) -> None:
        embedding = self.build(registry).to(device=device, dtype=torch.float64)
        assert embedding.weight.device.type == device and embedding.weight.dtype == torch.float64
        assert embedding(torch.tensor([1], device=device)).dtype == torch.float64


class ScheduleContract(PluginContract):
    """NoProp's convention: t = 0 is pure noise, t = 1 is the clean label; ᾱ increases with t."""

    kind = "schedule"

    def build(self, registry: Registry, seed: int = 0) -> Any:
        torch.manual_seed(seed)
        return self.factory(registry)(self.make_config(registry))

    def test_alpha_bar_is_increasing_inside_zero_one(self, registry: Registry) -> None:
        schedule = self.build(registry)
        t = torch.linspace(0, 1, 257)
        alpha_bar = schedule.alpha_bar(t).detach()
        assert ((alpha_bar > 0) & (alpha_bar < 1)).all()
        assert (alpha_bar.diff() > 0).all()

    def test_snr_derivative_is_positive_and_matches_a_finite_difference(self, registry: Registry) -> None:
        schedule = self.build(registry).double()
        t = torch.linspace(0.05, 0.95, 19, dtype=torch.float64)
        h = 1e-5
        numeric = (schedule.snr(t + h) - schedule.snr(t - h)).detach() / (2 * h)
        exact = schedule.snr_derivative(t).detach()
        assert (exact > 0).all()
        torch.testing.assert_close(exact, numeric, rtol=1e-4, atol=1e-6)

    @pytest.mark.parametrize("steps", [1, 10, 1000])
    def test_discretisation_is_strictly_increasing(self, registry: Registry, steps: int) -> None:
        chain = self.build(registry).discretize(steps)
        assert chain.steps == steps and (chain.alpha_bar.diff() > 0).all()
        assert (chain.snr_weight > 0).all()

    def test_state_dict_round_trip(self, registry: Registry) -> None:
        first, other = self.build(registry, seed=1), self.build(registry, seed=2)
        other.load_state_dict(first.state_dict())
        t = torch.linspace(0, 1, 11)
        torch.testing.assert_close(other.alpha_bar(t), first.alpha_bar(t), rtol=0, atol=0)


class HeadContract(PluginContract):
    """p̂_θout(y | z): logits for every class, W_Embed read but not owned."""

    kind = "head"
    num_classes: ClassVar[int] = 4
    dim: ClassVar[int] = 6
    batch: ClassVar[int] = 5

    def build(self, registry: Registry, seed: int = 0) -> Any:
        embedding = TrainableEmbedding(
            torch.randn(self.num_classes, self.dim, generator=torch.Generator().manual_seed(9))
        )
        torch.manual_seed(seed)
        head = self.factory(registry)(self.make_config(registry), embedding=embedding, num_classes=self.num_classes)
        return head, embedding

    def z(self) -> torch.Tensor:
        return torch.randn(self.batch, self.dim, generator=torch.Generator().manual_seed(1))

    def test_logits_for_every_class(self, registry: Registry) -> None:
        head, _ = self.build(registry)
        assert isinstance(head, Head)
        logits = head(self.z())
        assert logits.shape == (self.batch, self.num_classes) and torch.isfinite(logits).all()

    def test_the_embedding_is_read_not_owned(self, registry: Registry) -> None:
        head, embedding = self.build(registry)
        assert all(p is not embedding.weight for p in head.parameters())
        assert all(
            not torch.equal(t, embedding.weight)
            for t in head.state_dict().values()
            if t.shape == embedding.weight.shape
        )

    def test_every_parameter_receives_a_gradient(self, registry: Registry) -> None:
        head, _ = self.build(registry)
        head(self.z()).logsumexp(-1).sum().backward()
        assert all(p.grad is not None for p in head.parameters() if p.requires_grad)

    def test_nearest_embedding_start_sets_its_linear_layer(self, registry: Registry) -> None:
        head, embedding = self.build(registry)
        try:
            linear = head.linear_layer()
        except NotImplementedError:
            pytest.skip("no linear layer: the backprop baseline's head_init = 'embedding' does not apply")
        assert isinstance(linear, torch.nn.Linear) and any(linear is m for m in head.modules())
        start_at_nearest_embedding(head, embedding.weight)
        with torch.no_grad():  # each class embedding is read as its own class by the linear map
            assert torch.equal(linear(embedding.weight).argmax(-1), torch.arange(self.num_classes))

    def test_state_dict_round_trip(self, registry: Registry) -> None:
        (first, _), (other, _) = self.build(registry, seed=1), self.build(registry, seed=2)
        other.load_state_dict(first.state_dict())
        z = self.z()
        torch.testing.assert_close(other(z), first(z), rtol=0, atol=0)


class VariantContract(PluginContract):
    """A training variant built from the recipe's other plugins, checked as the engine uses it.

    ``parts`` names the other plugins (kind -> (name, config)); the defaults are first-party ones."""

    kind = "variant"
    image_shape: ClassVar[tuple[int, int, int]] = (1, 8, 8)
    num_classes: ClassVar[int] = 4
    batch: ClassVar[int] = 6
    parts: ClassVar[dict[str, tuple[str, dict[str, Any]]]] = {
        "backbone": ("cnn", {"dropout": 0.0}),
        "label_embedding": ("learned", {"dim": 5}),  # learned: W_Embed is a shared parameter
        "schedule": ("cosine", {}),
        "head": ("softmax", {}),
    }

    # The variant's inference steps are capped at this many (through the key its config's
    # ``inference()`` names), so that a default config is checked quickly; None: as configured.
    quick_steps: ClassVar[int | None] = 4

    def make_config(self, registry: Registry) -> Any:
        config = super().make_config(registry)
        inference = config.inference()
        if self.quick_steps is None or inference.steps_key is None or inference.steps is None:
            return config
        if self.config.get(inference.steps_key) is not None:  # a test's own choice stays
            return config
        return attrs.evolve(config, **{inference.steps_key: min(inference.steps, self.quick_steps)})

    def part(self, registry: Registry, kind: str) -> Any:
        name, config = self.parts[kind]
        return registry.get(kind, name).config(name=name, **config)

    def build(self, registry: Registry, seed: int = 0) -> Variant:
        torch.manual_seed(seed)
        images, labels = self.data()
        parts = variant_parts(
            registry,
            backbone=self.part(registry, "backbone"),
            embedding=self.part(registry, "label_embedding"),
            schedule=self.part(registry, "schedule") if "schedule" in self.parts else None,
            head=self.part(registry, "head"),
            image_shape=self.image_shape,
            train_images=images,
            train_labels=labels,
            num_classes=self.num_classes,
        )
        return self.factory(registry)(self.make_config(registry), parts)

    def data(self) -> tuple[torch.Tensor, torch.Tensor]:
        generator = torch.Generator().manual_seed(3)
        labels = torch.arange(self.batch) % self.num_classes
        return torch.randn(self.batch, *self.image_shape, generator=generator), labels

    def test_units_are_named_once_and_own_disjoint_parameters(self, registry: Registry) -> None:
        variant = self.build(registry)
        assert isinstance(variant, Variant) and variant.units and len(set(variant.units)) == len(variant.units)
        owners: dict[int, str] = {}
        for unit in variant.units:
            parameters = variant.unit_parameters(unit)
            assert parameters, f"unit {unit} has no parameters"
            for parameter in parameters:
                assert owners.setdefault(id(parameter), unit) == unit, "a parameter belongs to two units"
        assert {id(p) for p in variant.shared_parameters()}.isdisjoint(owners)

    def test_losses_are_named_finite_scalars(self, registry: Registry) -> None:
        variant = self.build(registry).train()
        images, labels = self.data()
        for unit in variant.units:
            terms = variant.losses(images, labels, unit)
            assert terms and all(isinstance(name, str) for name in terms)
            assert all(v.dim() == 0 and torch.isfinite(v) for v in terms.values()), terms

    def test_each_unit_gets_gradient_only_from_its_own_loss(self, registry: Registry) -> None:
        variant = self.build(registry).train()
        images, labels = self.data()
        for unit in variant.units:
            variant.zero_grad(set_to_none=True)
            torch.stack(list(variant.losses(images, labels, unit).values())).sum().backward()
            own = variant.unit_parameters(unit)
            assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in own), f"{unit}: no gradient"
            for other in variant.units:
                if other != unit:
                    reached = [
                        p for p in variant.unit_parameters(other) if p.grad is not None and p.grad.abs().sum() > 0
                    ]
                    assert not reached, f"the loss of {unit} reached {other}"

    def test_trajectory_ends_at_predict(self, registry: Registry) -> None:
        variant = self.build(registry).eval()
        images, _ = self.data()
        with torch.no_grad():
            trajectory = variant.trajectory(images, torch.Generator().manual_seed(5))
            prediction = variant.predict(images, torch.Generator().manual_seed(5))
        assert len(trajectory) >= 2
        assert all(scores.shape == (self.batch, self.num_classes) for scores in trajectory)
        torch.testing.assert_close(trajectory[-1], prediction, rtol=0, atol=0)

    def test_state_dict_round_trip(self, registry: Registry) -> None:
        first, other = self.build(registry, seed=1).eval(), self.build(registry, seed=2).eval()
        other.load_state_dict(first.state_dict())
        images, _ = self.data()
        with torch.no_grad():
            expected = first.predict(images, torch.Generator().manual_seed(5))
            torch.testing.assert_close(
                other.predict(images, torch.Generator().manual_seed(5)), expected, rtol=0, atol=0
            )

    def test_block_modules_hold_unit_parameters(self, registry: Registry) -> None:
        variant = self.build(registry)
        blocks = variant.block_modules()
        assert blocks and all(isinstance(block, torch.nn.Module) for block in blocks)
        owned = {id(p) for unit in variant.units for p in variant.unit_parameters(unit)}
        assert {id(p) for block in blocks for p in block.parameters()} <= owned

    def test_inference_options_name_real_config_keys(self, registry: Registry) -> None:
        config = self.make_config(registry)
        inference = config.inference()
        fields = {field.name for field in attrs.fields(type(config))}
        for key in (inference.steps_key, inference.sampler_key):
            assert key is None or key in fields, f"inference() names {key!r}, not a key of {type(config).__name__}"
        if inference.sampler_key is not None:
            assert inference.sampler in inference.samplers

    def test_a_stacked_variant_computes_every_unit_at_once(self, registry: Registry) -> None:
        variant = self.build(registry).train()
        images, labels = self.data()
        terms = variant.fused_losses(images, labels)
        if not variant.runs_stacked:
            assert terms is None
            return
        assert terms is not None and set(terms) == set(variant.units)

    def test_a_stacked_variant_splits_its_step_for_seed_stacking(self, registry: Registry) -> None:
        """``runs_stacked`` promises ``StackedVariant``: the step's three parts, put together as
        seed stacking puts them, give ``fused_losses``'s terms for the same draws."""
        variant = self.build(registry).eval()  # no dropout: the two computations draw the same
        if not variant.runs_stacked:
            return
        assert isinstance(variant, StackedVariant), (
            f"{type(variant).__name__}.runs_stacked is true: implement draw_noise, stacked_inputs, stacked_terms"
        )
        images, labels = self.data()
        blocks = variant.block_modules()
        noise = variant.draw_noise(labels, torch.Generator().manual_seed(3))
        inputs = variant.stacked_inputs(labels, noise)
        assert inputs.shape[:2] == (len(blocks), len(labels)), inputs.shape

        # As seed stacking does: the blocks run on stacked_inputs, and stacked_terms gets their output.
        outputs = torch.stack([block(images, z_block) for block, z_block in zip(blocks, inputs)])
        parts = variant.stacked_terms(lambda _z: outputs, labels, noise)
        fused = variant.fused_losses(images, labels, generator=torch.Generator().manual_seed(3))
        assert fused is not None and set(parts) == set(fused) == set(variant.units)
        for unit in variant.units:
            assert set(parts[unit]) == set(fused[unit])
            for name, value in parts[unit].items():
                torch.testing.assert_close(value, fused[unit][name], rtol=1e-4, atol=1e-5)


class DatasetContract(PluginContract):
    """Splits in memory: standardised float images, int64 labels, the base keys honoured."""

    kind = "dataset"
    subset: ClassVar[int] = 20

    @classmethod
    def build(cls, registry: Registry, **keys: Any) -> TensorSplits:
        entry = registry.get(cls.kind, cls.name)
        return entry.factory(entry.config(name=cls.name, **{**cls.config, **keys}))

    @pytest.fixture(scope="class")
    @classmethod
    def splits(cls, registry: Registry) -> TensorSplits:
        return cls.build(registry)

    def test_images_and_labels(self, splits: TensorSplits) -> None:
        assert isinstance(splits, TensorSplits)
        for images, labels in ((splits.train_images, splits.train_labels), (splits.test_images, splits.test_labels)):
            assert images.dim() == 4 and images.dtype == torch.float32 and len(images) == len(labels) > 0
            assert labels.dtype == torch.int64 and 0 <= labels.min() and labels.max() < splits.num_classes
        assert splits.test_images.shape[1:] == splits.image_shape

    def test_training_images_are_standardised_per_channel(self, splits: TensorSplits) -> None:
        images = splits.train_images.double()
        torch.testing.assert_close(
            images.mean(dim=(0, 2, 3)), torch.zeros(images.shape[1], dtype=torch.float64), atol=1e-3, rtol=0
        )
        torch.testing.assert_close(
            images.std(dim=(0, 2, 3)), torch.ones(images.shape[1], dtype=torch.float64), atol=1e-2, rtol=0
        )

    def test_subset_keeps_that_many_training_examples(self, registry: Registry, splits: TensorSplits) -> None:
        smaller = self.build(registry, subset=self.subset)
        assert len(smaller.train_labels) == self.subset
        assert len(smaller.test_labels) == len(splits.test_labels)


class TrackerContract(PluginContract):
    """A tracker takes everything the engine sends without raising, and closes."""

    kind = "tracker"

    def build(self, registry: Registry, run_dir: Path) -> Any:
        return self.factory(registry)(self.make_config(registry), experiment="contract", run_dir=run_dir)

    def test_takes_a_whole_run(self, registry: Registry, tmp_path: Path) -> None:
        tracker = self.build(registry, tmp_path)
        assert isinstance(tracker, Tracker)
        try:
            tracker.start({"seed": 0, "train": {"epochs": 1, "lr": 0.001}, "variant": {"name": "dt"}})
            tracker.track(
                1.5, name="loss", step=1, epoch=1, context={"subset": "train", "block": "block1", "term": "ce"}
            )
            tracker.track(90.0, name="accuracy", step=1, epoch=1, context={"subset": "test"})
            tracker.track_image(torch.rand(1, 8, 8), name="class_embeddings", step=1, epoch=1, context={"when": "end"})
        finally:
            tracker.close()
        fields = tracker.metrics_fields()
        assert isinstance(fields, dict)
        json.dumps(fields)  # lands in metrics.json


class LauncherContract(PluginContract):
    """A launcher runs `noprop` jobs to their end and says how each ended, in the order given:
    exit 0 for a job that succeeded, the job's own status (and its log) for one that failed."""

    kind = "launcher"

    def build(self, registry: Registry) -> Launcher:
        launcher = self.factory(registry)(self.make_config(registry))
        assert isinstance(launcher, Launcher)
        return launcher

    def test_describes_where_jobs_go(self, registry: Registry) -> None:
        text = self.build(registry).describe()
        assert isinstance(text, str) and text and "\n" not in text

    def test_runs_jobs_and_reports_each_outcome_in_order(self, registry: Registry, tmp_path: Path) -> None:
        jobs = [
            Job("good", ["recipes"], tmp_path / "good.log"),
            Job("bad", ["validate", str(tmp_path / "missing.toml")], tmp_path / "bad.log"),
            Job("also-good", ["plugins"], tmp_path / "also-good.log"),
        ]
        outcomes = self.build(registry).launch(jobs, notify=lambda text: None)
        assert [outcome.job.name for outcome in outcomes] == ["good", "bad", "also-good"]
        assert [outcome.ok for outcome in outcomes] == [True, False, True]
        assert "digits_dt" in (tmp_path / "good.log").read_text()  # the job's output is in its log
        assert "missing.toml" in outcomes[1].error()
