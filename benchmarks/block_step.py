"""Cost of one NoProp-DT block step: noprop's trainer against a plain PyTorch loop.

Both run the paper's DT block on the same MNIST-shaped batch (128 × 1 × 28 × 28) in one
process, interleaved, so machine noise hits both alike. The plain loop is what a user would
write by hand: sample z_{t−1}, forward, the three loss terms, backward, AdamW (PyTorch's
default implementation). Prints milliseconds per step and the ratio.

    python benchmarks/block_step.py [--steps 20] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from noprop_core.blocks import BlockSpec
from noprop_core.data import TensorSplits
from noprop_core.experiment import Experiment
from noprop_core.progress import Progress
from noprop_core.recipe import EvalSection, Recipe, TrainSection
from noprop_core.tracking import Tracker
from noprop_core.training import Trainer
from noprop_core.variant import VariantParts
from noprop_plugins.backbones.cnn import CnnConfig
from noprop_plugins.backbones.cnn import build as build_cnn
from noprop_plugins.embeddings.onehot import OneHotEmbedding
from noprop_plugins.schedules.cosine import CosineSchedule
from noprop_plugins.variants.dt import DTConfig, NoPropDT


def noprop_trainer(images: torch.Tensor, labels: torch.Tensor) -> Trainer:
    parts = VariantParts(
        embedding=OneHotEmbedding(10), schedule=CosineSchedule(), image_shape=(1, 28, 28), num_classes=10,
        make_block=lambda spec: build_cnn(CnnConfig(name="cnn"), spec),
    )  # fmt: skip
    variant = NoPropDT(DTConfig(name="dt", timesteps=10), parts)
    splits = TensorSplits(
        name="bench", train_images=images, train_labels=labels, test_images=images, test_labels=labels, num_classes=10
    )
    recipe = Recipe(
        data=None,
        model=None,
        variant=DTConfig(name="dt"),
        train=TrainSection(epochs=1),
        eval=EvalSection(),
        tracker=None,
    )
    return Trainer(
        Experiment(recipe=recipe, device=torch.device("cpu"), splits=splits, variant=variant), Progress(), Tracker()
    )


def plain_step_function(images: torch.Tensor, labels: torch.Tensor):
    spec = BlockSpec(image_shape=(1, 28, 28), embedding_dim=10, num_classes=10)
    block, head = build_cnn(CnnConfig(name="cnn"), spec), torch.nn.Linear(10, 10)
    optimizer = torch.optim.AdamW([*block.parameters(), *head.parameters()], lr=1e-3, weight_decay=1e-3)
    chain = CosineSchedule().discretize(10)
    weight = torch.eye(10)
    t = 5

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        u = weight[labels]
        z_prev = chain.alpha_bar[t - 1].sqrt() * u + (1 - chain.alpha_bar[t - 1]).sqrt() * torch.randn_like(u)
        u_hat = block(images, z_prev).softmax(-1) @ weight
        z_last = chain.alpha_bar[-1].sqrt() * u + (1 - chain.alpha_bar[-1]).sqrt() * torch.randn_like(u)
        loss = (
            F.cross_entropy(head(z_last), labels)
            + 5 * 0.1 * chain.snr_weight[t - 1] * (u_hat - u).pow(2).sum(-1).mean()
        )
        loss.backward()
        optimizer.step()

    return step


def milliseconds_per_step(step, steps: int) -> float:
    for _ in range(3):
        step()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    return 1e3 * (time.perf_counter() - started) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.manual_seed(0)
    images, labels = torch.randn(128, 1, 28, 28), torch.randint(0, 10, (128,))
    trainer = noprop_trainer(images, labels)
    trainer.variant.train()
    plain = plain_step_function(images, labels)
    results = {"plain PyTorch": [], "noprop sequential": []}
    for _ in range(args.repeats):  # interleaved, so both see the same machine conditions
        results["plain PyTorch"].append(milliseconds_per_step(plain, args.steps))
        results["noprop sequential"].append(
            milliseconds_per_step(lambda: trainer.update(images, labels, ["block5"]), args.steps)
        )
    print(f"DT block step, batch 128, MNIST-shaped, {torch.get_num_threads()} threads (median of {args.repeats})")
    medians = {name: statistics.median(values) for name, values in results.items()}
    for name, value in medians.items():
        print(f"  {name:<20} {value:8.1f} ms/step")
    print(f"  ratio noprop / plain: {medians['noprop sequential'] / medians['plain PyTorch']:.3f}")


if __name__ == "__main__":
    main()
