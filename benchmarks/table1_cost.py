"""What reproducing Table 1 costs on this device: every row timed briefly, the full protocol predicted.

For each of the 39 Table 1 rows (13 methods × MNIST, CIFAR-10, CIFAR-100) the shipped recipe
(``recipes/<data>_<variant>[_dim20|_prototype].toml``) is built with its real model, optimizers,
batch size and update order on random images of the data set's shape (the cost of a step does
not depend on the pixels), and timed through noprop's own trainer:

- training: one warm-up epoch of ``--batches`` minibatches (``train.max_batches``), then a
  timed one; scaled to a full epoch of the data set (60 000 / 50 000 training images);
- evaluation: the variant's own inference on ``--eval-examples`` images, scaled to what the
  protocol evaluates: test set + ``eval.train_subset`` training images on every evaluated epoch
  (``eval.every``), and ``inference_runs − 1`` more of each at the end.

Predicted protocol wall time = seeds × (epochs × epoch + evaluations), with the paper's epochs
(Table 3), 3 seeds and 5 inference runs. Training compute is counted as every run counts it
(``noprop_core.engine.training.compute``: block passes and FLOPs per example, as metrics.json's
``train_block_passes`` and ``train_flops``), scaled to the protocol's examples. Warm-up effects (compilation, autotuning) and data
loading are not in it; on a GPU the paper recipes' default path (``order = "auto"``: fused,
CUDA graph) is what is timed.

    python benchmarks/table1_cost.py                       # the table, every row
    python benchmarks/table1_cost.py --match "mnist_*" --json
    python benchmarks/table1_cost.py --from table.txt --devices 8 39   # a saved table on N devices

``--devices N``: the protocol's wall time on N devices working at once, one seed a job (what
``noprop run … --seeds 0 1 2 --launcher slurm`` sends), the longest jobs first.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import math
import sys
import time
from pathlib import Path

import torch

from noprop_core.engine.report.paper import TABLE_1, paper_reference
from noprop_core.engine.training.evaluation import accuracy
from noprop_core.engine.training.experiment import build_on_splits, resolve_device
from noprop_core.engine.training.progress import Progress
from noprop_core.engine.training.trainer import Trainer
from noprop_core.model.splits import TensorSplits
from noprop_core.plugin.manager import load_registry
from noprop_core.plugin.tracker import Tracker
from noprop_core.recipe.loading import load_recipe

ROOT = Path(__file__).resolve().parent.parent
SHAPES = {
    "mnist": ((1, 28, 28), 10, 60_000, 10_000),
    "cifar10": ((3, 32, 32), 10, 50_000, 10_000),
    "cifar100": ((3, 32, 32), 100, 50_000, 10_000),
}
SEEDS, INFERENCE_RUNS = 3, 5
# The shipped recipe of each Table 1 cell, from the paper's names of its parts.
DATASET_STEM = {"MNIST": "mnist", "CIFAR-10": "cifar10", "CIFAR-100": "cifar100"}
METHOD_STEM = {"Backprop": "backprop", "NoProp-DT": "dt", "Adjoint": "adjoint", "NoProp-CT": "ct", "NoProp-FM": "fm"}
SUFFIX = {"one-hot": "", "dim=20": "_dim20", "prototype": "_prototype"}


def rows() -> list[tuple[str, str, str, str]]:
    """(recipe stem, data set, variant, embedding) of every Table 1 row, in the paper's order."""
    return [
        (f"{DATASET_STEM[dataset]}_{METHOD_STEM[method]}{SUFFIX[embedding]}", DATASET_STEM[dataset], method, embedding)
        for (dataset, method, embedding) in TABLE_1
    ]


def random_splits(dataset: str, examples: int) -> TensorSplits:
    shape, classes, _, _ = SHAPES[dataset]
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(examples, *shape, generator=generator)
    labels = torch.arange(examples) % classes  # every class present (prototypes need one of each)
    return TensorSplits(
        name=dataset,
        train_images=images,
        train_labels=labels,
        test_images=images,
        test_labels=labels,
        num_classes=classes,
    )


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(stem: str, dataset: str, registry, batches: int, eval_examples: int, device_name: str) -> dict:
    recipe = load_recipe(
        ROOT / "recipes" / f"{stem}.toml",
        registry,
        [f"train.max_batches={batches}", "tracker.name=none", f"device={json.dumps(device_name)}"],
    )
    _, _, train_size, test_size = SHAPES[dataset]
    examples = max(batches * recipe.train.batch_size, eval_examples, SHAPES[dataset][1] * 4)
    device = resolve_device(recipe.device)
    trainer = Trainer(
        build_on_splits(recipe, registry, random_splits(dataset, examples), device), Progress(), Tracker()
    )
    trainer.train_epoch(1)  # warm-up: allocations, autotuning, lazy optimizer state
    synchronize(device)
    started = time.perf_counter()
    trainer.train_epoch(2)
    synchronize(device)
    measured = time.perf_counter() - started
    epoch = measured * math.ceil(train_size / recipe.train.batch_size) / batches
    trained = 2 * trainer.examples_per_epoch()  # the two epochs' examples: the count's per-example rate
    compute = trainer.compute.totals()

    splits = trainer.experiment.splits
    images, labels = splits.test_images[:eval_examples], splits.test_labels[:eval_examples]
    accuracy(trainer.variant, images[:16], labels[:16], batch_size=recipe.eval.batch_size, seed=0)  # warm-up
    synchronize(device)
    started = time.perf_counter()
    accuracy(trainer.variant, images, labels, batch_size=recipe.eval.batch_size, seed=0)
    synchronize(device)
    per_example = (time.perf_counter() - started) / len(labels)
    evaluated = test_size + min(recipe.eval.train_subset or train_size, train_size)
    epochs = paper_reference(recipe).epochs
    evaluations = math.ceil(epochs / recipe.eval.every) + (INFERENCE_RUNS - 1)
    evaluation = evaluations * evaluated * per_example
    protocol_examples = SEEDS * epochs * train_size
    return {
        "recipe": stem,
        "epochs": epochs,
        "epoch_seconds": epoch,
        "evaluation_seconds": evaluation,
        "protocol_seconds": SEEDS * (epochs * epoch + evaluation),
        "protocol_block_passes": compute["block_passes"] / trained * protocol_examples,
        "protocol_flops": None if compute["flops"] is None else compute["flops"] / trained * protocol_examples,
        "order": trainer.variant.update_order,
        "fused": trainer.variant.runs_stacked,
    }


