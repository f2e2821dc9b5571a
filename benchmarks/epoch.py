"""Wall time of whole training epochs of a recipe, through noprop's own trainer.

The question "how long is one NoProp-DT CIFAR-10 epoch on this machine?" answered with the
recipe's real model, optimizers, batch size and update order. The recipe's data set is used
when its files are there; otherwise (a GPU box without the data, say) random standardised
images of the same shape and class count stand in (50 000 unless ``--examples`` says) — the cost
of an epoch does not depend on what the pixels are. The first epoch includes warm-up (allocations, cuDNN autotuning,
compilation); the table shows every epoch.

    python benchmarks/epoch.py recipes/cifar10_dt.toml                       # Algorithm 1 as written
    python benchmarks/epoch.py recipes/cifar10_dt.toml --set variant.order=simultaneous \\
        --set variant.fused=true --epochs 2                                   # all blocks per minibatch, fused
    python benchmarks/epoch.py --json                                        # digits_dt, one JSON object
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from noprop_core.engine.training.evaluation import peak_memory_bytes
from noprop_core.engine.training.experiment import build_on_splits, resolve_device
from noprop_core.engine.training.progress import Progress
from noprop_core.engine.training.trainer import Trainer
from noprop_core.errors import DataUnavailable, NopropError
from noprop_core.model.splits import TensorSplits
from noprop_core.plugin.manager import load_registry
from noprop_core.recipe.loading import load_recipe

SYNTHETIC_EXAMPLES = 50_000  # CIFAR-10/100's training set


def synthetic_splits(image_shape: tuple[int, int, int], num_classes: int, examples: int) -> TensorSplits:
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(examples, *image_shape, generator=generator)
    labels = torch.arange(examples) % num_classes  # every class present (prototype embeddings need one of each)
    labels = labels[torch.randperm(examples, generator=generator)]
    return TensorSplits(
        name="synthetic",
        train_images=images,
        train_labels=labels,
        test_images=images[:256],
        test_labels=labels[:256],
        num_classes=num_classes,
    )


def training_data(recipe, registry, examples: int | None) -> tuple[TensorSplits, str]:
    try:
        splits = registry.build("dataset", recipe.data)
        kind = "real"
    except DataUnavailable as missing:
        if missing.image_shape is None:
            raise
        splits = synthetic_splits(missing.image_shape, missing.num_classes, examples or SYNTHETIC_EXAMPLES)
        kind = "synthetic"
    return splits.first(examples or 0), kind


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe", type=Path, nargs="?", default=Path("recipes/digits_dt.toml"))
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--examples", type=int, default=None, help="first N training examples (default: all)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    registry = load_registry()
    try:
        recipe = load_recipe(args.recipe, registry, [*args.overrides, "tracker.name=none"])
        splits, kind = training_data(recipe, registry, args.examples)
        device = resolve_device(recipe.device)
        progress = Progress()  # one line per epoch on stderr; stdout stays for the result
        trainer = Trainer(build_on_splits(recipe, registry, splits, device), progress)
    except NopropError as error:
        sys.exit(f"epoch.py: {error}")

    seconds = []
    with progress:
        for epoch in range(1, args.epochs + 1):
            progress.start_epoch(epoch, args.epochs)
            seconds.append(trainer.train_epoch(epoch)[1])
            progress.message(f"epoch {epoch}: {seconds[-1]:.2f} s")
    examples = len(splits.train_labels)
    result = {
        "recipe": str(args.recipe),
        "overrides": args.overrides,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "data": kind,
        "train_examples": examples,
        "image_shape": list(splits.image_shape),
        "blocks": len(trainer.variant.units),
        "order": trainer.variant.update_order,
        "fused": getattr(trainer.variant, "stacked", None) is not None,
        "epoch_seconds": seconds,
        "examples_per_second": examples / seconds[-1],
        "peak_memory_bytes": peak_memory_bytes(device),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{args.recipe} {' '.join(args.overrides)}")
    print(
        f"  {result['device']}, {kind} data {tuple(splits.image_shape)} × {examples}, {result['blocks']} unit(s), "
        f"order {result['order']}{', fused' if result['fused'] else ''}"
    )
    for epoch, value in enumerate(seconds, 1):
        print(f"  epoch {epoch}: {value:8.2f} s  {examples / value:9.0f} examples/s")
    print(f"  peak memory {result['peak_memory_bytes'] / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
