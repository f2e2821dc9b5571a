"""The training loop: per-block optimizers, update orders, idle blocks untouched."""

from __future__ import annotations

import io

import attrs
import pytest
import torch
from rich.console import Console
from rich.text import Text

from helpers import ALGORITHM_1, digits_trainer
from noprop_core.cli.progress import Progress, RichProgress, make_progress
from noprop_core.engine.training.evaluation import evaluate_epoch


def _snapshot(module):
    return [p.detach().clone() for p in module.parameters()]


def test_each_block_has_its_own_optimizer_over_its_own_parameters(registry):
    trainer = digits_trainer(registry, "variant.timesteps=3")
    blocks = trainer.variant.blocks
    for index, unit in enumerate(trainer.variant.units):
        optimized = {id(p) for group in trainer.unit_optimizers[unit].param_groups for p in group["params"]}
        assert optimized == {id(p) for p in blocks[index].parameters()}
    shared = {id(p) for group in trainer.shared_optimizer.param_groups for p in group["params"]}
    assert shared == {id(p) for p in trainer.variant.head.parameters()}


def test_a_block_that_is_not_being_trained_does_not_move(registry):
    # The pitfall: one Adam over all blocks with zeroed (not None) gradients keeps moving idle
    # blocks through their momentum. Here block 1 is trained first, then only block 2.
    trainer = digits_trainer(registry, "variant.timesteps=3")
    images, labels = trainer.experiment.splits.train_images[:64], trainer.experiment.splits.train_labels[:64]
    trainer.variant.train()
    for _ in range(3):
        trainer.update(images, labels, ["block1"])
    block1, block3 = _snapshot(trainer.variant.blocks[0]), _snapshot(trainer.variant.blocks[2])
    block2_before = _snapshot(trainer.variant.blocks[1])
    for _ in range(3):
        trainer.update(images, labels, ["block2"])
    for before, after in zip(
        block1 + block3, _snapshot(trainer.variant.blocks[0]) + _snapshot(trainer.variant.blocks[2])
    ):
        assert torch.equal(before, after)
    assert any(not torch.equal(b, a) for b, a in zip(block2_before, _snapshot(trainer.variant.blocks[1])))


def test_sequential_order_gives_each_block_a_full_pass(registry):
    trainer = digits_trainer(registry, "variant.timesteps=3", *ALGORITHM_1, "train.batch_size=128")
    assert trainer.phases() == [["block1"], ["block2"], ["block3"]]
    per_unit, _ = trainer.train_epoch(1)
    assert set(per_unit) == {"block1", "block2", "block3"}
    assert trainer.step == 3 * 2  # 256 examples in batches of 128, once per block


def test_simultaneous_order_updates_every_block_on_every_minibatch(registry):
    trainer = digits_trainer(registry, "variant.timesteps=3", "variant.order=simultaneous", "train.batch_size=128")
    assert trainer.phases() == [["block1", "block2", "block3"]]
    before = [_snapshot(block) for block in trainer.variant.blocks]
    trainer.train_epoch(1)
    assert trainer.step == 2
    for old, block in zip(before, trainer.variant.blocks):
        assert any(not torch.equal(b, a) for b, a in zip(old, _snapshot(block)))


def test_training_on_digits_learns(registry):
    # lr 3e-3: on 1 437 images the linear head (stepped after every block step) is what limits
    # early accuracy at the paper's 1e-3.
    overrides = ("variant.timesteps=3", "data.subset=0", "train.batch_size=64", "train.epochs=4", "train.lr=3e-3")
    trainer = digits_trainer(registry, *overrides)
    assert evaluate_epoch(trainer.variant, trainer.experiment.splits, trainer.recipe)["test_accuracy"] < 40
    trainer.fit()
    assert trainer.history[-1].test_accuracy > 88
    assert trainer.history[-1].loss["denoise"] < trainer.history[0].loss["denoise"]
    assert attrs.asdict(trainer.history[0]).keys() >= {"epoch", "loss", "loss_per_unit", "test_accuracy"}


