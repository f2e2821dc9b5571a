"""`backprop`: the paper's back-propagation baseline (Eq. 17–19).

The same T discrete-time blocks, chained at training time as at inference:
z_0 ~ N(0, I), z_t = (1 − α_t) z_{t−1} + α_t û_θt(z_{t−1}, x), α_t = tanh(w_t) with learnable
w_t, and cross-entropy on p̂_θout(y | z_T), trained end to end (gradients flow through the whole
chain). w_t starts at atanh(alpha_init), default α_t = 0.5 (the paper gives no initial value).

The head p̂_θout starts as the nearest-class-embedding classifier (``head_init = "embedding"``,
see `noprop_core.start_at_nearest_embedding`); the paper does not say how it starts. With
PyTorch's random start (``head_init = "default"``) the blocks learn much faster than the small
random head: each block's softmax saturates on whichever class embedding the random head happens
to read as the label, several labels land on the same one, and a saturated softmax passes back no
gradient, so the merge is permanent: on digits, half the classes are lost (measured in
docs/measurements.md, "What to expect on small data"). NoProp-DT does not need this: its
head is trained on z_T ~ q(z_T | y), which ties z to the labels from the first step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from noprop_core import Inference, VariantConfig, between, head_init_field, hookimpl

if TYPE_CHECKING:
    from noprop_core import VariantParts


@attrs.frozen(kw_only=True)
class BackpropConfig(VariantConfig):
    timesteps: int = attrs.field(default=10, validator=between(1, 1000))  # each block is a network
    alpha_init: float = attrs.field(default=0.5, validator=between(0.001, 0.999))  # α_t = tanh(w_t) at the start
    head_init: str = head_init_field()  # how the head starts (noprop_core.HEAD_INITS)

    def model_parts(self) -> frozenset[str]:
        return frozenset({"backbone", "label_embedding", "head"})  # no noise schedule

    def inference(self) -> Inference:
        return Inference(steps=self.timesteps)  # one step per block

    def paper_label(self) -> str:
        return "Backprop"


def build(config: BackpropConfig, parts: VariantParts):
    from .model import build as implementation  # torch: imported when the plugin is used

    return implementation(config, parts)


@hookimpl
def noprop_register_variants(registry) -> None:
    registry.add(
        "backprop", build, config=BackpropConfig, description="baseline: DT blocks chained, end-to-end backprop"
    )
