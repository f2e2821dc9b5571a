"""data.placement: splits on the training device (batched by indexing) or kept in CPU memory and
batched through a DataLoader — the same minibatches, the same training."""

from __future__ import annotations

import pytest
import torch

from conftest import REPO
from noprop_core.engine.runs.fresh import start_run as run
from noprop_core.engine.training.data import loaded_batches, resolve_placement, shuffled_batches
from noprop_core.model.splits import TensorSplits

RECIPE = REPO / "recipes" / "digits_dt.toml"
SHORT = [
    "train.epochs=2",
    "data.subset=400",
    "variant.timesteps=3",
    "eval.train_subset=100",
    "tracker.name=none",
    "device=cpu",
]


def splits_of(examples: int) -> TensorSplits:
    images, labels = torch.randn(examples, 1, 4, 4), torch.arange(examples) % 3
    return TensorSplits(
        name="t",
        train_images=images,
        train_labels=labels,
        test_images=images[:5],
        test_labels=labels[:5],
        num_classes=3,
    )


@pytest.mark.parametrize("workers", [0, 2])
def test_the_dataloader_gives_the_indexed_minibatches_in_the_same_order(workers):
    splits = splits_of(103)  # 12 full minibatches of 8 and one of 7
    indexed = list(shuffled_batches(splits.train_images, splits.train_labels, 8, torch.Generator().manual_seed(3)))
    loaded = list(
        loaded_batches(
            splits.train_images, splits.train_labels, 8, torch.Generator().manual_seed(3), torch.device("cpu"), workers
        )
    )
    assert len(loaded) == len(indexed) == 13
    for (x, y), (x_loaded, y_loaded) in zip(indexed, loaded, strict=True):
        assert torch.equal(x, x_loaded) and torch.equal(y, y_loaded)


def test_a_host_placed_run_trains_exactly_like_a_device_placed_one(registry, tmp_path):
    device = run(RECIPE, registry, overrides=[*SHORT, "data.placement=device"], out_dir=tmp_path / "device")[1]
    host = run(
        RECIPE, registry, overrides=[*SHORT, "data.placement=host", "data.workers=1"], out_dir=tmp_path / "host"
    )[1]
    assert host["data_placement"] == "host" and device["data_placement"] == "device"
    assert [r["loss_per_unit"] for r in host["history"]] == [r["loss_per_unit"] for r in device["history"]]
    assert host["test_accuracy"] == device["test_accuracy"] and host["train_accuracy"] == device["train_accuracy"]


def test_auto_placement_keeps_on_the_device_what_fits_in_half_its_free_memory(monkeypatch):
    splits = splits_of(100)  # 100·16·4 + 100·8 + 5·16·4 + 5·8 bytes
    size = 100 * 16 * 4 + 100 * 8 + 5 * 16 * 4 + 5 * 8
    cuda = torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (2 * size, 10 * size))
    assert resolve_placement("auto", splits, cuda) == "device"
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (2 * size - 2, 10 * size))
    assert resolve_placement("auto", splits, cuda) == "host"
    assert resolve_placement("auto", splits, torch.device("cpu")) == "device"  # host memory is the device
    assert resolve_placement("host", splits, torch.device("cpu")) == "host"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="copies pinned minibatches to a CUDA device")
def test_host_placement_on_cuda_trains_like_device_placement(registry, tmp_path):
    overrides = [*SHORT[:-1], "device=cuda"]
    device = run(RECIPE, registry, overrides=[*overrides, "data.placement=device"], out_dir=tmp_path / "device")[1]
    host = run(RECIPE, registry, overrides=[*overrides, "data.placement=host"], out_dir=tmp_path / "host")[1]
    assert host["data_placement"] == "host"
    losses = [r["loss"]["total"] for r in host["history"]]
    assert losses == pytest.approx([r["loss"]["total"] for r in device["history"]], rel=0.05)
