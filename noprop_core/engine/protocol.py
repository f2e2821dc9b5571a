"""The paper's evaluation protocol, as numbers: seeds × inference runs pooled into a mean and
its standard error, the seeds of repeated inference, and agreement with a published value.

Table 1 of the paper reports each accuracy as the mean and standard error of 15 values (3
seeds × 5 inference runs); noprop pools the same way: every inference run of every seed is one
value, the standard error is the sample standard deviation over √n.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    import torch

GOLDEN = 0x9E3779B97F4A7C15  # spreads consecutive run indices over the seed range


def inference_seed(seed: int, run: int) -> int:
    """The seed of inference run ``run`` (0, 1, …) of a model trained with ``seed``; run 0 is the
    seed itself, as every per-epoch evaluation uses. Its noise comes from ``noise_generator``."""
    return seed if run == 0 else (seed + run * GOLDEN) % 2**63


def noise_seed(seed: int) -> int:
    """SplitMix64 of ``seed``, kept below 2**63: the inference noise of a run seeded ``seed`` is
    not the stream its parameters were initialised from (``torch.manual_seed(seed)``). With one
    seed for both, the chain of test example i started from the draws that had made a learned
    class embedding u_i, and an untrained model predicted class i for it."""
    z = (seed + GOLDEN) % 2**64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) % 2**64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) % 2**64
    return (z ^ (z >> 31)) % 2**63


def noise_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """The generator of an inference run's noise (run seeds: ``inference_seed``)."""
    import torch  # here: the protocol's numbers are read without torch (noprop report)

    return torch.Generator(device=device).manual_seed(noise_seed(seed))


@attrs.frozen
class Spread:
    mean: float
    standard_error: float | None  # None for a single value
    n: int

    def text(self) -> str:
        if self.standard_error is None:
            return f"{self.mean:.2f}"
        return f"{self.mean:.2f} ± {self.standard_error:.2f}"

    def as_dict(self) -> dict[str, float | int | None]:
        return {"mean": self.mean, "standard_error": self.standard_error, "n": self.n}


def spread(values: Sequence[float]) -> Spread:
    """Mean and standard error (sample standard deviation / √n) of ``values``."""
    n = len(values)
    if n == 0:
        raise ValueError("spread of no values")
    mean = math.fsum(values) / n
    if n == 1:
        return Spread(mean, None, 1)
    variance = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
    return Spread(mean, math.sqrt(variance / n), n)


def agrees(ours: Spread, paper_mean: float, paper_standard_error: float) -> bool | None:
    """|Δ| ≤ 2·√(se₁² + se₂²): the difference is within the combined spread (None when ours has no spread)."""
    if ours.standard_error is None:
        return None
    return abs(ours.mean - paper_mean) <= 2 * math.hypot(ours.standard_error, paper_standard_error)
