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
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# public name -> the module that defines it
_PUBLIC: dict[str, str] = {
    # errors a plugin may raise: one line for the user, exit status 2
    **dict.fromkeys(
        (
            "NopropError",
            "RecipeError",
            "PluginError",
            "DataUnavailable",
            "RunInterrupted",
            "RunPreempted",
            "REQUEUE_EXIT_CODE",
        ),
        "errors",
    ),
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
            "LauncherConfig",
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
    # where jobs run
    **dict.fromkeys(("Launcher", "Job", "JobOutcome", "run_job", "stop_for_requeue"), "plugin.launcher"),
    # using a trained run
    **dict.fromkeys(("load_model", "TrainedModel"), "engine.inference"),
    # training and using runs from Python
    **dict.fromkeys(("train", "train_groups", "resume", "load_run", "Run", "SeedGroup"), "engine.api"),
}

if TYPE_CHECKING:  # what the lazy names are, for type checkers
    from noprop_core.diffusion.choices import CT_SAMPLERS as CT_SAMPLERS
    from noprop_core.diffusion.choices import NOISE_FORMS as NOISE_FORMS
    from noprop_core.diffusion.choices import ODE_SOLVERS as ODE_SOLVERS
    from noprop_core.diffusion.choices import PREDICTION_TARGETS as PREDICTION_TARGETS
    from noprop_core.diffusion.choices import TIME_SAMPLING as TIME_SAMPLING
    from noprop_core.diffusion.gaussian import embedding_from_noise as embedding_from_noise
    from noprop_core.diffusion.gaussian import kl_to_standard_normal as kl_to_standard_normal
    from noprop_core.diffusion.gaussian import noise_from_embedding as noise_from_embedding
    from noprop_core.diffusion.gaussian import posterior_step as posterior_step
    from noprop_core.diffusion.gaussian import sample_marginal as sample_marginal
    from noprop_core.diffusion.noise_levels import LogNormalNoiseLevels as LogNormalNoiseLevels
    from noprop_core.diffusion.noise_levels import edm_preconditioning as edm_preconditioning
    from noprop_core.diffusion.noise_levels import edm_weight as edm_weight
    from noprop_core.diffusion.noise_levels import grid_blocks as grid_blocks
    from noprop_core.diffusion.objectives import convex_denoise as convex_denoise
    from noprop_core.diffusion.objectives import ct_loss as ct_loss
    from noprop_core.diffusion.objectives import ct_times as ct_times
    from noprop_core.diffusion.objectives import dt_loss as dt_loss
    from noprop_core.diffusion.objectives import dt_noisy_inputs as dt_noisy_inputs
    from noprop_core.diffusion.objectives import fm_loss as fm_loss
    from noprop_core.diffusion.objectives import noise_output_dim as noise_output_dim
    from noprop_core.diffusion.objectives import predicted_noise as predicted_noise
    from noprop_core.diffusion.samplers import dt_chain as dt_chain
    from noprop_core.diffusion.samplers import integrate as integrate
    from noprop_core.diffusion.samplers import probability_flow as probability_flow
    from noprop_core.diffusion.schedule import DiscreteSchedule as DiscreteSchedule
    from noprop_core.diffusion.schedule import NoiseSchedule as NoiseSchedule
    from noprop_core.diffusion.schedule import time_derivative as time_derivative
    from noprop_core.engine.api import Run as Run
    from noprop_core.engine.api import SeedGroup as SeedGroup
    from noprop_core.engine.api import load_run as load_run
    from noprop_core.engine.api import resume as resume
    from noprop_core.engine.api import train as train
    from noprop_core.engine.api import train_groups as train_groups
    from noprop_core.engine.data import resolve_data_root as resolve_data_root
    from noprop_core.engine.data import standardized_splits as standardized_splits
    from noprop_core.engine.inference import TrainedModel as TrainedModel
    from noprop_core.engine.inference import load_model as load_model
    from noprop_core.errors import REQUEUE_EXIT_CODE as REQUEUE_EXIT_CODE
    from noprop_core.errors import DataUnavailable as DataUnavailable
    from noprop_core.errors import NopropError as NopropError
    from noprop_core.errors import PluginError as PluginError
    from noprop_core.errors import RecipeError as RecipeError
    from noprop_core.errors import RunInterrupted as RunInterrupted
    from noprop_core.errors import RunPreempted as RunPreempted
    from noprop_core.model.block_units import BlockPerUnitVariant as BlockPerUnitVariant
    from noprop_core.model.blocks import Block as Block
    from noprop_core.model.blocks import BlockSpec as BlockSpec
    from noprop_core.model.blocks import ImageConditioned as ImageConditioned
    from noprop_core.model.choices import UPDATE_ORDERS as UPDATE_ORDERS
    from noprop_core.model.dropout import Dropout as Dropout
    from noprop_core.model.embedding import LabelEmbedding as LabelEmbedding
    from noprop_core.model.embedding import TrainableEmbedding as TrainableEmbedding
    from noprop_core.model.embedding import initial_embedding_weight as initial_embedding_weight
    from noprop_core.model.heads import Head as Head
    from noprop_core.model.heads import start_at_nearest_embedding as start_at_nearest_embedding
    from noprop_core.model.paper_block import TIME_EMBEDDING as TIME_EMBEDDING
    from noprop_core.model.paper_block import ReshapeToImage as ReshapeToImage
    from noprop_core.model.paper_block import conv_encoder as conv_encoder
    from noprop_core.model.paper_block import conv_feature_size as conv_feature_size
    from noprop_core.model.paper_block import image_label_path as image_label_path
    from noprop_core.model.paper_block import is_image_embedding as is_image_embedding
    from noprop_core.model.paper_block import paper_block as paper_block
    from noprop_core.model.paper_block import sinusoidal_embedding as sinusoidal_embedding
    from noprop_core.model.single_block import SingleBlockVariant as SingleBlockVariant
    from noprop_core.model.splits import TensorSplits as TensorSplits
    from noprop_core.model.variant import StackedVariant as StackedVariant
    from noprop_core.model.variant import Variant as Variant
    from noprop_core.model.variant import VariantParts as VariantParts
    from noprop_core.plugin.config import BackboneConfig as BackboneConfig
    from noprop_core.plugin.config import DatasetConfig as DatasetConfig
    from noprop_core.plugin.config import HeadConfig as HeadConfig
    from noprop_core.plugin.config import Inference as Inference
    from noprop_core.plugin.config import InvalidValue as InvalidValue
    from noprop_core.plugin.config import LabelEmbeddingConfig as LabelEmbeddingConfig
    from noprop_core.plugin.config import LauncherConfig as LauncherConfig
    from noprop_core.plugin.config import PluginConfig as PluginConfig
    from noprop_core.plugin.config import ScheduleConfig as ScheduleConfig
    from noprop_core.plugin.config import TrackerConfig as TrackerConfig
    from noprop_core.plugin.config import VariantConfig as VariantConfig
    from noprop_core.plugin.config import at_least as at_least
    from noprop_core.plugin.config import between as between
    from noprop_core.plugin.config import greater_than as greater_than
    from noprop_core.plugin.config import one_of as one_of
    from noprop_core.plugin.hookspecs import hookimpl as hookimpl
    from noprop_core.plugin.launcher import Job as Job
    from noprop_core.plugin.launcher import JobOutcome as JobOutcome
    from noprop_core.plugin.launcher import Launcher as Launcher
    from noprop_core.plugin.launcher import run_job as run_job
    from noprop_core.plugin.launcher import stop_for_requeue as stop_for_requeue
    from noprop_core.plugin.manager import load_registry as load_registry
    from noprop_core.plugin.registry import Registry as Registry
    from noprop_core.plugin.tracker import Tracker as Tracker
    from noprop_core.speed.stacked import StackedBlocks as StackedBlocks

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> object:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'noprop_core' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"noprop_core.{module}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC})
