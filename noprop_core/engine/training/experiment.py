"""Build the objects of one experiment from a validated recipe."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import attrs
import torch

from noprop_core.engine.training.data import resolve_placement
from noprop_core.engine.training.stand_in import stand_in_splits
from noprop_core.errors import DataUnavailable, NopropError
from noprop_core.model.splits import TensorSplits
from noprop_core.model.variant import Variant
from noprop_core.plugin.parts import variant_parts
from noprop_core.plugin.registry import Registry
from noprop_core.recipe.schema import Recipe
from noprop_core.speed.distributed import Distributed
from noprop_core.speed.plan import SpeedPlan, plan_speed
from noprop_core.speed.threads import ThreadChoice, apply_threads, choose_threads


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        device = None
    if device is None or device.type not in ("cpu", "cuda") or (device.type == "cpu" and device.index):
        raise NopropError(f"device: expected 'auto', 'cpu', 'cuda' or 'cuda:N', got {name!r}")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise NopropError(f"device: {name!r} asked for, but no CUDA device is available here")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise NopropError(f"device: {name!r} asked for, but only {torch.cuda.device_count()} CUDA device(s) exist")
    return device


@attrs.frozen
class Experiment:
    recipe: Recipe
    device: torch.device
    splits: TensorSplits
    variant: Variant
    data_stand_in: bool = False  # synthetic data stood in for absent files (smoke runs only)
    distributed: Distributed | None = None  # set when launched by torchrun on several processes
    data_placement: str = "device"  # where the splits are: "device" or "host" (data.placement)
    threads: ThreadChoice = ThreadChoice(None, "not chosen")  # speed.threads, as applied
    # The rest of [speed], resolved for this device (default: the recipe's section as it stands).
    speed: SpeedPlan = attrs.field(
        default=attrs.Factory(lambda self: SpeedPlan(self.recipe.speed, self.device), takes_self=True)
    )


def load_splits(
    recipe: Recipe, registry: Registry, stand_in: bool, notify: Callable[[str], None]
) -> tuple[TensorSplits, bool]:
    """The recipe's data; with ``stand_in``, FakeData of the same shape when the files are absent."""
    try:
        return registry.build("dataset", recipe.data, expect=TensorSplits), False
    except DataUnavailable as missing:
        if not stand_in or missing.image_shape is None or missing.num_classes is None:
            raise
        shape = "×".join(map(str, missing.image_shape))
        notify(f"data: {missing}")
        notify(f"data: standing in FakeData ({shape}, {missing.num_classes} classes) for this smoke run")
        return stand_in_splits(recipe.data.name, missing.image_shape, missing.num_classes), True


def build_experiment(
    recipe: Recipe,
    registry: Registry,
    device: torch.device | None = None,
    *,
    stand_in: bool = False,
    notify: Callable[[str], None] = print,
    distributed: Distributed | None = None,
) -> Experiment:
    device = device or resolve_device(recipe.device)
    splits, data_stand_in = load_splits(recipe, registry, stand_in, notify)
    return build_on_splits(recipe, registry, splits, device, data_stand_in=data_stand_in, distributed=distributed)


def build_on_splits(
    recipe: Recipe,
    registry: Registry,
    splits: TensorSplits,
    device: torch.device,
    *,
    data_stand_in: bool = False,
    distributed: Distributed | None = None,
) -> Experiment:
    """The recipe's model and training set-up on data already loaded (benchmarks pass their own)."""
    splits = splits.first_test(recipe.eval.test_subset)
    threads = applied_threads(recipe, splits)
    placement = resolve_placement(recipe.data.placement, splits, device)
    if placement == "device":
        splits = splits.to(device)
    # Choices left to the device (variant.order = "auto", speed.cuda_graph = "auto") are made
    # here; the experiment's recipe is what runs (metrics.json and the checkpoint record it).
    variant_config = recipe.variant.resolved_for(device.type)
    variant = build_variant(attrs.evolve(recipe, variant=variant_config), registry, splits).to(device)
    speed = plan_speed(recipe.speed, device, variant, distributed=distributed is not None)
    recipe = attrs.evolve(recipe, variant=variant_config, speed=speed.section)
    try:
        speed.apply_to_model(variant)
    except NotImplementedError as exc:
        raise NopropError(f"speed.compile: variant '{recipe.variant.name}': {exc}") from None
    if speed.section.channels_last:
        images: dict[str, Any] = {
            name: speed.prepare_images(tensor) for name, tensor in splits.tensors().items() if tensor.dim() == 4
        }
        splits = attrs.evolve(splits, **images)
    check_block_sharding(variant, recipe, distributed)
    return Experiment(
        recipe=recipe,
        device=device,
        splits=splits,
        variant=variant,
        data_stand_in=data_stand_in,
        distributed=distributed,
        data_placement=placement,
        threads=threads,
        speed=speed,
    )


def build_variant(recipe: Recipe, registry: Registry, splits: TensorSplits) -> Variant:
    """The recipe's variant with its parts, initialised from the recipe's seed only."""
    torch.manual_seed(recipe.seed)
    model = recipe.model
    parts = variant_parts(
        registry,
        backbone=model.backbone,
        embedding=model.embedding,
        schedule=model.schedule,
        head=model.head,
        image_shape=splits.image_shape,
        train_images=splits.train_images,
        train_labels=splits.train_labels,
        num_classes=splits.num_classes,
    )
    return registry.build("variant", recipe.variant, parts, expect=Variant)


def check_block_sharding(variant: Variant, recipe: Recipe, distributed: Distributed | None) -> None:
    """torchrun's ``blocks`` mode shards several units trained in the simultaneous order."""
    if distributed is None or distributed.mode != "blocks":
        return
    if len(variant.units) < 2 or variant.update_order != "simultaneous" or variant.runs_stacked:
        fix = "set variant.fused = false" if variant.runs_stacked else "set variant.order = 'simultaneous'"
        raise NopropError(
            "speed.distributed: 'blocks' shards several units trained in the simultaneous order, unstacked "
            f"(variant '{recipe.variant.name}' has {len(variant.units)} unit(s), order {variant.update_order!r}"
            f"{', fused' if variant.runs_stacked else ''}); {fix} or use speed.distributed = 'data'"
        )


def applied_threads(recipe: Recipe, splits: TensorSplits) -> ThreadChoice:
    """``speed.threads`` chosen for this minibatch size and set for torch."""
    values_per_batch = math.prod(splits.image_shape) * recipe.train.batch_size
    threads = choose_threads(recipe.speed.threads, values_per_batch=values_per_batch)
    return attrs.evolve(threads, count=apply_threads(threads))
