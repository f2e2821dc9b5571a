"""`cosine`: the fixed cosine schedule of NoProp-DT.

The paper does not print its formula; this is Nichol & Dhariwal's cosine, flipped to NoProp's
time direction (t = 0 noise, t = 1 clean) and scaled so SNR stays finite:

    ᾱ(t) = ᾱ_max · f(1 − t) / f(0),   f(τ) = cos²(π/2 · (τ + s) / (1 + s)).

The cap ``max_alpha_bar`` (default 0.9999, i.e. SNR(1) = 9999) keeps ᾱ < 1. Scaling rather
than clipping keeps ᾱ strictly increasing for any number of steps, so every
SNR(t) − SNR(t−1) is positive and finite. ᾱ(0) = ᾱ_max · f(1)/f(0) ≈ 0 (below 1e-30).
"""

from __future__ import annotations

import attrs

from noprop_core import ScheduleConfig, between, hookimpl


@attrs.frozen(kw_only=True)
class CosineConfig(ScheduleConfig):
    offset: float = attrs.field(default=0.008, validator=between(0.0, 1.0))
    max_alpha_bar: float = attrs.field(default=0.9999, validator=between(0.5, 0.999999))


def build(config: CosineConfig):
    from .schedule import build as implementation  # torch: imported when the plugin is used

    return implementation(config)


@hookimpl
def noprop_register_schedules(registry) -> None:
    registry.add("cosine", build, config=CosineConfig, description="fixed flipped cosine, ᾱ capped below 1")
