"""The torch part of the plugin in this folder (see its ``__init__``)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from noprop_core import (
    ImageConditioned,
    NoiseSchedule,
    ReadOut,
    SingleBlockVariant,
    VariantParts,
    convex_denoise,
    ct_loss,
    dpm_solver_2m,
    dt_chain,
    embedding_from_noise,
    integrate,
    noise_output_dim,
    predicted_noise,
    probability_flow,
    start_head,
)

from . import CTConfig


class NoPropCT(SingleBlockVariant):
    def __init__(self, config: CTConfig, parts: VariantParts) -> None:
        output_dim = 0
        if config.target == "noise":
            output_dim = noise_output_dim(config.noise_form, parts.num_classes, parts.embedding.dim)
        super().__init__(parts, steps=config.steps, sampler=config.sampler, output_dim=output_dim)
        self.schedule: NoiseSchedule = parts.noise_schedule()  # CT's learnable γ (or another schedule)
        self.eta = config.eta
        self.target = config.target
        self.time_sampling = config.time_sampling
        self.denoise_trains_embedding = config.denoise_trains_embedding
        self.noise_form = config.noise_form
        # The posterior form's r̂ enters through a gate that starts closed: training starts at the
        # form E[ε | z] has (the embedding target's objective) and opens it where it helps.
        posterior = config.target == "noise" and config.noise_form == "posterior"
        self.residual_gate = nn.Parameter(torch.zeros(())) if posterior else None
        start_head(self.head, self.embedding.weight, config.head_init)

    def losses(self, images: Tensor, labels: Tensor, unit: str) -> dict[str, Tensor]:
        return ct_loss(
            logits_fn=lambda z, t: self.gated(self.block(images, z, t)),
            head=self.head,
            embedding_weight=self.embedding.weight,
            labels=labels,
            schedule=self.schedule,
            eta=self.eta,
            target=self.target,
            time_sampling=self.time_sampling,
            denoise_trains_embedding=self.denoise_trains_embedding,
            noise_form=self.noise_form,
        )

    def trajectory(self, images: Tensor, generator: torch.Generator | None = None) -> list[Tensor]:
        return self.read_out(images, generator).trajectory

    def read_out(self, images: Tensor, generator: torch.Generator | None = None) -> ReadOut:
        states = self.inference_states(images, generator)
        return ReadOut([self.head(z) for z in states], self.nearest_embedding_scores(states[-1]))

    def inference_states(self, images: Tensor, generator: torch.Generator | None = None) -> list[Tensor]:
        """z_0 … z_1 by the sampler: the DT update on a grid (``ancestral``) or the probability flow."""
        conditioned = ImageConditioned(self.block, images)

        def logits(z: Tensor, t: Tensor) -> Tensor:
            return self.gated(conditioned(z, t))

        weight = self.embedding.weight

        def denoise(z: Tensor, t: Tensor) -> Tensor:
            if self.target == "noise":
                alpha_bar = self.schedule.alpha_bar(t).to(z.dtype)[:, None]
                return embedding_from_noise(z, self.noise(logits(z, t), z, alpha_bar), alpha_bar)
            return convex_denoise(logits(z, t), weight)

        if self.sampler == "ancestral":
            chain = self.schedule.discretize(self.steps).to(images.device)
            grid = torch.linspace(0, 1, self.steps + 1, device=images.device)
            states = dt_chain(
                lambda k, z: denoise(z, grid[k - 1].expand(len(z))),
                chain,
                len(images),
                weight.shape[1],
                device=images.device,
                generator=generator,
            )
        elif self.sampler == "dpm2":
            states = dpm_solver_2m(denoise, self.schedule, self.initial_noise(images, generator), self.steps)
        else:
            z_0 = self.initial_noise(images, generator)
            states = integrate(probability_flow(denoise, self.schedule), z_0, self.steps, self.sampler)
        return states

    def blind_scores(self, images: Tensor, generator: torch.Generator | None = None) -> list[Tensor]:
        """The block at t = 0 with z_0 ~ N(0, I): its logits, or for the noise target the class
        nearest to the û its ε̂ implies."""
        z = self.initial_noise(images, generator)
        t = torch.zeros(len(images), device=images.device)
        output = self.gated(self.block(images, z, t))
        if self.target == "noise":
            alpha_bar = self.schedule.alpha_bar(t).to(z.dtype)[:, None]
            return [self.nearest_embedding_scores(embedding_from_noise(z, self.noise(output, z, alpha_bar), alpha_bar))]
        return [output]

    def gated(self, output: Tensor) -> Tensor:
        """The block's output with the posterior form's residual r̂ (its last d values) gated."""
        if self.residual_gate is None:
            return output
        classes = self.embedding.weight.shape[0]
        return torch.cat([output[..., :classes], self.residual_gate * output[..., classes:]], dim=-1)

    def noise(self, output: Tensor, z: Tensor, alpha_bar: Tensor) -> Tensor:
        return predicted_noise(output, z, self.embedding.weight, alpha_bar, self.noise_form)


def build(config: CTConfig, parts: VariantParts) -> NoPropCT:
    return NoPropCT(config, parts)
