"""`adjoint`: the paper's continuous-time baseline, a neural ODE trained by adjoint sensitivity.

The vector field is the continuous-time block with unconstrained output weights, as in
NoProp-FM: dz/dt = logits_θ(z, x, t) · W_Embed (the paper names the block, not the field).
A softmax-bounded field û − z was tried first: without batch norm its logits grow until the
softmax is exactly one-hot in float32, after which no gradient reaches the block (digits stayed
at chance). z_0 ~ N(0, I)
is integrated to t = 1 with ``steps`` fixed Euler steps by torchdiffeq's ``odeint_adjoint``,
which back-propagates by solving the adjoint ODE backwards (Chen et al. 2018) rather than
storing activations; a linear head classifies z_1 with cross-entropy.
The image path of the block runs once per batch; its features enter the ODE as an adjoint
parameter so that the convolutions are trained too (see ``adjoint_parameters``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from noprop_core import Inference, VariantConfig, between, hookimpl

if TYPE_CHECKING:
    from noprop_core import VariantParts


@attrs.frozen(kw_only=True)
class AdjointConfig(VariantConfig):
    steps: int = attrs.field(default=1000, validator=between(1, 1_000_000))

    def model_parts(self) -> frozenset[str]:
        return frozenset({"backbone", "label_embedding", "head"})  # no noise schedule

    def inference(self) -> Inference:
        return Inference(steps=self.steps, steps_key="steps")  # fixed Euler steps, in training too

    def paper_label(self) -> str:
        return "Adjoint"


def build(config: AdjointConfig, parts: VariantParts):
    from .model import build as implementation  # torch: imported when the plugin is used

    return implementation(config, parts)


@hookimpl
def noprop_register_variants(registry) -> None:
    registry.add("adjoint", build, config=AdjointConfig, description="baseline: neural ODE, adjoint sensitivity")
