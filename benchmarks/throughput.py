"""Training throughput, peak training memory and inference latency of noprop, side by side.

Every timing is taken in one process, the contenders interleaved over several repeats (median
reported), so machine noise hits all alike:

- ``reference``: a hand-written PyTorch loop for one DT block step (sample z_{t−1} and z_T,
  forward, the three loss terms, backward, AdamW) — what noprop's machinery must not slow down;
- ``sequential``: noprop's trainer updating one block (Algorithm 1's inner step);
- ``torch_dropout``: ``sequential`` with the blocks' dropout layers swapped for ``torch.nn.Dropout``
  (noprop's own ``Dropout`` draws its CPU masks from uniform numbers; see
  ``benchmarks/dropout.py``): the DT block step before and after that change, side by side;
- ``fused``: noprop's trainer updating all T blocks in one pass (``fused = true``: the conv path as
  one grouped network, the rest vmapped), per block;
- ``backprop``: the back-propagation baseline's end-to-end step through all T blocks, per block;
- ``fused_graph`` (CUDA only): ``fused`` with ``speed.cuda_graph``, the update replayed as one
  CUDA graph (``noprop_core.speed.cuda_graph``), per block.

Peak training memory (the paper's Table 2 question): on CUDA the trainer's own parameters,
buffers and optimizer state plus the rise of ``torch.cuda.max_memory_allocated`` over one step
(the other contenders alive in the process do not count). On CPU, which has no allocator statistics, it is the tensor memory a step needs at
its peak, the end of the forward pass: parameters + gradients of the updated parameters + Adam's
two moments for every parameter (as after the first epoch) + every distinct tensor storage autograd
saves for backward (counted with ``torch.autograd.graph.saved_tensors_hooks``, parameters excluded).
Process RSS is not used: the runtime dominates it.

Fraction of the limit: every contender's FLOPs per step (forward and backward, counted with
``torch.utils.flop_counter.FlopCounterMode``; the optimizer's element-wise work is not counted;
stacked contenders are credited with the sequential step's count per block)
over its time give achieved FLOP/s, shown against this device's peak measured in the same run: a
large float32 matmul (``--peak-size``, 2048 by default).

    python benchmarks/throughput.py            # the full tables (MNIST-, CIFAR-, digits-shaped, DT/CT/FM)
    python benchmarks/throughput.py --json     # one JSON object, MNIST-shaped DT only, < 1 min on 2 cores
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from noprop_core.engine.training.experiment import Experiment
from noprop_core.engine.training.progress import Progress
from noprop_core.engine.training.trainer import Trainer
from noprop_core.model.blocks import BlockSpec
from noprop_core.model.splits import TensorSplits
from noprop_core.model.variant import Variant, VariantParts
from noprop_core.plugin.config import DatasetConfig
from noprop_core.plugin.tracker import Tracker
from noprop_core.recipe.schema import EvalSection, Recipe, TrainSection
from noprop_core.speed.cuda_graph import WARMUP_STEPS
from noprop_core.speed.section import SpeedSection
from noprop_plugins.backbones.cnn import CnnConfig
from noprop_plugins.backbones.cnn import build as build_cnn
from noprop_plugins.embeddings.onehot.embedding import OneHotEmbedding
from noprop_plugins.heads.softmax.head import SoftmaxHead
from noprop_plugins.schedules.cosine.schedule import CosineSchedule
from noprop_plugins.schedules.learnable_gamma import LearnableGammaConfig
from noprop_plugins.schedules.learnable_gamma import build as build_gamma
from noprop_plugins.variants.backprop import BackpropConfig
from noprop_plugins.variants.backprop.model import BackpropChain
from noprop_plugins.variants.ct import CTConfig
from noprop_plugins.variants.ct.model import NoPropCT
from noprop_plugins.variants.dt import DTConfig
from noprop_plugins.variants.dt.model import NoPropDT
from noprop_plugins.variants.fm import FMConfig
from noprop_plugins.variants.fm.model import NoPropFM

SHAPES = {"MNIST": (1, 28, 28), "CIFAR": (3, 32, 32), "digits": (1, 8, 8)}  # digits: where fusing pays on a CPU
CLASSES, T = 10, 10


def parts(image_shape, schedule=None) -> VariantParts:
    return VariantParts(
        embedding=OneHotEmbedding(CLASSES),
        schedule=schedule or CosineSchedule(),
        image_shape=image_shape,
        num_classes=CLASSES,
        make_block=lambda spec: build_cnn(CnnConfig(name="cnn"), spec),
        make_head=lambda: SoftmaxHead(CLASSES, CLASSES),
    )


def batch(image_shape, size, device):
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(size, *image_shape, generator=generator).to(device)
    labels = torch.randint(0, CLASSES, (size,), generator=generator).to(device)
    return images, labels


def trainer_for(variant: Variant, images, labels, device, cuda_graph: bool = False) -> Trainer:
    splits = TensorSplits(
        name="bench",
        train_images=images,
        train_labels=labels,
        test_images=images,
        test_labels=labels,
        num_classes=CLASSES,
    )
    recipe = Recipe(
        data=DatasetConfig(name="bench"),
        model=None,
        variant=None,
        train=TrainSection(epochs=1),
        eval=EvalSection(),
        speed=SpeedSection(cuda_graph=cuda_graph),
        tracker=None,
    )
    experiment = Experiment(recipe=recipe, device=device, splits=splits, variant=variant.to(device).train())
    return Trainer(experiment, Progress(), Tracker())


def reference_step(images, labels, device) -> Callable[[], None]:
    """The plain PyTorch loop for block t = 5 of a T = 10 DT model."""
    spec = BlockSpec(image_shape=tuple(images.shape[1:]), embedding_dim=CLASSES, num_classes=CLASSES)
    block, head = build_cnn(CnnConfig(name="cnn"), spec).to(device), torch.nn.Linear(CLASSES, CLASSES).to(device)
    optimizer = torch.optim.AdamW([*block.parameters(), *head.parameters()], lr=1e-3, weight_decay=1e-3)
    chain, weight, t = CosineSchedule().discretize(T).to(device), torch.eye(CLASSES, device=device), 5

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        u = weight[labels]
        z_prev = chain.alpha_bar[t - 1].sqrt() * u + (1 - chain.alpha_bar[t - 1]).sqrt() * torch.randn_like(u)
        u_hat = block(images, z_prev).softmax(-1) @ weight
        z_last = chain.alpha_bar[-1].sqrt() * u + (1 - chain.alpha_bar[-1]).sqrt() * torch.randn_like(u)
        a0 = chain.alpha_bar[0]
        kl = 0.5 * (a0 * u.pow(2).sum(-1) - CLASSES * a0 - CLASSES * torch.log1p(-a0)).mean()
        denoise = 0.5 * T * 0.1 * chain.snr_weight[t - 1] * (u_hat - u).pow(2).sum(-1).mean()
        (F.cross_entropy(head(z_last), labels) + kl + denoise).backward()
        optimizer.step()

    return step


def synchronize(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def milliseconds(step: Callable[[], None], steps: int, device, warmup: int = 0) -> float:
    for _ in range(warmup):
        step()
    synchronize(device)
    started = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize(device)
    return 1e3 * (time.perf_counter() - started) / steps


def interleaved(contenders: dict[str, tuple[Callable[[], None], int, int]], repeats: int, device) -> dict[str, float]:
    """{name: (step, steps per repeat, divisor)} -> median milliseconds per step / divisor."""
    times = {name: [] for name in contenders}
    for step, _, _ in contenders.values():  # one untimed call each: allocations, lazy set-up
        step()
    for _ in range(repeats):
        for name, (step, steps, divisor) in contenders.items():
            times[name].append(milliseconds(step, steps, device) / divisor)
    return {name: statistics.median(values) for name, values in times.items()}


def step_memory_bytes(trainer: Trainer, units: list[str], images, labels) -> int:
    """Peak tensor memory of one training step of ``units`` (see the module docstring)."""
    device = trainer.experiment.device
    if device.type == "cuda":
        own = [*trainer.variant.parameters(), *trainer.variant.buffers()]
        own += [
            v for o in trainer.optimizers() for state in o.state.values() for v in state.values() if torch.is_tensor(v)
        ]
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        trainer.update(images, labels, units)
        torch.cuda.synchronize(device)
        rise = torch.cuda.max_memory_allocated(device) - before
        return sum(t.numel() * t.element_size() for t in own) + rise
    parameters = list(trainer.variant.parameters())
    parameter_storages = {p.untyped_storage().data_ptr() for p in parameters}
    saved: dict[int, int] = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in parameter_storages:
            saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        trainer.update(images, labels, units)
    parameter_bytes = sum(p.numel() * p.element_size() for p in parameters)
    gradient_bytes = sum(p.grad.numel() * p.grad.element_size() for p in parameters if p.grad is not None)
    return parameter_bytes + gradient_bytes + 2 * parameter_bytes + sum(saved.values())


def with_torch_dropout(variant: Variant) -> Variant:
    """The same model with every dropout layer a ``torch.nn.Dropout`` (the mask drawn by ``bernoulli_``)."""
    for module in list(variant.modules()):
        for name, child in module.named_children():
            if isinstance(child, torch.nn.Dropout):
                setattr(module, name, torch.nn.Dropout(child.p))
    return variant


def matmul_peak_flops(size: int, device, repeats: int) -> float:
    """FLOP/s of a size × size float32 matmul: the device's attainable peak for dense work."""
    a, b = torch.randn(size, size, device=device), torch.randn(size, size, device=device)
    seconds = min(milliseconds(lambda: a @ b, 2, device, warmup=1) for _ in range(repeats)) / 1e3
    return 2 * size**3 / seconds


