"""`fm`: NoProp-FM (paper Eq. 10–13, Algorithm 3): flow matching in label-embedding space.

v_θ(z_t, x, t) = logits · W_Embed (unconstrained weights). Inference integrates dz/dt = v from
z_0 ~ N(0, I) over [0, 1] and predicts the class whose embedding is nearest to z_1.
``sigma`` is the width of the probability path N(t z_1 + (1 − t) z_0, σ²); the paper gives no
value, and 0 (the straight conditional path) is the default.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from noprop_core import ODE_SOLVERS, Inference, VariantConfig, at_least, between, head_init_field, hookimpl, one_of

if TYPE_CHECKING:
    from noprop_core import VariantParts


@attrs.frozen(kw_only=True)
class FMConfig(VariantConfig):
    sigma: float = attrs.field(default=0.0, validator=at_least(0))
    steps: int = attrs.field(default=1000, validator=between(1, 1_000_000))
    sampler: str = attrs.field(default="euler", validator=one_of(*ODE_SOLVERS))
    # Evaluations during training (not the final one) with this sampler and step count: 0 and ""
    # infer as above. 10 Euler steps: FM's paths are nearly straight, within one standard error of
    # 1000 steps on digits from 5 steps on (docs/methods.md, "Inference in tens of calls").
    train_eval_steps: int = attrs.field(default=10, validator=between(0, 1_000_000))
    train_eval_sampler: str = attrs.field(default="", validator=one_of("", *ODE_SOLVERS))
    # How the head starts (noprop_core.HEAD_INITS); FM predicts by the nearest class embedding,
    # its head only anchors a learned W_Embed (Eq. 13).
    head_init: str = head_init_field()

    def model_parts(self) -> frozenset[str]:
        return frozenset({"backbone", "label_embedding", "head"})  # no noise schedule

    def inference(self) -> Inference:
        return Inference(
            steps=self.steps,
            sampler=self.sampler,
            steps_key="steps",
            sampler_key="sampler",
            samplers=ODE_SOLVERS,
            training_steps=self.train_eval_steps or None,
            training_sampler=self.train_eval_sampler or None,
        )

    def paper_label(self) -> str:
        return "NoProp-FM"


def build(config: FMConfig, parts: VariantParts):
    from .model import build as implementation  # torch: imported when the plugin is used

    return implementation(config, parts)


@hookimpl
def noprop_register_variants(registry) -> None:
    registry.add("fm", build, config=FMConfig, description="NoProp-FM: flow matching in embedding space")
