"""The public API of noprop_core: every name it exports, and the module that defines it.

This stub is the one table of public names: type checkers and editors read it, and
``noprop_core/__init__.py`` loads each name from it on first use (``lazy_loader.attach_stub``),
so that the command line starts without importing torch.
"""

__version__: str

# errors a plugin may raise: one line for the user, exit status 2
from .errors import (
    NopropError as NopropError,
    RecipeError as RecipeError,
    PluginError as PluginError,
    DataUnavailable as DataUnavailable,
    RunInterrupted as RunInterrupted,
    RunPreempted as RunPreempted,
    REQUEUE_EXIT_CODE as REQUEUE_EXIT_CODE,
)

# registering plugins
from .plugin.hookspecs import hookimpl as hookimpl
from .plugin.config import (
    PluginConfig as PluginConfig,
    BackboneConfig as BackboneConfig,
    LabelEmbeddingConfig as LabelEmbeddingConfig,
    ScheduleConfig as ScheduleConfig,
    HeadConfig as HeadConfig,
    VariantConfig as VariantConfig,
    DatasetConfig as DatasetConfig,
    TrackerConfig as TrackerConfig,
    LauncherConfig as LauncherConfig,
    Inference as Inference,
    InvalidValue as InvalidValue,
    at_least as at_least,
    greater_than as greater_than,
    between as between,
    one_of as one_of,
)

from .plugin.manager import load_registry as load_registry
from .plugin.registry import Registry as Registry

# the diffusion maths
from .diffusion.schedule import (
    NoiseSchedule as NoiseSchedule,
    DiscreteSchedule as DiscreteSchedule,
    time_derivative as time_derivative,
)
from .diffusion.gaussian import (
    sample_marginal as sample_marginal,
    posterior_step as posterior_step,
    kl_to_standard_normal as kl_to_standard_normal,
    embedding_from_noise as embedding_from_noise,
    noise_from_embedding as noise_from_embedding,
)
from .diffusion.objectives import (
    convex_denoise as convex_denoise,
    dt_loss as dt_loss,
    dt_noisy_inputs as dt_noisy_inputs,
    ct_loss as ct_loss,
    ct_times as ct_times,
    fm_loss as fm_loss,
    predicted_noise as predicted_noise,
    noise_output_dim as noise_output_dim,
)
from .diffusion.choices import (
    PREDICTION_TARGETS as PREDICTION_TARGETS,
    NOISE_FORMS as NOISE_FORMS,
    ODE_SOLVERS as ODE_SOLVERS,
    CT_SAMPLERS as CT_SAMPLERS,
    TIME_SAMPLING as TIME_SAMPLING,
)
from .diffusion.samplers import dt_chain as dt_chain, integrate as integrate, probability_flow as probability_flow
from .diffusion.noise_levels import (
    LogNormalNoiseLevels as LogNormalNoiseLevels,
    grid_blocks as grid_blocks,
    edm_preconditioning as edm_preconditioning,
    edm_weight as edm_weight,
)

# model parts
from .model.blocks import Block as Block, BlockSpec as BlockSpec, ImageConditioned as ImageConditioned
from .model.paper_block import (
    paper_block as paper_block,
    conv_encoder as conv_encoder,
    conv_feature_size as conv_feature_size,
    image_label_path as image_label_path,
    is_image_embedding as is_image_embedding,
    ReshapeToImage as ReshapeToImage,
    sinusoidal_embedding as sinusoidal_embedding,
    TIME_EMBEDDING as TIME_EMBEDDING,
)

from .model.embedding import (
    LabelEmbedding as LabelEmbedding,
    TrainableEmbedding as TrainableEmbedding,
    initial_embedding_weight as initial_embedding_weight,
)
from .model.heads import Head as Head, start_at_nearest_embedding as start_at_nearest_embedding
from .model.variant import Variant as Variant, VariantParts as VariantParts, StackedVariant as StackedVariant
from .model.choices import UPDATE_ORDERS as UPDATE_ORDERS
from .model.dropout import Dropout as Dropout
from .model.single_block import SingleBlockVariant as SingleBlockVariant
from .model.block_units import BlockPerUnitVariant as BlockPerUnitVariant
from .speed.stacked import StackedBlocks as StackedBlocks

# data sets and trackers
from .model.splits import TensorSplits as TensorSplits
from .engine.training.data import standardized_splits as standardized_splits, resolve_data_root as resolve_data_root
from .plugin.tracker import Tracker as Tracker

# where jobs run
from .plugin.launcher import (
    Launcher as Launcher,
    Job as Job,
    JobOutcome as JobOutcome,
    run_job as run_job,
    stop_for_requeue as stop_for_requeue,
)

# using a trained run
from .engine.trained.inference import load_model as load_model, TrainedModel as TrainedModel

# training and using runs from Python
from .engine.api import (
    train as train,
    train_groups as train_groups,
    resume as resume,
    load_run as load_run,
    Run as Run,
    SeedGroup as SeedGroup,
)
