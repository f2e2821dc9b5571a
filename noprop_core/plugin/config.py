"""Config building blocks of plugins: a base class per plugin kind, and value validators.

Every recipe section is a frozen attrs class. Plugin sections carry a ``name`` that selects the
plugin; the plugin's own config class (a subclass of its kind's base below) defines the other
keys. Validators raise ``InvalidValue``, which the recipe loader reports as ``file: key: message``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import attrs

from noprop_core.model.choices import HEAD_INITS


@attrs.frozen(kw_only=True)
class PluginConfig:
    """Base of every plugin section: ``name`` picks the plugin registered under that name."""

    name: str

    def display_name(self) -> str:
        """How listings and reports (``noprop recipes``, ``noprop report``) name this component
        with these settings; the default: its plugin name."""
        return self.name

    def paper_label(self) -> str | None:
        """How the published tables noprop compares with (``noprop_core.engine.report.paper``) name this
        component with these settings, e.g. "NoProp-DT", "dim=20", "CIFAR-10"; None (the default)
        where they ran nothing like it. A plugin declares it; the core never reads plugin names."""
        return None


@attrs.frozen(kw_only=True)
class BackboneConfig(PluginConfig):
    pass


@attrs.frozen(kw_only=True)
class LabelEmbeddingConfig(PluginConfig):
    pass


@attrs.frozen(kw_only=True)
class ScheduleConfig(PluginConfig):
    pass


@attrs.frozen(kw_only=True)
class HeadConfig(PluginConfig):
    pass


@attrs.frozen
class Inference:
    """How a variant infers, as its recipe section says: what ``noprop eval`` reports and may
    change, and what a smoke run shortens.

    ``steps_key`` / ``sampler_key`` name the recipe keys (in ``[variant]``) that hold the
    number of inference steps and the sampler; None where the variant cannot change them
    (NoProp-DT's steps are its blocks). ``training_steps`` / ``training_sampler``: what the
    evaluations during training use instead (a faster setting; None: the same), through
    ``Variant.set_inference``; the final evaluation, ``noprop eval`` and ``predict`` use
    ``steps`` and ``sampler``."""

    steps: int | None = None
    sampler: str | None = None
    steps_key: str | None = None
    sampler_key: str | None = None
    samplers: tuple[str, ...] = ()
    training_steps: int | None = None
    training_sampler: str | None = None

    @property
    def faster_during_training(self) -> bool:
        changed = (self.training_steps, self.steps), (self.training_sampler, self.sampler)
        return any(during is not None and during != final for during, final in changed)


MODEL_PARTS = frozenset({"backbone", "label_embedding", "schedule", "head"})


@attrs.frozen(kw_only=True)
class VariantConfig(PluginConfig):
    def model_parts(self) -> frozenset[str]:
        """The ``[model]`` sections this variant builds from: a recipe must give each of them
        (or leave it to its kind's default) and may leave out the others. Default: all of them."""
        return MODEL_PARTS

    def inference(self) -> Inference:
        """The variant's inference options; the default: none that can be changed."""
        return Inference()

    def resolved_for(self, device_type: str) -> VariantConfig:
        """This config with choices left to the device made (e.g. ``order = "auto"``); the
        engine builds the variant from it. The default: nothing left open."""
        return self

    def faster_path(self, device_type: str) -> str | None:
        """A one-line hint when a faster, equally faithful way to train this config exists on
        this kind of device (the run prints it); None when there is none."""
        return None


def head_init_field(default: str = "embedding") -> Any:
    """The ``head_init`` key of a variant whose head reads an embedding-space state: how the head
    starts (``HEAD_INITS``)."""
    return attrs.field(default=default, validator=one_of(*HEAD_INITS))


@attrs.frozen(kw_only=True)
class TrackerConfig(PluginConfig):
    # A tracker that records nothing needs no child process to isolate it from training.
    records_nothing: ClassVar[bool] = False


class InvalidValue(ValueError):
    """A value that is the right type but not acceptable; ``field`` is the key it belongs to."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


# An attrs validator: (instance, attribute, value) -> None, raising InvalidValue.
Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]


def _check(predicate: Callable[[Any], bool], expectation: str) -> Validator:
    def validate(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not predicate(value):
            raise InvalidValue(attribute.name, f"expected {expectation}, got {value!r}")

    return validate


def at_least(bound: float) -> Validator:
    return _check(lambda v: v >= bound, f"a number >= {bound}")


def greater_than(bound: float) -> Validator:
    return _check(lambda v: v > bound, f"a number > {bound}")


def between(low: float, high: float) -> Validator:
    return _check(lambda v: low <= v <= high, f"a number in [{low}, {high}]")


def one_of(*choices: object) -> Validator:
    return _check(lambda v: v in choices, "one of " + ", ".join(repr(c) for c in choices))


def each_one_of(*choices: str) -> Validator:
    """A list whose every item is one of ``choices``, none twice."""
    return _check(
        lambda v: all(item in choices for item in v) and len(set(v)) == len(v),
        "a list of distinct names from " + ", ".join(repr(c) for c in choices),
    )


# Field metadata: a resumed run may change this key (on a section, every key in it): how long it
# trains, how it is evaluated and tracked, where its data lives and how it is read. Every other
# key shapes the model, the data or the optimizer state.
CHANGEABLE_ON_RESUME = {"changeable_on_resume": True}


@attrs.frozen(kw_only=True)
class DatasetConfig(PluginConfig):
    """Keys every dataset section has. ``root`` defaults to $NOPROP_DATA, then ./data."""

    root: str | None = attrs.field(default=None, metadata=CHANGEABLE_ON_RESUME)
    subset: int = attrs.field(default=0, validator=at_least(0))  # first N training examples; 0 = all
    # Where the splits live during training: "device" (batched by indexing on the training
    # device), "host" (kept in CPU memory, minibatches through a DataLoader), or "auto": the
    # device when they fit in half of its free memory (noprop_core.engine.training.data.resolve_placement).
    placement: str = attrs.field(default="auto", validator=one_of("auto", "device", "host"))
    # DataLoader processes ("host" only)
    workers: int = attrs.field(default=0, validator=at_least(0), metadata=CHANGEABLE_ON_RESUME)
    # Training-time augmentation, in this order, each image drawn on its own (noprop_core.engine.training.augment):
    # "hflip" (horizontal flip, p = 0.5), "crop" (random crop after 4-pixel zero padding),
    # "randaugment" (RandAugment, 2 operations of magnitude 9). Evaluation never augments.
    augment: list[str] = attrs.field(factory=list, validator=each_one_of("hflip", "crop", "randaugment"))


@attrs.frozen(kw_only=True)
class LauncherConfig(PluginConfig):
    """Keys every launcher section has. ``[launcher]`` lives in a sweep file or a launcher file
    (``--launcher FILE``), never in a recipe: where a run goes does not change what it computes."""

    workers: int = attrs.field(default=1, validator=at_least(1))  # jobs at once; a sweep starts this many workers
    max_requeues: int = attrs.field(default=3, validator=at_least(0))  # starts again of a preempted job
