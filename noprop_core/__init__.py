"""noprop: the variational diffusion contract of NoProp (Li, Teh & Pascanu, 2025).

This package is the public API for plugin authors: import from ``noprop_core`` itself, never
from its subpackages, whose layout may change. Names are loaded on first use, so that the
command line can start without importing torch.

Layers, from the bottom: ``diffusion`` (schedules, Gaussian identities, objectives, samplers),
``model`` (blocks, the paper's block, embeddings, heads, the variant contract), ``plugin``
(the table of plugin kinds, config bases, hooks, registry), ``speed`` (the ``[speed]`` section,
stacked blocks), ``recipe`` (schema and loading), ``engine`` (trainer, experiment, data,
evaluation, tracking), ``cli``. A layer imports only the layers below it
(``[tool.importlinter]`` in pyproject.toml, checked by the test suite). The contract kit for plugin tests is
``noprop_core.testing`` (it needs pytest).
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> the module that defines it
_PUBLIC: dict[str, str] = {
    # errors a plugin may raise: one line for the user, exit status 2
    **dict.fromkeys(("NopropError", "RecipeError", "PluginError", "DataUnavailable", "RunInterrupted"), "errors"),
    # registering plugins
    "hookimpl": "plugin.hookspecs",
    **dict.fromkeys(
        (
            "PluginConfig",
            "BackboneConfig",
            "LabelEmbeddingConfig",
            "ScheduleConfig",
            "HeadConfig",
            "VariantConfig",
            "DatasetConfig",
            "TrackerConfig",
            "Inference",
            "InvalidValue",
            "at_least",
            "greater_than",
            "between",
            "one_of",
        ),
        "plugin.config",
    ),  # fmt: skip
    "load_registry": "plugin.manager",
    "Registry": "plugin.registry",
    # the diffusion maths
    **dict.fromkeys(("NoiseSchedule", "DiscreteSchedule", "time_derivative"), "diffusion.schedule"),
    **dict.fromkeys(
        ("sample_marginal", "posterior_step", "kl_to_standard_normal", "embedding_from_noise", "noise_from_embedding"),
        "diffusion.gaussian",
    ),
    **dict.fromkeys(
        (
            "convex_denoise",
            "dt_loss",
            "dt_noisy_inputs",
            "ct_loss",
            "ct_times",
            "fm_loss",
            "predicted_noise",
            "noise_output_dim",
        ),
        "diffusion.objectives",
    ),
    **dict.fromkeys(
        ("PREDICTION_TARGETS", "NOISE_FORMS", "ODE_SOLVERS", "CT_SAMPLERS", "TIME_SAMPLING"), "diffusion.choices"
    ),
    **dict.fromkeys(("dt_chain", "integrate", "probability_flow"), "diffusion.samplers"),
    **dict.fromkeys(
        ("LogNormalNoiseLevels", "grid_blocks", "edm_preconditioning", "edm_weight"), "diffusion.noise_levels"
    ),
    # model parts
    **dict.fromkeys(("Block", "BlockSpec", "ImageConditioned"), "model.blocks"),
    **dict.fromkeys(
        (
            "paper_block",
            "conv_encoder",
            "conv_feature_size",
            "image_label_path",
            "is_image_embedding",
            "ReshapeToImage",
            "sinusoidal_embedding",
            "TIME_EMBEDDING",
        ),
        "model.paper_block",
    ),  # fmt: skip
    **dict.fromkeys(("LabelEmbedding", "TrainableEmbedding", "initial_embedding_weight"), "model.embedding"),
    **dict.fromkeys(("Head", "start_at_nearest_embedding"), "model.heads"),
    **dict.fromkeys(("Variant", "VariantParts", "StackedVariant"), "model.variant"),
    "UPDATE_ORDERS": "model.choices",
    "Dropout": "model.dropout",
    "SingleBlockVariant": "model.single_block",
    "BlockPerUnitVariant": "model.block_units",
    "StackedBlocks": "speed.stacked",
    # data sets and trackers
    "TensorSplits": "model.splits",
    **dict.fromkeys(("standardized_splits", "resolve_data_root"), "engine.data"),
    "Tracker": "plugin.tracker",
    # using a trained run
    **dict.fromkeys(("load_model", "TrainedModel"), "engine.inference"),
    # training and using runs from Python
    **dict.fromkeys(("train", "resume", "load_run", "Run", "SeedGroup"), "engine.api"),
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str):
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'noprop_core' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"noprop_core.{module}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC})