def makespan(durations: list[float], devices: int) -> float:
    """Wall time of jobs on ``devices`` at once, longest first, each to the device free first."""
    loads = [0.0] * devices
    for duration in sorted(durations, reverse=True):
        loads[loads.index(min(loads))] += duration
    return max(loads)


def seed_jobs(results: list[dict]) -> list[float]:
    """Each row's seeds as jobs of equal length."""
    return [r["protocol_seconds"] / SEEDS for r in results for _ in range(SEEDS)]


def read_saved(path: Path) -> list[dict]:
    """Rows of a saved run of this script: its --json output or its printed table."""
    text = path.read_text()
    if text.lstrip().startswith("{"):
        return json.loads(text)["rows"]
    rows = []
    for line in text.splitlines()[2:]:
        parts = line.split()
        if len(parts) >= 3 and parts[0] != "total":
            value, unit = float(parts[-2].replace(",", "")), parts[-1]
            rows.append({"recipe": parts[0], "protocol_seconds": value * (3600 if unit == "h" else 60)})
    return rows


def hours(seconds: float) -> str:
    return f"{seconds / 3600:,.1f} h" if seconds >= 3600 else f"{seconds / 60:,.1f} min"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--match", action="append", help="recipe stems (glob), repeatable; default: all 39 rows")
    parser.add_argument("--batches", type=int, default=2, help="minibatches timed per epoch (default 2)")
    parser.add_argument("--eval-examples", type=int, default=128, help="images timed through inference")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--devices",
        type=int,
        nargs="+",
        default=[],
        metavar="N",
        help="also the protocol's wall time on N devices at once, one seed a job",
    )
    parser.add_argument("--from", dest="saved", type=Path, help="a saved table or --json output instead of timing")
    options = parser.parse_args()
    if options.saved is not None:
        results = read_saved(options.saved)
        print(
            f"{len(results)} rows, {len(results) * SEEDS} seed jobs, {hours(sum(seed_jobs(results)))} in all "
            f"(from {options.saved})"
        )
        print_devices(results, options.devices)
        return
    registry = load_registry()
    chosen = [row for row in rows() if not options.match or any(fnmatch.fnmatch(row[0], p) for p in options.match)]
    results = []
    for stem, dataset, _, _ in chosen:
        results.append(measure(stem, dataset, registry, options.batches, options.eval_examples, options.device))
        print(f"{stem}: epoch {results[-1]['epoch_seconds']:.1f} s", file=sys.stderr)
    total = sum(r["protocol_seconds"] for r in results)
    device = torch.device(
        options.device if options.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    )
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    if options.json:
        print(
            json.dumps(
                {
                    "device": name,
                    "seeds": SEEDS,
                    "inference_runs": INFERENCE_RUNS,
                    "rows": results,
                    "total_protocol_seconds": total,
                },
                indent=2,
            )
        )
        return
    print(f"Table 1 protocol cost on {name}: {SEEDS} seeds × Table 3 epochs + {INFERENCE_RUNS} inference runs")
    print(
        f"{'recipe':<26} {'path':<22} {'epochs':>6} {'epoch':>10} {'evaluation':>11} {'protocol':>11} "
        f"{'block passes':>13} {'FLOPs':>9}"
    )
    for r in results:
        path = r["order"] + (", fused" if r["fused"] else "")
        flops = "—" if r.get("protocol_flops") is None else f"{r['protocol_flops']:.2e}"
        print(
            f"{r['recipe']:<26} {path:<22} {r['epochs']:>6} {r['epoch_seconds']:>9.1f}s "
            f"{hours(r['evaluation_seconds']):>11} {hours(r['protocol_seconds']):>11} "
            f"{r['protocol_block_passes']:>13.2e} {flops:>9}"
        )
    print(f"{'total':<26} {'':<22} {'':>6} {'':>10} {'':>11} {hours(total):>11}")
    print_devices(results, options.devices)


def print_devices(results: list[dict], devices: list[int]) -> None:
    jobs = seed_jobs(results)
    for count in devices:
        print(
            f"on {count} device(s) at once, one seed a job: {hours(makespan(jobs, count))} "
            f"(the longest seed alone: {hours(max(jobs))})"
        )


if __name__ == "__main__":
    main()
