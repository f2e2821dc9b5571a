"""`ct`: NoProp-CT (paper Eq. 9, Algorithm 2; continuous time, usually with `learnable_gamma`).

``target = "noise"`` (not in the paper) makes the block predict the noise ε instead of the clean
embedding, with the loss weight transformed so that the objective is the same (``ct_loss``);
several NoProp reimplementations report that it trains more easily. ε̂ must reach noise outside
W_Embed's row space when d > m, so it is never class weights over W's rows: with ``noise_form =
"free"`` the block returns ε̂ ∈ ℝ^d itself; with ``"posterior"`` it returns class logits and a
residual r̂ ∈ ℝ^d, ε̂ = (z − √ᾱ softmax(logits)·W)/√(1 − ᾱ) + gate · r̂ — the form E[ε | z] takes
when the logits are the class posterior, the gate starting at 0. ``time_sampling = "importance"`` draws t with density ∝ the target's weight
(SNR′ for the embedding, SNR′/SNR for the noise) and divides the weight by it: the same objective
in expectation, with less variance. A learned embedding under the noise target needs
``fixed_norms = true``: the target's only path into W_Embed pulls each row towards the block's
prediction, and the rows shrink until the classes are lost in the noise.

One block û_θ(z_t, x, t); the schedule's parameters ψ are shared parameters, trained with the
head and the embedding. Inference: ``ancestral`` applies the DT update on a grid of ``steps``
with ᾱ read off the (learned) schedule; ``euler`` / ``heun`` integrate the probability-flow ODE.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from noprop_core import (
    CT_SAMPLERS,
    NOISE_FORMS,
    PREDICTION_TARGETS,
    TIME_SAMPLING,
    Inference,
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
class CTConfig(VariantConfig):
    eta: float = attrs.field(default=1.0, validator=greater_than(0))
    steps: int = attrs.field(default=1000, validator=between(1, 1_000_000))  # inference steps
    sampler: str = attrs.field(default="ancestral", validator=one_of(*CT_SAMPLERS))
    # Evaluations during training (not the final one) with this sampler and step count: 0 and ""
    # infer as above. 50 steps of the recipe's sampler: on digits the ancestral sampler is within
    # one standard error of its 1000 steps from 10 steps on (docs/methods.md, "Inference in tens
    # of calls"); the probability-flow solvers settle 2 points lower.
    train_eval_steps: int = attrs.field(default=50, validator=between(0, 1_000_000))
    train_eval_sampler: str = attrs.field(default="", validator=one_of("", *CT_SAMPLERS))
    # What the block predicts: the clean embedding u_y (the paper) or the noise ε (see ct_loss).
    target: str = attrs.field(default="embedding", validator=one_of(*PREDICTION_TARGETS))
    # How t is drawn in training: "uniform" (the paper) or "importance" (p(t) ∝ the target's weight).
    time_sampling: str = attrs.field(default="uniform", validator=one_of(*TIME_SAMPLING))
    # How a noise-target block forms ε̂ (``predicted_noise``): its output itself, or from class
    # logits as E[ε | z] has it plus a residual.
    # "posterior" by measurement (docs/methods.md: within 0.4 point of the embedding target on
    # digits for one-hot, dim-20 and prototypes; "free" is 18 / 2 / 77 points behind).
    noise_form: str = attrs.field(default="posterior", validator=one_of(*NOISE_FORMS))
    # Whether the denoising term trains a learned W_Embed (the paper) or only ce and kl do.
    denoise_trains_embedding: bool = True
    head_init: str = head_init_field()  # how the head starts (noprop_core.HEAD_INITS)

    def inference(self) -> Inference:
        return Inference(
            steps=self.steps,
            sampler=self.sampler,
            steps_key="steps",
            sampler_key="sampler",
            samplers=CT_SAMPLERS,
            training_steps=self.train_eval_steps or None,
            training_sampler=self.train_eval_sampler or None,
        )

    def display_name(self) -> str:
        return self.name if self.target == "embedding" else f"{self.name} ({self.target} target)"

    def paper_label(self) -> str | None:
        return "NoProp-CT" if self.target == "embedding" else None  # the paper predicts u_y


def build(config: CTConfig, parts: VariantParts):
    from .model import build as implementation  # torch: imported when the plugin is used

    return implementation(config, parts)


@hookimpl
def noprop_register_variants(registry) -> None:
    registry.add("ct", build, config=CTConfig, description="NoProp-CT: one block, continuous time (Algorithm 2)")
