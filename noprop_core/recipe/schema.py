"""The recipe schema: one experiment as frozen attrs classes.

Plugin sections (``data``, ``model.backbone``, ``model.embedding``, ``model.schedule``,
``model.head``, ``variant``, ``tracker``: ``noprop_core.plugin.kinds.KINDS``) are declared by their
kind's config base and hold the chosen plugin's own config class. ``[speed]`` belongs to
``noprop_core.speed``; the other sections are defined here.
"""

from __future__ import annotations

from typing import Any

import attrs

from noprop_core.plugin.config import (
    CHANGEABLE_ON_RESUME,
    BackboneConfig,
    DatasetConfig,
    HeadConfig,
    InvalidValue,
    LabelEmbeddingConfig,
    ScheduleConfig,
    TrackerConfig,
    VariantConfig,
    at_least,
    between,
    greater_than,
    one_of,
)
from noprop_core.speed.section import SpeedSection


@attrs.frozen(kw_only=True)
class ModelSection:
    backbone: BackboneConfig
    embedding: LabelEmbeddingConfig
    schedule: ScheduleConfig | None = None  # required by variants that use one (VariantConfig.model_parts)
    head: HeadConfig  # absent in a file -> the head kind's default plugin


@attrs.frozen(kw_only=True)
class TrainSection:
    epochs: int = attrs.field(validator=between(1, 1_000_000), metadata=CHANGEABLE_ON_RESUME)
    # At least 2: the paper's blocks use batch norm, which cannot train on one example.
    batch_size: int = attrs.field(default=128, validator=at_least(2))
    optimizer: str = attrs.field(default="adamw", validator=one_of("adamw", "adam"))
    lr: float = attrs.field(default=1e-3, validator=greater_than(0))
    weight_decay: float = attrs.field(default=1e-3, validator=at_least(0))
    # "constant" (the paper) or "cosine": lr decays to 0 over the epochs, stepped once per epoch.
    lr_schedule: str = attrs.field(default="constant", validator=one_of("constant", "cosine"))
    # Linear warm-up of the learning rate over the first N epochs (from lr/N to lr), then
    # lr_schedule over the rest; 0 = none. A run shorter than N epochs only warms up.
    warmup_epochs: int = attrs.field(default=0, validator=at_least(0))
    # Largest gradient norm per unit (and for the shared parameters); 0 = no clipping.
    grad_clip: float = attrs.field(default=0.0, validator=at_least(0))
    # Stop each unit's pass after N minibatches (0 = the whole training set); for quick checks.
    max_batches: int = attrs.field(default=0, validator=at_least(0))


@attrs.frozen(kw_only=True)
class EvalSection:
    batch_size: int = attrs.field(default=1000, validator=at_least(1))
    # Test accuracy every N epochs (and always after the last): inference with 1000 steps can
    # cost more than an epoch of training on small data.
    every: int = attrs.field(default=1, validator=at_least(1))
    # Train accuracy is measured on the first N training examples (0 = all of them):
    # a full pass over a large training set would cost a third of an epoch.
    train_subset: int = attrs.field(default=10_000, validator=at_least(0))
    # Test accuracy on the first N test examples (0 = all of them); for quick checks only.
    test_subset: int = attrs.field(default=0, validator=at_least(0))
    # The final evaluation repeats inference N times with independent noise (the paper: 5);
    # metrics.json keeps every run and reports their mean.
    inference_runs: int = attrs.field(default=1, validator=between(1, 1000))


def seed_list_problem(seeds: list[int]) -> str | None:
    """What is wrong with a seed group's seeds, or None: each seed once, each a valid seed."""
    repeated = sorted({seed for seed in seeds if seeds.count(seed) > 1})
    if repeated:
        return f"seed {', '.join(map(str, repeated))} given twice; each seed trains one model"
    outside = [seed for seed in seeds if not 0 <= seed <= 2**63 - 1]
    if outside:
        return f"expected whole numbers from 0 to 2**63 - 1, got {outside[0]}"
    return None


def distinct_seeds(_instance: object, attribute: attrs.Attribute[Any], value: list[int]) -> None:
    problem = seed_list_problem(value)
    if problem is not None:
        raise InvalidValue(attribute.name, problem)


@attrs.frozen(kw_only=True)
class Recipe:
    seed: int = attrs.field(default=0, validator=between(0, 2**63 - 1))
    # The paper's protocol: one model per seed (`noprop run` writes OUT/seed-<N>/ and OUT/protocol.json).
    seeds: list[int] = attrs.field(factory=list, validator=distinct_seeds)
    device: str = "auto"  # "auto", "cpu", "cuda" or "cuda:N"
    data: DatasetConfig
    model: ModelSection
    variant: VariantConfig
    train: TrainSection
    eval: EvalSection = attrs.field(factory=EvalSection, metadata=CHANGEABLE_ON_RESUME)
    speed: SpeedSection = attrs.field(factory=SpeedSection)
    tracker: TrackerConfig = attrs.field(metadata=CHANGEABLE_ON_RESUME)  # absent in a file: the kind's default


def changeable_on_resume(section: Any, prefix: str = "") -> list[str]:
    """The keys of ``section`` (a recipe, or a section of one) that a resumed run may change,
    from their fields' ``CHANGEABLE_ON_RESUME`` metadata; a section marked whole gives "name."."""
    keys = []
    for field in attrs.fields(type(section)):
        value = getattr(section, field.name)
        if field.metadata.get("changeable_on_resume"):
            keys.append(f"{prefix}{field.name}" + ("." if attrs.has(type(value)) else ""))
        elif attrs.has(type(value)):
            keys += changeable_on_resume(value, f"{prefix}{field.name}.")
    return keys
