"""Training-time augmentation (what each transform does to each image), the learning-rate
warm-up, a learnable schedule's own learning rate, and each block's accuracy from the image alone."""

from __future__ import annotations

import pytest
import torch

from helpers import digits_trainer
from noprop_core.engine.training.augment import PADDING, Augmentation
from noprop_core.engine.training.trainer import learning_rate_schedule
from noprop_core.recipe.schema import TrainSection

MEAN, STD = (0.2, 0.5, 0.7), (0.3, 0.25, 0.2)


def standardised(images: torch.Tensor) -> torch.Tensor:
    return (images - torch.tensor(MEAN).view(1, -1, 1, 1)) / torch.tensor(STD).view(1, -1, 1, 1)


def unit(images: torch.Tensor) -> torch.Tensor:
    return images * torch.tensor(STD).view(1, -1, 1, 1) + torch.tensor(MEAN).view(1, -1, 1, 1)


@pytest.fixture
def images():
    torch.manual_seed(0)
    return torch.rand(400, 3, 12, 12)


def test_hflip_flips_each_image_on_its_own_half_the_time(images):
    torch.manual_seed(1)
    out = unit(Augmentation(["hflip"], MEAN, STD, (12, 12))(standardised(images)))
    same = (out - images).abs().amax(dim=(1, 2, 3)) < 1e-5
    flipped = (out - images.flip(-1)).abs().amax(dim=(1, 2, 3)) < 1e-5
    assert (same ^ flipped).all()  # every image: unchanged or exactly mirrored
    assert 160 < flipped.sum() < 240  # p = 0.5 over 400 images (±4 standard deviations)


def test_crop_shifts_each_image_within_the_padding(images):
    torch.manual_seed(2)
    out = unit(Augmentation(["crop"], MEAN, STD, (12, 12))(standardised(images)))
    padded = torch.nn.functional.pad(images, (PADDING,) * 4)  # zeros in [0, 1] space
    offsets = []
    for original, cropped in zip(padded, out):
        matches = [
            (dy, dx)
            for dy in range(2 * PADDING + 1)
            for dx in range(2 * PADDING + 1)
            if torch.allclose(original[:, dy : dy + 12, dx : dx + 12], cropped, atol=1e-5)
        ]
        assert matches, "a crop that is no window of the padded image"
        offsets.append(matches[0])
    assert len(set(offsets)) > 30  # drawn per image


def test_randaugment_changes_images_differently_and_stays_in_range(images):
    torch.manual_seed(3)
    images = (images * 255).round() / 255  # as images arrive: 8-bit values
    out = unit(Augmentation(["randaugment"], MEAN, STD, (12, 12))(standardised(images)))
    assert out.shape == images.shape
    assert out.min() >= -1e-5 and out.max() <= 1 + 1e-5  # transformed in [0, 1], then standardised
    changed = (out - images).abs().amax(dim=(1, 2, 3)) > 1e-3
    assert changed.float().mean() > 0.7
    differences = (out - images).flatten(1)
    assert torch.unique(differences.round(decimals=3), dim=0).shape[0] > 300  # not one transform for all


def test_augmentation_runs_in_training_only(registry):
    trainer = digits_trainer(registry, "data.subset=64", "train.max_batches=1", 'data.augment=["hflip"]')
    torch.manual_seed(0)
    images, _, _ = next(trainer.epoch_steps(1))
    stored = trainer.experiment.splits.train_images
    assert not any(torch.equal(image, stored_image) for image, stored_image in zip(images, stored))  # shuffled+flipped
    assert trainer.augmentation is not None and digits_trainer(registry).augmentation is None


def learning_rates(train: TrainSection) -> list[float]:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(()))], lr=train.lr)
    schedule = learning_rate_schedule(optimizer, train)
    rates = []
    for _ in range(train.epochs):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        if schedule is not None:
            schedule.step()
    return rates


def test_warmup_rises_linearly_then_follows_the_cosine():
    import math

    rates = learning_rates(TrainSection(epochs=10, lr=0.3, lr_schedule="cosine", warmup_epochs=3))
    expected = [0.1, 0.2, 0.3] + [0.15 * (1 + math.cos(math.pi * k / 7)) for k in range(7)]
    assert rates == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert learning_rates(TrainSection(epochs=5, lr=0.3, warmup_epochs=2)) == pytest.approx([0.15, 0.3, 0.3, 0.3, 0.3])
    assert learning_rates(TrainSection(epochs=2, lr=0.4, warmup_epochs=4)) == pytest.approx([0.1, 0.2])  # only warming
    assert learning_rates(TrainSection(epochs=3, lr=0.3)) == [0.3, 0.3, 0.3]


def test_a_learnable_schedule_gets_its_own_learning_rate(registry):
    overrides = ['variant={name="ct", steps=5}', 'model.schedule={name="learnable_gamma", lr=0.05}', "train.lr=0.002"]
    trainer = digits_trainer(registry, *overrides)
    groups = trainer.shared_optimizer.param_groups
    schedule = {id(p) for p in trainer.variant.noise_schedule().parameters()}
    assert [group["lr"] for group in groups] == [0.002, 0.05]
    assert {id(p) for p in groups[1]["params"]} == schedule
    assert not schedule & {id(p) for p in groups[0]["params"]} and groups[0]["params"]
    default = digits_trainer(registry, overrides[0], 'model.schedule={name="learnable_gamma"}')
    assert len(default.shared_optimizer.param_groups) == 1


@pytest.mark.parametrize(
    "variant", ['{name="dt", timesteps=3}', '{name="ct", steps=5}', '{name="diffusion_blocks"}', '{name="fm", steps=5}']
)
def test_each_block_is_scored_from_the_image_alone(registry, variant):
    extra = ['model.schedule={name="learnable_gamma"}'] if "ct" in variant else []
    trainer = digits_trainer(registry, f"variant={variant}", "train.epochs=1", "data.subset=64", *extra)
    trainer.fit()
    blocks = {"dt": 3, "ct": 1, "diffusion_blocks": 3, "fm": 1}[variant.split('"')[1]]
    accuracy = trainer.history[-1].image_accuracy
    assert len(accuracy) == blocks and all(0 <= value <= 100 for value in accuracy)
