"""Choices left to the device: ``variant.order = "auto"`` (DT) and ``speed.cuda_graph = "auto"``,
made by the engine; the speed path a run reports, and its hint when a faster faithful path exists."""

from __future__ import annotations

import pytest
import torch

from helpers import digits_trainer
from noprop_core.errors import NopropError
from noprop_core.recipe.loading import load_recipe
from noprop_core.speed.plan import SpeedPlan, plan_speed, resolve_cuda_graph
from noprop_core.speed.section import SpeedSection
from noprop_plugins.variants.dt import DTConfig

CUDA, CPU = torch.device("cuda"), torch.device("cpu")


@pytest.mark.parametrize(
    ("config", "device", "order", "fused"),
    [
        (DTConfig(name="dt"), "cuda", "simultaneous", True),
        (DTConfig(name="dt"), "cpu", "sequential", False),
        (DTConfig(name="dt", fused=True), "cpu", "simultaneous", True),
        (DTConfig(name="dt", order="sequential"), "cuda", "sequential", False),  # asked for: kept
        (DTConfig(name="dt", order="simultaneous"), "cuda", "simultaneous", False),
    ],
)
def test_dt_order_auto_is_resolved_per_device(config, device, order, fused):
    resolved = config.resolved_for(device)
    assert (resolved.order, resolved.fused) == (order, fused)


def test_the_hint_names_the_faster_path_only_on_a_gpu_and_only_when_not_taken():
    assert "fused = true" in DTConfig(name="dt", order="sequential").faster_path("cuda")
    assert DTConfig(name="dt", order="simultaneous", fused=True).faster_path("cuda") is None
    assert DTConfig(name="dt", order="sequential").faster_path("cpu") is None


def test_fused_with_sequential_is_refused():
    with pytest.raises(ValueError, match="fused = true needs order = 'simultaneous'"):
        DTConfig(name="dt", order="sequential", fused=True)


class _Variant:
    def __init__(self, stacked: bool):
        self.runs_stacked = stacked
        self.update_order = "simultaneous"


@pytest.mark.parametrize(
    ("speed", "device", "stacked", "distributed", "expected"),
    [
        (SpeedSection(), CUDA, True, False, True),
        (SpeedSection(), CPU, True, False, False),
        (SpeedSection(), CUDA, False, False, False),
        (SpeedSection(), CUDA, True, True, False),
        (SpeedSection(compile="inductor"), CUDA, True, False, False),
        (SpeedSection(cuda_graph=False), CUDA, True, False, False),
        (SpeedSection(cuda_graph=True), CPU, False, False, True),  # explicit: check_supported refuses it
    ],
)
def test_cuda_graph_auto(speed, device, stacked, distributed, expected):
    assert resolve_cuda_graph(speed, device, _Variant(stacked), distributed).cuda_graph is expected


def test_describe_path():
    speed = SpeedSection(cuda_graph=True, autocast="bf16")
    assert (
        SpeedPlan(speed, CUDA).describe(_Variant(True))
        == "order simultaneous, fused (stacked blocks), CUDA graph, bf16 autocast on cuda"
    )


@pytest.mark.parametrize(
    ("value", "ok"), [("true", True), ("false", True), ('"auto"', True), ('"yes"', False), ("1", False)]
)
def test_cuda_graph_key(registry, value, ok):
    overrides = [f"speed.cuda_graph={value}"]
    if ok:
        load_recipe("recipes/digits_dt.toml", registry, overrides)
    else:
        with pytest.raises(NopropError, match="speed.cuda_graph: expected"):
            load_recipe("recipes/digits_dt.toml", registry, overrides)


def test_order_auto_on_a_cpu_runs_algorithm_1(registry):
    experiment = digits_trainer(
        registry, "train.epochs=1", "device=cpu", "variant.order=auto", "variant.fused=false"
    ).experiment
    assert experiment.recipe.variant.order == "sequential"
    assert experiment.recipe.speed.cuda_graph is False
    assert experiment.variant.update_order == "sequential" and not experiment.variant.runs_stacked


def test_a_cpu_run_of_the_default_recipe_trains_its_blocks_fused(registry):
    experiment = digits_trainer(registry, "train.epochs=1", "device=cpu").experiment
    assert (experiment.recipe.variant.order, experiment.recipe.variant.fused) == ("simultaneous", True)
    assert experiment.recipe.speed.cuda_graph is False and experiment.variant.runs_stacked


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the GPU default path: needs a CUDA device")
def test_a_gpu_run_of_the_default_recipe_runs_fused_with_a_cuda_graph(registry):
    experiment = digits_trainer(registry, "train.epochs=1", "device=cuda").experiment
    assert (experiment.recipe.variant.order, experiment.recipe.variant.fused) == ("simultaneous", True)
    assert experiment.recipe.speed.cuda_graph is True and experiment.variant.runs_stacked


def test_the_plan_resolves_auto_once_and_refuses_what_the_device_cannot_do():
    plan = plan_speed(SpeedSection(), CPU, _Variant(True))
    assert plan.section.cuda_graph is False and plan.cuda_graph is False
    with pytest.raises(NopropError, match="speed.cuda_graph: needs a CUDA device"):
        plan_speed(SpeedSection(cuda_graph=True), CPU, _Variant(True))
    with pytest.raises(NopropError, match="speed.compile: 'cudagraphs' needs a CUDA device"):
        plan_speed(SpeedSection(compile="cudagraphs"), CPU, _Variant(False))


def test_every_speed_key_but_threads_declares_it_moved_from_train():
    from noprop_core.speed.section import MOVED_FROM_TRAIN

    assert MOVED_FROM_TRAIN == ("compile", "channels_last", "autocast", "cuda_graph", "distributed")
