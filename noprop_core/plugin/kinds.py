"""The one table of plugin kinds.

Everything that differs between plugin kinds is written here once: the pluggy hook that
registers plugins of the kind (``noprop_core.plugin.hookspecs`` is generated from this table),
the config base class a plugin's config extends, the recipe section that chooses the plugin,
the plugin used when a recipe leaves the section out, and the factory's call signature (a
``Protocol``). The registry, the recipe schema, ``noprop plugins`` and the contract kit
(``noprop_core.testing``) all read this table.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import attrs

from noprop_core.plugin.config import (
    BackboneConfig,
    DatasetConfig,
    HeadConfig,
    LabelEmbeddingConfig,
    LauncherConfig,
    PluginConfig,
    ScheduleConfig,
    TrackerConfig,
    VariantConfig,
)

if TYPE_CHECKING:
    from torch import Tensor, nn

    from noprop_core.diffusion.schedule import NoiseSchedule
    from noprop_core.model.blocks import BlockSpec
    from noprop_core.model.embedding import LabelEmbedding
    from noprop_core.model.heads import Head
    from noprop_core.model.splits import TensorSplits
    from noprop_core.model.variant import Variant, VariantParts
    from noprop_core.plugin.launcher import Launcher
    from noprop_core.plugin.tracker import Tracker


class BackboneFactory(Protocol):
    """A block network. Its ``forward(images, z, t=None)`` takes images (B, C, H, W), noisy label
    embeddings (B, d) and, when ``spec.time_conditioned``, times (B,) in [0, 1]; it returns
    logits (B, spec.num_classes)."""

    def __call__(self, config: BackboneConfig, spec: BlockSpec) -> nn.Module: ...


class LabelEmbeddingFactory(Protocol):
    """The class embeddings W_Embed; the training data is there for data-driven starts."""

    def __call__(
        self,
        config: LabelEmbeddingConfig,
        *,
        num_classes: int,
        image_shape: tuple[int, int, int],
        train_images: Tensor,
        train_labels: Tensor,
    ) -> LabelEmbedding: ...


class ScheduleFactory(Protocol):
    """A noise schedule ᾱ(t) on [0, 1]."""

    def __call__(self, config: ScheduleConfig) -> NoiseSchedule: ...


class HeadFactory(Protocol):
    """The output head p̂_θout(y | z), returning logits; it may read (not own) W_Embed."""

    def __call__(self, config: HeadConfig, *, embedding: LabelEmbedding, num_classes: int) -> Head: ...


class VariantFactory(Protocol):
    """A training variant built from the recipe's other plugins."""

    def __call__(self, config: VariantConfig, parts: VariantParts) -> Variant: ...


class DatasetFactory(Protocol):
    """The data set's splits in memory, standardised."""

    def __call__(self, config: DatasetConfig) -> TensorSplits: ...


class TrackerFactory(Protocol):
    """An experiment tracker for one run."""

    def __call__(self, config: TrackerConfig, *, experiment: str, run_dir: Path) -> Tracker: ...


class LauncherFactory(Protocol):
    """Where `noprop` jobs run: this machine's CPUs or GPUs, a Slurm cluster."""

    def __call__(self, config: LauncherConfig) -> Launcher: ...


@attrs.frozen
class PluginKind:
    name: str  # as `noprop plugins` lists it and the registry files it
    hook: str  # the pluggy hook that registers plugins of this kind
    config_base: type[PluginConfig]
    section: tuple[str, ...]  # the recipe table that chooses the plugin by its `name` key
    factory: type  # a Protocol: how the registry calls the plugin's factory
    default: str | None = None  # the plugin a recipe gets when it leaves the section out
    in_recipe: bool = True  # False: the section lives in other files (a sweep's, a launcher's)

    @property
    def section_key(self) -> str:
        return ".".join(self.section)

    def factory_mismatch(self, factory: object) -> str | None:
        """Why ``factory`` cannot be called as this kind's protocol says, or None when it can."""
        try:
            signature = inspect.signature(factory)  # type: ignore[arg-type]  # not callable: the except
        except (TypeError, ValueError):
            return f"{factory!r} is not callable"
        expected = list(inspect.signature(self.factory.__call__).parameters.values())[1:]  # without self
        positional = [p.name for p in expected if p.kind is p.POSITIONAL_OR_KEYWORD]
        keywords = {p.name: None for p in expected if p.kind is p.KEYWORD_ONLY}
        try:
            signature.bind(*positional, **keywords)
        except TypeError as exc:
            return f"factory{signature} cannot be called as ({self.describe_call()}): {exc}"
        return None

    def describe_call(self) -> str:
        parameters = list(inspect.signature(self.factory.__call__).parameters.values())[1:]
        text, star = [], False
        for parameter in parameters:
            if parameter.kind is parameter.KEYWORD_ONLY and not star:
                text.append("*")
                star = True
            text.append(parameter.name)
        return ", ".join(text)


KINDS: tuple[PluginKind, ...] = (
    PluginKind("variant", "noprop_register_variants", VariantConfig, ("variant",), VariantFactory),
    PluginKind("backbone", "noprop_register_backbones", BackboneConfig, ("model", "backbone"), BackboneFactory),
    PluginKind(
        "label_embedding",
        "noprop_register_label_embeddings",
        LabelEmbeddingConfig,
        ("model", "embedding"),
        LabelEmbeddingFactory,
    ),
    PluginKind("schedule", "noprop_register_schedules", ScheduleConfig, ("model", "schedule"), ScheduleFactory),
    PluginKind("head", "noprop_register_heads", HeadConfig, ("model", "head"), HeadFactory, default="softmax"),
    PluginKind("dataset", "noprop_register_datasets", DatasetConfig, ("data",), DatasetFactory),
    PluginKind("tracker", "noprop_register_trackers", TrackerConfig, ("tracker",), TrackerFactory, default="aim"),
    PluginKind(
        "launcher",
        "noprop_register_launchers",
        LauncherConfig,
        ("launcher",),
        LauncherFactory,
        default="local",
        in_recipe=False,
    ),
)
RECIPE_KINDS: tuple[PluginKind, ...] = tuple(kind for kind in KINDS if kind.in_recipe)
BY_NAME: dict[str, PluginKind] = {kind.name: kind for kind in KINDS}
BY_CONFIG_BASE: dict[type[PluginConfig], PluginKind] = {kind.config_base: kind for kind in KINDS}