def flops_per_step(step: Callable[[], None], divisor: int) -> float:
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops() / divisor


def dt_trainers(image_shape, size, device):
    images, labels = batch(image_shape, size, device)
    torch.manual_seed(0)
    sequential = trainer_for(NoPropDT(DTConfig(name="dt", timesteps=T), parts(image_shape)), images, labels, device)
    torch.manual_seed(0)
    torch_dropout_variant = with_torch_dropout(NoPropDT(DTConfig(name="dt", timesteps=T), parts(image_shape)))
    torch_dropout = trainer_for(torch_dropout_variant, images, labels, device)
    fused_config = DTConfig(name="dt", timesteps=T, order="simultaneous", fused=True)
    fused = trainer_for(NoPropDT(fused_config, parts(image_shape)), images, labels, device)
    backprop_config = BackpropConfig(name="backprop", timesteps=T)
    backprop = trainer_for(BackpropChain(backprop_config, parts(image_shape)), images, labels, device)
    graphed = None
    if device.type == "cuda":  # the fused update replayed as one CUDA graph (speed.cuda_graph)
        graphed = trainer_for(NoPropDT(fused_config, parts(image_shape)), images, labels, device, cuda_graph=True)
    return images, labels, sequential, torch_dropout, fused, backprop, graphed


