"""The plugin hooks, one per plugin kind of ``noprop_core.plugin.kinds.KINDS`` (a test checks
that they match it), written out so that an editor's "go to definition" finds them.

A plugin is a module (or object) with functions marked ``@hookimpl`` whose names are these
hooks. Each receives a ``registry`` for its kind and calls
``registry.add(name, factory, config=ConfigClass)``; nothing is returned. The config class is a
frozen attrs class derived from the kind's config base; its fields are the keys the recipe
section may hold (``name`` selects the plugin). The factory is called as the kind's protocol in
``noprop_core.plugin.kinds`` says. Third-party plugins are normal packages whose
``pyproject.toml`` declares::

    [project.entry-points.noprop]
    my_backbone = "my_package.my_module"
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from noprop_core.plugin.registry import Registry

PROJECT = "noprop"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def noprop_register_variants(registry: Registry) -> None:
    """Register variant plugins (recipe section [variant]): registry.add(name, factory,
    config=<subclass of VariantConfig>); the factory is called as (config, parts) and returns a
    ``Variant``: the training method (NoProp-DT, -CT, -FM, DiffusionBlocks, a baseline)."""


@hookspec
def noprop_register_backbones(registry: Registry) -> None:
    """Register backbone plugins (recipe section [model.backbone]): registry.add(name, factory,
    config=<subclass of BackboneConfig>); the factory is called as (config, spec) and returns a
    block network ``forward(images, z, t=None)`` for the ``BlockSpec``."""


@hookspec
def noprop_register_label_embeddings(registry: Registry) -> None:
    """Register label_embedding plugins (recipe section [model.embedding]): registry.add(name,
    factory, config=<subclass of LabelEmbeddingConfig>); the factory is called as (config, *,
    num_classes, image_shape, train_images, train_labels) and returns a ``LabelEmbedding``
    (W_Embed)."""


@hookspec
def noprop_register_schedules(registry: Registry) -> None:
    """Register schedule plugins (recipe section [model.schedule]): registry.add(name, factory,
    config=<subclass of ScheduleConfig>); the factory is called as (config) and returns a
    ``NoiseSchedule`` ᾱ(t) on [0, 1]."""


@hookspec
def noprop_register_heads(registry: Registry) -> None:
    """Register head plugins (recipe section [model.head]): registry.add(name, factory,
    config=<subclass of HeadConfig>); the factory is called as (config, *, embedding,
    num_classes) and returns a ``Head`` p̂(y | z) giving logits."""


@hookspec
def noprop_register_datasets(registry: Registry) -> None:
    """Register dataset plugins (recipe section [data]): registry.add(name, factory,
    config=<subclass of DatasetConfig>); the factory is called as (config) and returns
    ``TensorSplits`` (or raises ``DataUnavailable``)."""


@hookspec
def noprop_register_trackers(registry: Registry) -> None:
    """Register tracker plugins (recipe section [tracker]): registry.add(name, factory,
    config=<subclass of TrackerConfig>); the factory is called as (config, *, experiment,
    run_dir) and returns a ``Tracker``."""


@hookspec
def noprop_register_launchers(registry: Registry) -> None:
    """Register launcher plugins (section [launcher] of a sweep or launcher file):
    registry.add(name, factory, config=<subclass of LauncherConfig>); the factory is called as
    (config) and returns a ``Launcher`` that runs jobs."""
