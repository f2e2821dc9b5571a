"""Which DT block moves a learned W_Embed? Gradient norm of each block's loss on W_Embed.

NoProp-DT weights block t's denoising loss by (T/2) η (SNR(t) − SNR(t−1)); with the cosine
schedule capped at ᾱ = 0.9999 the last block's weight is orders of magnitude above the first's.
W_Embed is shared by every block and moved by one optimizer with the sum of their gradients,
so this measures, per block t, ‖∇_W L_t‖ and its share of Σ_t ‖∇_W L_t‖, and the cosine between
∇_W L_T and the summed gradient (how much the sum points the last block's way) — on digits, for
the learned dim-20 and the prototype embedding, at the start and after a few epochs of training.

    python benchmarks/embedding_gradient_share.py [--epochs 3] [--batches 8] [--threads 1] [--caps 0.9999 0.999]

Prints a table per embedding and moment; torch threads pinned (--threads) for a quiet measurement.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from noprop_core import train
from noprop_core.engine.training.experiment import build_experiment
from noprop_core.plugin.manager import load_registry
from noprop_core.recipe.loading import load_recipe

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "digits_dt.toml"
EMBEDDINGS = {
    "dim-20": ['model.embedding={name="learned", dim=20}'],
    "prototype": ['model.embedding={name="prototype"}'],
}


def gradient_norms(variant, images, labels) -> dict[str, dict[str, float]]:
    """Per block: ‖∇_W L_t‖ of the whole loss and of each term, on one minibatch."""
    weight = variant.embedding.weight
    result = {}
    for unit in variant.units:
        terms = variant.losses(images, labels, unit)
        norms = {}
        for name, value in terms.items():
            (gradient,) = torch.autograd.grad(value, weight, retain_graph=True, allow_unused=True)
            norms[name] = 0.0 if gradient is None else gradient.norm().item()
        (total,) = torch.autograd.grad(sum(terms.values()), weight)
        result[unit] = {"total": total.norm().item(), **norms, "_gradient": total}
    return result


def measure(variant, splits, batches: int, batch_size: int = 64) -> tuple[list[dict], float]:
    variant.train()
    generator = torch.Generator().manual_seed(0)
    order = torch.randperm(len(splits.train_labels), generator=generator)
    rows: dict[str, dict[str, float]] = {}
    cosines = []
    for b in range(batches):
        index = order[b * batch_size : (b + 1) * batch_size]
        torch.manual_seed(b)
        norms = gradient_norms(variant, splits.train_images[index], splits.train_labels[index])
        gradients = [entry.pop("_gradient") for entry in norms.values()]
        summed, last_gradient = sum(gradients), gradients[-1]  # the last block's, with the same draws
        cosines.append(torch.nn.functional.cosine_similarity(last_gradient.flatten(), summed.flatten(), dim=0).item())
        for unit, entry in norms.items():
            for key, value in entry.items():
                rows.setdefault(unit, {}).setdefault(key, 0.0)
                rows[unit][key] += value / batches
    weights = variant.chain().snr_weight * 0.5 * len(variant.units) * variant.eta
    total = sum(row["total"] for row in rows.values())
    table = [
        {"block": k + 1, "loss_weight": weights[k].item(), **row, "share": row["total"] / total}
        for k, row in enumerate(rows.values())
    ]
    return table, sum(cosines) / len(cosines)


def print_table(title: str, table: list[dict], cosine: float) -> None:
    print(f"\n{title}")
    print(f"{'block':>5} {'loss weight':>12} {'‖∇W L_t‖':>10} {'denoise':>10} {'ce':>9} {'kl':>9} {'share':>7}")
    for row in table:
        print(
            f"{row['block']:>5} {row['loss_weight']:>12.4g} {row['total']:>10.4g} {row['denoise']:>10.4g} "
            f"{row['ce']:>9.3g} {row['kl']:>9.3g} {100 * row['share']:>6.1f}%"
        )
    print(f"cosine(∇W L_T, Σ_t ∇W L_t) = {cosine:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--caps", type=float, nargs="+", default=[0.9999], help="ᾱ caps of the cosine schedule")
    options = parser.parse_args()
    torch.set_num_threads(options.threads)
    registry = load_registry()
    print(
        f"digits, NoProp-DT T = 10, η = 0.1, cosine schedule; torch threads {options.threads}; "
        f"gradient norms averaged over {options.batches} minibatches of 64"
    )
    for (name, overrides), cap in ((item, cap) for cap in options.caps for item in EMBEDDINGS.items()):
        name = f"{name}, ᾱ cap {cap}"
        overrides = [
            *overrides,
            'tracker.name="none"',
            'variant.order="sequential"',
            'device="cpu"',
            f"model.schedule.max_alpha_bar={cap}",
        ]
        recipe = load_recipe(RECIPE, registry, overrides)
        torch.manual_seed(recipe.seed)
        experiment = build_experiment(recipe, registry, torch.device("cpu"), notify=lambda text: None)
        print_table(f"{name}: at the start", *measure(experiment.variant, experiment.splits, options.batches))
        with tempfile.TemporaryDirectory() as folder:
            run = train(
                RECIPE,
                overrides=[*overrides, f"train.epochs={options.epochs}"],
                out=Path(folder) / "run",
                registry=registry,
            )
            title = f"{name}: after {options.epochs} epochs (test accuracy {run.metrics['test_accuracy']:.2f} %)"
            print_table(title, *measure(run.model().variant, experiment.splits, options.batches))


if __name__ == "__main__":
    main()
