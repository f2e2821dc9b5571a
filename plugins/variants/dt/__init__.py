"""`dt`: NoProp-DT (paper §2.1, Eq. 8, Algorithm 1).

T blocks û_θt(z_{t−1}, x), a linear head p̂_θout(y | z) = softmax(Linear(z)) (Eq. 14) and the
class embeddings W_Embed. Each block is its own unit: its loss (see
``noprop_core.dt_loss``) only reaches its own parameters and the shared head and embedding.
Inference chains the blocks from z_0 ~ N(0, I) with the a_t, b_t, c_t update.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from noprop_core import (
    UPDATE_ORDERS,
    Inference,
    InvalidValue,
    VariantConfig,
    between,
    greater_than,
    head_init_field,
    hookimpl,
    one_of,
)

if TYPE_CHECKING:
    from noprop_core import VariantParts


@attrs.frozen(kw_only=True)
class DTConfig(VariantConfig):
    timesteps: int = attrs.field(default=10, validator=between(1, 1000))  # each block is a network
    eta: float = attrs.field(default=0.1, validator=greater_than(0))
    # "sequential": Algorithm 1, one block per minibatch in turn; "simultaneous": every block on
    # each minibatch (the paper: the order is not essential); "auto": simultaneous and fused on a
    # GPU (where it is much faster at the same accuracy: docs/measurements.md, "one H100"),
    # sequential elsewhere (on a CPU the fused update gains little for MNIST-sized blocks).
    order: str = attrs.field(default="auto", validator=one_of("auto", *UPDATE_ORDERS))
    # With order = "simultaneous": compute all T blocks in one vmapped pass (noprop_core.StackedBlocks).
    # Same updates as unfused; faster where kernel launches dominate (GPUs, small blocks).
    fused: bool = False
    head_init: str = head_init_field()  # how the head starts (noprop_core.HEAD_INITS)

    def __attrs_post_init__(self):
        if self.fused and self.order == "sequential":
            raise InvalidValue(
                "fused",
                f"fused = true needs order = 'simultaneous' (all blocks on each minibatch), got order = {self.order!r}",
            )

    def inference(self) -> Inference:
        return Inference(steps=self.timesteps)  # the chain has one step per block: not adjustable

    def resolved_for(self, device_type: str) -> DTConfig:
        if self.order != "auto":
            return self
        if device_type == "cuda" or self.fused:
            return attrs.evolve(self, order="simultaneous", fused=True)
        return attrs.evolve(self, order="sequential")

    def faster_path(self, device_type: str) -> str | None:
        if device_type != "cuda" or self.fused:
            return None
        return (
            "variant.order = 'simultaneous' with variant.fused = true (order = 'auto' does it on a GPU) trains "
            "all blocks in one stacked pass, with speed.cuda_graph about 8× faster per epoch on an H100"
        )

    def paper_label(self) -> str:
        return "NoProp-DT"


def build(config: DTConfig, parts: VariantParts):
    from .model import build as implementation  # torch: imported when the plugin is used

    return implementation(config, parts)


@hookimpl
def noprop_register_variants(registry) -> None:
    registry.add("dt", build, config=DTConfig, description="NoProp-DT: T blocks, each trained alone (Algorithm 1)")