def test_progress_bars_on_a_terminal_and_plain_lines_elsewhere(registry):
    terminal = Console(file=io.StringIO(), force_terminal=True, width=120)
    assert isinstance(make_progress(terminal), RichProgress)
    assert type(make_progress(Console(file=io.StringIO(), force_terminal=False))) is Progress
    trainer = digits_trainer(registry, "variant.timesteps=2", "train.epochs=1", *ALGORITHM_1)  # a bar per block
    trainer.progress = make_progress(terminal)
    with trainer.progress:
        trainer.fit()
    shown = Text.from_ansi(terminal.file.getvalue()).plain
    assert "epoch 1/1" in shown and "block2" in shown and "test accuracy" in shown


def test_test_accuracy_every_n_epochs_and_always_at_the_end(registry):
    trainer = digits_trainer(registry, "variant.timesteps=2", "train.epochs=5", "eval.every=2", "data.subset=128")
    trainer.fit()
    evaluated = [record.test_accuracy is not None for record in trainer.history]
    assert evaluated == [False, True, False, True, True]


def test_every_evaluation_records_the_read_out_gap_of_the_heads_state(registry):
    """The nearest-embedding accuracy is the accuracy of argmin_k ‖z_T − u_k‖ over the same
    z_T the head reads (recomputed here from the chain's states with the evaluation's noise), and
    the gap is it minus the head's accuracy; a random head (head_init = "default") makes it large."""
    from noprop_core.engine.protocol import noise_generator

    trainer = digits_trainer(
        registry, 'variant.head_init="default"', "variant.timesteps=3", "train.epochs=1", *ALGORITHM_1
    )
    trainer.fit()
    record = trainer.history[-1]
    splits, variant = trainer.experiment.splits, trainer.variant
    with torch.no_grad():
        generator = noise_generator(trainer.recipe.seed)
        hits, head_hits = 0, 0
        for images, labels in zip(splits.test_images.split(1000), splits.test_labels.split(1000)):
            z_last = variant.inference_states(images, generator)[-1]
            hits += (torch.cdist(z_last, variant.embedding.weight).argmin(-1) == labels).sum().item()
            head_hits += (variant.head(z_last).argmax(-1) == labels).sum().item()
    count = len(splits.test_labels)
    assert record.nearest_embedding_accuracy == pytest.approx(100 * hits / count)
    assert record.test_accuracy == pytest.approx(100 * head_hits / count)
    assert record.readout_gap == pytest.approx(record.nearest_embedding_accuracy - record.test_accuracy)
    assert abs(record.readout_gap) > 2  # a random head after one short epoch: the gap shows


def test_evaluations_during_training_infer_faster_and_the_last_epoch_as_the_recipe_says(registry):
    """CT with train_eval_steps = 4 and steps = 12: epoch 1 is evaluated along a chain of 4 steps
    (5 states), the last epoch — inference run 0 of the final evaluation — along 12 (13 states),
    and the model infers with 12 afterwards."""
    from conftest import REPO
    from noprop_core.engine.training.experiment import build_experiment
    from noprop_core.engine.training.progress import Progress as PlainProgress
    from noprop_core.engine.training.trainer import Trainer
    from noprop_core.plugin.tracker import Tracker
    from noprop_core.recipe.loading import load_recipe

    overrides = ["data.subset=256", "train.epochs=2", "variant.steps=12", "variant.train_eval_steps=4"]
    recipe = load_recipe(
        REPO / "recipes" / "digits_ct.toml", registry, [*overrides, "eval.every=1", "tracker.name=none"]
    )
    trainer = Trainer(build_experiment(recipe, registry), PlainProgress(stream=io.StringIO()), Tracker())
    trainer.fit()
    assert [len(record.chain_accuracy) for record in trainer.history] == [5, 13]
    assert trainer.variant.steps == 12
