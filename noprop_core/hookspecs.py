"""The plugin hooks: one per plugin kind.

A plugin is a module (or object) with functions marked ``@hookimpl`` whose names match
the specs below. Each hook receives a ``registry`` for its kind and calls
``registry.add(name, factory, config=ConfigClass)``; nothing is returned. The config
class is a frozen attrs class whose fields are the keys a recipe section may hold
(its ``name`` key selects the plugin). Third-party plugins are normal packages whose
``pyproject.toml`` declares::

    [project.entry-points.noprop]
    my_backbone = "my_package.my_module"

What each kind's factory receives and returns is stated on its hook. Every hook is
called once per plugin, so the registry knows which distribution added which name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from noprop_core.registry import KindRegistry

PROJECT = "noprop"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def noprop_register_backbones(registry: KindRegistry) -> None:
    """Register block networks.

    Factory: ``factory(config, spec: noprop_core.blocks.BlockSpec) -> torch.nn.Module``.
    The module's ``forward(x, z, t=None)`` takes images ``(B, C, H, W)``, noisy label
    embeddings ``(B, d)`` and, when ``spec.time_conditioned``, times ``(B,)`` in [0, 1];
    it returns logits ``(B, spec.num_classes)``.
    """


@hookspec
def noprop_register_label_embeddings(registry: KindRegistry) -> None:
    """Register class embeddings W_Embed.

    Factory: ``factory(config, *, num_classes, image_shape, train_images, train_labels)
    -> noprop_core.embedding.LabelEmbedding``.
    """


@hookspec
def noprop_register_schedules(registry: KindRegistry) -> None:
    """Register noise schedules.

    Factory: ``factory(config) -> noprop_core.schedule.NoiseSchedule``.
    """


@hookspec
def noprop_register_variants(registry: KindRegistry) -> None:
    """Register training variants (NoProp-DT, -CT, -FM, baselines).

    Factory: ``factory(config, parts: noprop_core.variant.VariantParts)
    -> noprop_core.variant.Variant``.
    """


@hookspec
def noprop_register_datasets(registry: KindRegistry) -> None:
    """Register data sets.

    Factory: ``factory(config) -> noprop_core.data.TensorSplits``; the config class
    extends ``noprop_core.config.DatasetConfig`` (keys ``name``, ``root``, ``subset``).
    """


@hookspec
def noprop_register_trackers(registry: KindRegistry) -> None:
    """Register experiment trackers.

    Factory: ``factory(config, *, experiment: str, run_dir: pathlib.Path)
    -> noprop_core.tracking.Tracker``.
    """


KINDS: dict[str, str] = {
    "backbone": "noprop_register_backbones",
    "label_embedding": "noprop_register_label_embeddings",
    "schedule": "noprop_register_schedules",
    "variant": "noprop_register_variants",
    "dataset": "noprop_register_datasets",
    "tracker": "noprop_register_trackers",
}
"""Plugin kind -> the hook that registers plugins of that kind."""
