"""2×2 max-pooling on a CPU: PyTorch's kernel against noprop's MaxPool2x2, side by side.

    python benchmarks/max_pool.py [--repeats 50] [--out FILE.json]

For the shapes the paper's block pools (one block, and ten blocks fused into one grouped network,
on 8×8 and 28×28 images, batch 64), times forward+backward and forward alone, alternating the
two implementations within each repeat so that machine noise hits both alike, and prints the
median milliseconds and PyTorch's time over noprop's. Checks first that both give the same values
and gradients. Threads: pinned to ``torch.set_num_threads(1)``, the project's policy for one job
on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from noprop_core.model.max_pool import MaxPool2x2

SHAPES = {
    "8x8, one block": (64, 32, 8, 8),
    "8x8, ten blocks fused": (64, 320, 8, 8),
    "4x4, ten blocks fused": (64, 1280, 4, 4),
    "28x28, one block": (64, 32, 28, 28),
    "14x14, ten blocks fused": (64, 1280, 14, 14),
}


def pytorch_pool(x: torch.Tensor) -> torch.Tensor:
    return F.max_pool2d(x, 2)


def timed(pool, x: torch.Tensor, grad: torch.Tensor, backward: bool) -> float:
    start = time.perf_counter()
    if backward:
        pool(x).backward(grad)
    else:
        with torch.no_grad():
            pool(x)
    return time.perf_counter() - start


def measure(shape: tuple[int, ...], repeats: int) -> dict[str, float]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=generator).relu().requires_grad_()  # after a ReLU, as in the block
    grad = torch.randn(*shape[:2], shape[2] // 2, shape[3] // 2, generator=generator)
    ours = MaxPool2x2()
    reference, (reference_grad,) = pytorch_pool(x), torch.autograd.grad(pytorch_pool(x), x, grad)
    got, (got_grad,) = ours(x), torch.autograd.grad(ours(x), x, grad)
    if not (torch.equal(reference, got) and torch.equal(reference_grad, got_grad)):
        raise SystemExit(f"{shape}: MaxPool2x2 differs from F.max_pool2d")
    result = {}
    for backward in (True, False):
        times: dict[str, list[float]] = {"pytorch": [], "noprop": []}
        for _ in range(repeats + 3):
            times["pytorch"].append(timed(pytorch_pool, x, grad, backward))
            times["noprop"].append(timed(ours, x, grad, backward))
        kind = "forward_backward" if backward else "forward"
        for name, values in times.items():
            result[f"{kind}_ms_{name}"] = statistics.median(values[3:]) * 1e3
        result[f"{kind}_ratio"] = result[f"{kind}_ms_pytorch"] / result[f"{kind}_ms_noprop"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    results = {}
    print(
        f"{'shape':<26} {'fwd+bwd ms (torch / noprop)':>28} {'ratio':>6} {'fwd ms (torch / noprop)':>24} {'ratio':>6}"
    )
    for name, shape in SHAPES.items():
        r = measure(shape, args.repeats)
        results[name] = {"shape": list(shape), **r}
        print(
            f"{name:<26} {r['forward_backward_ms_pytorch']:>13.2f} / {r['forward_backward_ms_noprop']:<12.2f}"
            f" {r['forward_backward_ratio']:>6.2f} {r['forward_ms_pytorch']:>11.2f} / {r['forward_ms_noprop']:<10.2f}"
            f" {r['forward_ratio']:>6.2f}"
        )
    if args.out:
        info = {"torch": torch.__version__, "threads": 1, "repeats": args.repeats}
        args.out.write_text(json.dumps({"setup": info, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
