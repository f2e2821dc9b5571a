"""Test accuracy against block calls per image, for every sampler of NoProp-CT and -FM, on trained
runs: how few calls reach the accuracy of the paper's 1000 steps.

    python benchmarks/samplers.py RUN_DIR [RUN_DIR ...] --out DIR [--runs 3] [--plan ct|fm]

Each run folder (a trained ``ct`` or ``fm`` run, e.g. every seed of a seed group) is evaluated on
its test set with each sampler and step count of the plan, ``--runs`` inference runs each (noise
seeded as the final evaluation seeds it). Block calls are counted by a forward hook on the
variant's block, per minibatch: each call denoises every image of the minibatch once. Writes
DIR/samplers.json, DIR/samplers.md (mean ± se over seeds × inference runs, and whether it is no
worse than the 1000-step reference: above it, or below by at most one standard error) and
DIR/samplers.png. Threads: pinned to ``torch.set_num_threads(1)`` so that wall times compare.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from noprop_core import Block
from noprop_core.engine import run_directory
from noprop_core.engine.protocol import inference_seed, spread
from noprop_core.engine.training.evaluation import read_out_accuracy
from noprop_core.engine.training.experiment import build_experiment
from noprop_core.plugin.manager import load_registry
from noprop_core.recipe.loading import load_recipe

REFERENCE = ("ancestral", 1000)  # the paper's CT inference; FM's is ("euler", 1000)
PLANS = {
    "ct": [
        ("ancestral", 1000),
        *(("ancestral", n) for n in (10, 20, 50, 100)),
        *(("euler", n) for n in (10, 20, 50, 100)),
        *(("heun", n) for n in (5, 10, 25, 50)),
        *(("dpm2", n) for n in (5, 10, 20, 50, 100)),
        ("dopri5", 10),
    ],
    "fm": [
        ("euler", 1000),
        *(("euler", n) for n in (5, 10, 20, 50, 100)),
        *(("heun", n) for n in (3, 5, 10, 25, 50)),
        ("dopri5", 10),
    ],
}


class CallCounter:
    """Block calls, one per call whatever its batch: a forward hook, and a wrapper of
    ``from_features`` (samplers that encode the images once call that instead of forward)."""

    def __init__(self, modules: list[torch.nn.Module]) -> None:
        self.calls = 0
        for module in modules:
            if not isinstance(module, Block):
                module.register_forward_hook(self.count)
                continue
            inner = module.from_features  # a Block's forward calls it too: counted once either way

            def counted(*args, inner=inner, **kwargs):
                self.calls += 1
                return inner(*args, **kwargs)

            module.from_features = counted

    def count(self, *_args: object) -> None:
        self.calls += 1


def evaluate(run_dir: Path, plan: list[tuple[str, int]], runs: int) -> list[dict]:
    registry = load_registry()
    recipe = load_recipe(run_dir / run_directory.RECIPE, registry, ["speed.threads=1", "tracker.name=none"])
    experiment = build_experiment(recipe, registry, notify=lambda text: None)
    checkpoint = run_directory.load_checkpoint(run_dir / run_directory.CHECKPOINT)
    run_directory.load_model_state(experiment.variant, checkpoint["model"], run_dir / run_directory.CHECKPOINT)
    variant, splits = experiment.variant, experiment.splits
    counter = CallCounter(variant.block_modules())
    batch = recipe.eval.batch_size
    batches = -(-len(splits.test_labels) // batch)
    results = []
    for sampler, steps in plan:
        variant.set_inference(steps, sampler)
        accuracies, calls, started = [], 0, time.perf_counter()
        for run in range(runs):
            counter.calls = 0
            seed = inference_seed(recipe.seed, run)
            read = read_out_accuracy(variant, splits.test_images, splits.test_labels, batch_size=batch, seed=seed)
            accuracies.append(read.chain[-1])
            calls = counter.calls / batches  # calls per image: every call denoises the whole minibatch
        seconds = (time.perf_counter() - started) / runs
        results.append(
            {
                "run": str(run_dir),
                "sampler": sampler,
                "steps": steps,
                "calls": calls,
                "accuracy": accuracies,
                "seconds": seconds,
            }
        )
        print(
            f"{run_dir.name} {sampler:>9} {steps:>5}: {calls:7.1f} calls/image, {sum(accuracies) / runs:6.2f} %, {seconds:.1f} s",
            flush=True,
        )
    return results


def summarise(results: list[dict]) -> list[dict]:
    """One row per (sampler, steps): accuracy over runs × inference runs, calls per image."""
    rows = []
    for key in dict.fromkeys((r["sampler"], r["steps"]) for r in results):
        chosen = [r for r in results if (r["sampler"], r["steps"]) == key]
        pooled = spread([value for r in chosen for value in r["accuracy"]])
        calls = sum(r["calls"] for r in chosen) / len(chosen)
        rows.append(
            {
                "sampler": key[0],
                "steps": key[1],
                "calls": calls,
                "accuracy": pooled.as_dict(),
                "seconds": sum(r["seconds"] for r in chosen) / len(chosen),
            }
        )
    return rows


def markdown(rows: list[dict], reference: tuple[str, int]) -> str:
    ref = next(row for row in rows if (row["sampler"], row["steps"]) == reference)["accuracy"]
    lines = [
        "| sampler | steps | block calls per image | test % (n) | no worse than the 1000-step reference (above it, or below by at most one se) | seconds per evaluation |",
        "|---|---|---|---|---|---|",
    ]
    for row in sorted(rows, key=lambda r: (r["sampler"], r["calls"])):
        acc = row["accuracy"]
        se = ref["standard_error"] or 0.0
        within = "yes" if abs(acc["mean"] - ref["mean"]) <= se or acc["mean"] >= ref["mean"] else "no"
        lines.append(
            f"| {row['sampler']} | {row['steps']} | {row['calls']:.0f} | {acc['mean']:.2f} ± {acc['standard_error'] or 0:.2f} "
            f"({acc['n']}) | {within} | {row['seconds']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], reference: tuple[str, int], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7.5, 4.8))
    ref = next(row for row in rows if (row["sampler"], row["steps"]) == reference)["accuracy"]
    se = ref["standard_error"] or 0.0
    axis.axhspan(
        ref["mean"] - se,
        ref["mean"] + se,
        color="grey",
        alpha=0.25,
        label=f"{reference[0]}, {reference[1]} steps (± se)",
    )
    for index, sampler in enumerate(dict.fromkeys(row["sampler"] for row in rows)):
        mine = sorted((row for row in rows if row["sampler"] == sampler), key=lambda r: r["calls"])
        axis.errorbar(
            [r["calls"] for r in mine],
            [r["accuracy"]["mean"] for r in mine],
            yerr=[r["accuracy"]["standard_error"] or 0.0 for r in mine],
            marker="o",
            markersize=4,
            capsize=3,
            color=f"C{index}",
            label=sampler,
        )
    axis.axvline(100, color="black", linestyle=":", linewidth=1)
    axis.set(xscale="log", xlabel="block calls per image (log scale)", ylabel="test accuracy (%)", title=title)
    axis.grid(alpha=0.3, which="both")
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--plan", choices=sorted(PLANS), required=True)
    parser.add_argument("--runs", dest="inference_runs", type=int, default=3)
    parser.add_argument("--title", default="Test accuracy against block calls per image")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    reference = PLANS[args.plan][0]
    results = [row for run in args.runs for row in evaluate(run, PLANS[args.plan], args.inference_runs)]
    rows = summarise(results)
    (args.out / "samplers.json").write_text(json.dumps({"results": results, "rows": rows}, indent=1) + "\n")
    (args.out / "samplers.md").write_text(markdown(rows, reference))
    plot(rows, reference, args.out / "samplers.png", args.title)
    print(markdown(rows, reference))


if __name__ == "__main__":
    main()
