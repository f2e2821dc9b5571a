"""S seeds trained together (stacked) against S seeds trained one after another, side by side.

The fused NoProp-DT update (all T blocks in one pass) of S runs of one recipe, each on its own
minibatch: ``stacked`` runs the S·T blocks as one computation (``noprop_core.engine.training.seed_stack``),
``one by one`` runs each seed's fused update in turn. The two alternate within each repeat
(median reported), on random images of the data set's shape. Goal on a GPU: 3 seeds stacked in
≤ 1.3× the time of one seed's step. On a CPU, which is compute-bound already, stacking saves
little; the point there is the same result in one command.

    python benchmarks/seeds.py                          # MNIST-shaped, S = 3
    python benchmarks/seeds.py --recipe recipes/cifar10_dt.toml --seeds 3 --json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from noprop_core.engine.training.experiment import build_on_splits, resolve_device
from noprop_core.engine.training.progress import Progress
from noprop_core.engine.training.seed_stack import SeedStack
from noprop_core.engine.training.trainer import Trainer
from noprop_core.model.splits import TensorSplits
from noprop_core.plugin.manager import load_registry
from noprop_core.plugin.tracker import Tracker
from noprop_core.recipe.loading import load_recipe, one_seed

ROOT = Path(__file__).resolve().parent.parent
SHAPES = {
    "mnist": ((1, 28, 28), 10),
    "cifar10": ((3, 32, 32), 10),
    "cifar100": ((3, 32, 32), 100),
    "digits": ((1, 8, 8), 10),
}


def trainer(recipe_path: Path, registry, seed: int, device: str, examples: int) -> Trainer:
    overrides = [
        *one_seed(seed),
        "variant.order=simultaneous",
        "variant.fused=true",
        "speed.cuda_graph=false",
        "tracker.name=none",
        f"device={json.dumps(device)}",
    ]
    recipe = load_recipe(recipe_path, registry, overrides)
    shape, classes = SHAPES[recipe.data.name]
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(examples, *shape, generator=generator)
    labels = torch.arange(examples) % classes
    splits = TensorSplits(
        name="random",
        train_images=images,
        train_labels=labels,
        test_images=images[:64],
        test_labels=labels[:64],
        num_classes=classes,
    )
    device = resolve_device(recipe.device)
    return Trainer(build_on_splits(recipe, registry, splits, device), Progress(), Tracker())


def minibatches(trainers: list[Trainer]):
    """Each run's first minibatch, on its device, with the units of a fused step."""
    steps = []
    for run in trainers:
        images, labels, units = next(run.epoch_steps(1))
        steps.append((images, labels, units))
    return steps


def seconds(step, device: torch.device, count: int) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    started = time.perf_counter()
    for _ in range(count):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - started) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", type=Path, default=ROOT / "recipes" / "mnist_dt.toml")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args()
    registry = load_registry()
    make = lambda seed: trainer(options.recipe, registry, seed, options.device, 256)  # noqa: E731
    stacked_runs = [make(seed) for seed in range(options.seeds)]
    alone_runs = [make(seed) for seed in range(options.seeds)]
    stack = SeedStack(stacked_runs)
    stacked_steps, alone_steps = minibatches(stacked_runs), minibatches(alone_runs)
    device = stacked_runs[0].experiment.device

    def stacked() -> None:
        stack.update(stacked_steps)

    def one_by_one() -> None:
        for run, (images, labels, units) in zip(alone_runs, alone_steps):
            run.update(images, labels, units)

    def one_seed() -> None:
        images, labels, units = alone_steps[0]
        alone_runs[0].update(images, labels, units)

    contenders = {"stacked": stacked, "one by one": one_by_one, "one seed": one_seed}
    for step in contenders.values():
        step()  # warm-up: allocations, lazy optimizer state, autotuning
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(options.repeats):
        for name, step in contenders.items():
            times[name].append(seconds(step, device, options.steps))
    median = {name: statistics.median(values) for name, values in times.items()}
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    result = {
        "device": name,
        "recipe": str(options.recipe),
        "seeds": options.seeds,
        "batch": stacked_runs[0].recipe.train.batch_size,
        "blocks": len(stacked_runs[0].variant.units),
        **{f"{key.replace(' ', '_')}_ms": value * 1e3 for key, value in median.items()},
        "stacked_over_one_seed": median["stacked"] / median["one seed"],
        "one_by_one_over_stacked": median["one by one"] / median["stacked"],
    }
    if options.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"{options.recipe.name}: {options.seeds} seeds × {result['blocks']} blocks, fused, batch {result['batch']}, "
        f"{name} (median of {options.repeats})"
    )
    for key, value in median.items():
        print(f"  {key:<11} {value * 1e3:9.1f} ms per step  {value / median['one seed']:5.2f}× one seed")
    print(f"  stacked is {result['one_by_one_over_stacked']:.2f}× as fast as one by one")


if __name__ == "__main__":
    main()