def dt_measurements(image_shape, size, device, steps, repeats):
    images, labels, sequential, torch_dropout, fused, backprop, graphed = dt_trainers(image_shape, size, device)
    every_block = fused.variant.units
    contenders = {
        "reference": (reference_step(images, labels, device), steps, 1),
        "sequential": (lambda: sequential.update(images, labels, ["block5"]), steps, 1),
        "torch_dropout": (lambda: torch_dropout.update(images, labels, ["block5"]), steps, 1),
        "fused": (lambda: fused.update(images, labels, every_block), max(1, steps // 3), T),
        "backprop": (lambda: backprop.update(images, labels, ["model"]), max(1, steps // 3), T),
    }
    memory = {
        "noprop": step_memory_bytes(sequential, ["block5"], images, labels),
        "fused": step_memory_bytes(fused, every_block, images, labels),
        "backprop": step_memory_bytes(backprop, ["model"], images, labels),
    }
    if graphed is not None:  # after the memory measures: a recorded graph keeps its memory
        for _ in range(WARMUP_STEPS + 1):  # eager warm-up steps, then the recording
            graphed.update(images, labels, every_block)
        contenders["fused_graph"] = (lambda: graphed.update(images, labels, every_block), max(1, steps // 3), T)
    stacked = {"fused", "fused_graph"}
    flops = {
        name: flops_per_step(step, divisor) for name, (step, _, divisor) in contenders.items() if name not in stacked
    }
    # The stacked update does the sequential step's arithmetic once per block; counted on the latter
    # because FlopCounterMode's backward formula for grouped convolutions ignores the groups (T× too many).
    flops.update(dict.fromkeys(stacked & contenders.keys(), flops["sequential"]))
    return interleaved(contenders, repeats, device), memory, flops, (images, sequential)


def single_block_trainers(image_shape, size, device):
    images, labels = batch(image_shape, size, device)
    gamma = build_gamma(LearnableGammaConfig(name="learnable_gamma"))
    ct = trainer_for(NoPropCT(CTConfig(name="ct"), parts(image_shape, gamma)), images, labels, device)
    fm = trainer_for(NoPropFM(FMConfig(name="fm"), parts(image_shape)), images, labels, device)
    return images, labels, ct, fm


@torch.no_grad()
def inference_latency(variant: Variant, images, steps_options, device, attribute: str | None) -> dict[int, float]:
    variant.eval()
    results = {}
    for steps in steps_options:
        if attribute:
            setattr(variant, attribute, steps)
        results[steps] = milliseconds(lambda: variant.predict(images), 1, device, warmup=1)
    variant.train()
    return results


def print_tables(args, device, peak, mnist_times, mnist_memory, mnist_flops, mnist_dt) -> None:
    print(
        f"Training, batch {args.batch}, T = {T}, {device}, {torch.get_num_threads()} threads "
        f"(median of {args.repeats}; ms per block per minibatch)"
    )
    print(f"  peak: {args.peak_size}² float32 matmul, {peak / 1e9:.1f} GFLOP/s")
    for shape_name, shape in SHAPES.items():
        if shape_name == "MNIST":
            times, memory, flops = mnist_times, mnist_memory, mnist_flops
        else:
            times, memory, flops, _ = dt_measurements(shape, args.batch, device, args.steps, args.repeats)
        print(f"\n  DT, {shape_name}-shaped {shape}")
        for name, value in times.items():
            achieved = flops[name] / (value / 1e3)
            print(
                f"    {name:<13} {value:9.2f} ms  {args.batch * 1e3 / value:9.0f} examples·blocks/s  "
                f"{value / times['reference']:.3f}× reference  {achieved / 1e9:7.1f} GFLOP/s "
                f"= {100 * achieved / peak:5.1f} % of peak"
            )
        for name, value in memory.items():
            print(f"    peak memory {name:<9} {value / 2**20:8.1f} MiB  {value / memory['backprop']:.2f}× backprop")
        images, labels, ct, fm = single_block_trainers(shape, args.batch, device)
        contenders = {
            name: (lambda tr=tr, x=images, y=labels: tr.update(x, y, tr.variant.units), args.steps, 1)
            for name, tr in (("ct", ct), ("fm", fm))
        }
        for name, value in interleaved(contenders, args.repeats, device).items():
            print(f"    {name:<11} {value:9.2f} ms  {args.batch * 1e3 / value:9.0f} examples/s (their one block)")

    print(f"\nInference latency per batch of {args.batch}, MNIST-shaped (ms)")
    images, sequential = mnist_dt
    print(f"    dt  T = {T:<6} {inference_latency(sequential.variant, images, [T], device, None)[T]:9.1f}")
    _, _, ct, fm = single_block_trainers(SHAPES["MNIST"], args.batch, device)
    for name, trainer in (("ct", ct), ("fm", fm)):
        for steps, value in inference_latency(trainer.variant, images, [10, 100, 1000], device, "steps").items():
            print(f"    {name}  steps = {steps:<6} {value:9.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object (MNIST-shaped DT only)")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per repeat (fused, backprop: a third)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--peak-size", type=int, default=2048, help="side of the matmul that measures the peak")
    args = parser.parse_args()
    device = torch.device(args.device)

    peak = matmul_peak_flops(args.peak_size, device, args.repeats)
    times, memory, flops, mnist_dt = dt_measurements(SHAPES["MNIST"], args.batch, device, args.steps, args.repeats)
    if not args.json:
        print_tables(args, device, peak, times, memory, flops, mnist_dt)
        return
    print(
        json.dumps(
            {
                "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
                "threads": torch.get_num_threads(),
                "batch": args.batch,
                "timesteps": T,
                **{f"{name}_block_step_ms": value for name, value in times.items()},
                "peak_matmul_flops_per_second": peak,
                **{f"{name}_flops_per_block_step": flops[name] for name in times},
                **{f"{name}_fraction_of_peak": flops[name] / (times[name] / 1e3) / peak for name in times},
                "torch_dropout_over_sequential": times["torch_dropout"] / times["sequential"],
                "sequential_over_reference": times["sequential"] / times["reference"],
                "fused_speedup_over_sequential": times["sequential"] / times["fused"],
                **(
                    {"fused_graph_speedup_over_sequential": times["sequential"] / times["fused_graph"]}
                    if "fused_graph" in times
                    else {}
                ),
                "noprop_peak_bytes": memory["noprop"],
                "fused_peak_bytes": memory["fused"],
                "backprop_peak_bytes": memory["backprop"],
                "noprop_over_backprop_memory": memory["noprop"] / memory["backprop"],
                "memory_measure": "own state + rise of cuda max_memory_allocated over a step"
                if device.type == "cuda"
                else "tensor bytes at the end of forward",
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
