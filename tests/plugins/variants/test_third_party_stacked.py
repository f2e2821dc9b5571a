"""A third-party variant built on ``StackedBlockVariant`` — three stacked members of its own
(``draw_noise``, ``stacked_inputs``, ``stacked_terms``), the rest derived — meets
``StackedVariant``, passes the contract kit, and trains seeds stacked into one computation
(``--stack-seeds on``); written, as a third party would write it, against ``noprop_core``'s
public API only."""

from __future__ import annotations

import math
import types

import attrs
import pytest
import torch
from torch import Tensor

import noprop_core as noprop
from noprop_core import (
    BlockSpec,
    StackedBlockVariant,
    StackedVariant,
    VariantConfig,
    VariantParts,
    convex_denoise,
    hookimpl,
)
from noprop_core.testing import VariantContract

SMALL = ["train.epochs=1", "train.max_batches=3", "tracker.name=none", "device=cpu", "eval.inference_runs=1"]


@attrs.frozen(kw_only=True)
class LevelsConfig(VariantConfig):
    blocks: int = 3


class FixedLevels(StackedBlockVariant):
    """Block t denoises u_y from z = √ᾱ_t u_y + √(1 − ᾱ_t) ε at its own fixed level ᾱ_t; inference
    runs the blocks from the noisiest level down. Always stacked: every block in one pass."""

    def __init__(self, config: LevelsConfig, parts: VariantParts):
        super().__init__()
        self.embedding = parts.embedding
        spec = BlockSpec(
            image_shape=parts.image_shape, embedding_dim=parts.embedding.dim, num_classes=parts.num_classes
        )
        self.set_blocks(parts.make_block(spec) for _ in range(config.blocks))
        self.head = parts.make_head()
        self.register_buffer("alpha_bar", torch.linspace(0.1, 0.9, config.blocks))
        self.stack_blocks(fused=True)

    def losses(self, images: Tensor, labels: Tensor, unit: str) -> dict[str, Tensor]:
        index = self.block_index(unit)
        noise = self.draw_noise(labels)
        z = self.stacked_inputs(labels, noise)[index]
        return self.stacked_terms(
            lambda _z: self.blocks[index](images, z)[None].expand(len(self.units), -1, -1), labels, noise
        )[unit]

    def draw_noise(self, labels: Tensor, generator: torch.Generator | None = None) -> Tensor:
        shape = (len(self.blocks), len(labels), self.embedding.dim)
        return torch.randn(shape, device=labels.device, generator=generator)

    def stacked_inputs(self, labels: Tensor, noise: Tensor) -> Tensor:
        u = self.embedding.weight[labels]
        a = self.alpha_bar[:, None, None]
        return a.sqrt() * u + (1 - a).sqrt() * noise

    def stacked_terms(self, denoiser, labels: Tensor, noise: Tensor) -> dict[str, dict[str, Tensor]]:
        u = self.embedding.weight[labels]
        logits = denoiser(self.stacked_inputs(labels, noise))  # (blocks, B, classes)
        error = (convex_denoise(logits, self.embedding.weight) - u).pow(2).sum(-1).mean(-1)
        ce = torch.nn.functional.cross_entropy(self.head(u), labels)
        return {unit: {"denoise": error[index], "ce": ce} for index, unit in enumerate(self.units)}

    def trajectory(self, images: Tensor, generator: torch.Generator | None = None) -> list[Tensor]:
        dim = self.embedding.dim
        z = torch.randn(len(images), dim, device=images.device, generator=generator)
        states = [z]
        for index in range(len(self.blocks) - 1, -1, -1):  # noisiest first
            states.append(convex_denoise(self.blocks[index](images, z), self.embedding.weight))
            z = states[-1] if index == 0 else math.sqrt(self.alpha_bar[index - 1]) * states[-1]
        return [self.head(state) for state in states]


@hookimpl
def noprop_register_variants(registry):
    registry.add("fixed_levels", FixedLevels, config=LevelsConfig)


PLUGIN = types.ModuleType("fixed_levels_plugin")
PLUGIN.noprop_register_variants = noprop_register_variants


@pytest.fixture(scope="module")
def registry():
    return noprop.load_registry([("fixed_levels_plugin", PLUGIN)], autoload=False)


class TestFixedLevelsContract(VariantContract):
    name = "fixed_levels"
    config = {"blocks": 3}

    @pytest.fixture(scope="class")
    @classmethod
    def registry(cls):
        return noprop.load_registry([("fixed_levels_plugin", PLUGIN)], autoload=False)


def test_it_is_a_stacked_variant(registry):
    assert registry.get("variant", "fixed_levels").factory is FixedLevels
    assert issubclass(FixedLevels, StackedVariant)


def test_its_seeds_train_stacked_as_one_computation(tmp_path, registry, capfd):
    group = noprop.train(
        "digits_dt",
        overrides=[*SMALL, 'variant={name = "fixed_levels", blocks = 3}'],
        seeds=[0, 1],
        stack_seeds="on",
        out=tmp_path / "group",
        registry=registry,
    )
    assert "seeds 0, 1 stacked: 2 × 3 blocks in one computation" in capfd.readouterr().err
    assert [run.metrics["epochs_completed"] for run in group.runs] == [1, 1]
    first, second = (run.history[0]["loss_per_unit"]["block1"]["denoise"] for run in group.runs)
    assert math.isfinite(first) and first != second  # each seed its own data order and noise


def test_stacking_a_variant_that_says_stacked_without_the_parts_is_refused_when_asked_for(tmp_path, capfd):
    class Incomplete(FixedLevels):
        draw_noise = stacked_inputs = stacked_terms = None  # the parts a third party left out

        def fused_losses(self, images, labels, generator=None):
            return None  # the trainer then asks unit by unit

        def losses(self, images, labels, unit):
            index, u = self.block_index(unit), self.embedding.weight[labels]
            z = self.alpha_bar[index].sqrt() * u + (1 - self.alpha_bar[index]).sqrt() * torch.randn_like(u)
            return {"denoise": (convex_denoise(self.blocks[index](images, z), self.embedding.weight) - u).pow(2).mean()}

    module = types.ModuleType("incomplete_plugin")

    @hookimpl
    def register(registry):
        registry.add("incomplete", Incomplete, config=LevelsConfig)

    module.noprop_register_variants = register
    registry = noprop.load_registry([("incomplete_plugin", module)], autoload=False)
    assert not issubclass(Incomplete, StackedVariant)
    options = {
        "overrides": [*SMALL, 'variant={name = "incomplete", blocks = 3}'],
        "seeds": [0, 1],
        "registry": registry,
    }
    with pytest.raises(noprop.NopropError) as refused:  # "on" was asked for: refused, nothing left behind
        noprop.train("digits_dt", stack_seeds="on", out=tmp_path / "on", **options)
    assert str(refused.value) == (
        "--stack-seeds on: the seeds cannot be stacked (variant 'incomplete' says runs_stacked but lacks "
        "draw_noise, stacked_inputs, stacked_terms); use auto or off"
    )
    assert not (tmp_path / "on" / "seed-0").exists() and not (tmp_path / "on" / "seed-1").exists()
    group = noprop.train("digits_dt", stack_seeds="auto", out=tmp_path / "group", **options)
    assert "seeds one after another" in capfd.readouterr().err  # auto: a CPU never stacks, and says so
    assert [run.metrics["epochs_completed"] for run in group.runs] == [1, 1]
