"""The public API of noprop_core: every name it exports, and the module that defines it.

This stub is the one table of public names: type checkers and editors read it, and
``noprop_core/__init__.py`` loads each name from it on first use (``lazy_loader.attach_stub``),
so that the command line starts without importing torch.
"""

__version__: str

# errors a plugin may raise: one line for the user, exit status 2
from .diffusion.choices import (
    CT_SAMPLERS as CT_SAMPLERS,
)
from .diffusion.choices import (
    NOISE_FORMS as NOISE_FORMS,
)
from .diffusion.choices import (
    ODE_SOLVERS as ODE_SOLVERS,
)
from .diffusion.choices import (
    PREDICTION_TARGETS as PREDICTION_TARGETS,
)
from .diffusion.choices import (
    TIME_SAMPLING as TIME_SAMPLING,
)
from .diffusion.gaussian import (
    embedding_from_noise as embedding_from_noise,
)
from .diffusion.gaussian import (
    kl_to_standard_normal as kl_to_standard_normal,
)
from .diffusion.gaussian import (
    noise_from_embedding as noise_from_embedding,
)
from .diffusion.gaussian import (
    posterior_step as posterior_step,
)
from .diffusion.gaussian import (
    sample_marginal as sample_marginal,
)
from .diffusion.noise_levels import (
    LogNormalNoiseLevels as LogNormalNoiseLevels,
)
from .diffusion.noise_levels import (
    edm_preconditioning as edm_preconditioning,
)
from .diffusion.noise_levels import (
    edm_weight as edm_weight,
)
from .diffusion.noise_levels import (
    grid_blocks as grid_blocks,
)
from .diffusion.objectives import (
    convex_denoise as convex_denoise,
)
from .diffusion.objectives import (
    ct_loss as ct_loss,
)
from .diffusion.objectives import (
    ct_times as ct_times,
)
from .diffusion.objectives import (
    dt_loss as dt_loss,
)
from .diffusion.objectives import (
    dt_noisy_inputs as dt_noisy_inputs,
)
from .diffusion.objectives import (
    fm_loss as fm_loss,
)
from .diffusion.objectives import (
    noise_output_dim as noise_output_dim,
)
from .diffusion.objectives import (
    predicted_noise as predicted_noise,
)
from .diffusion.samplers import dt_chain as dt_chain
from .diffusion.samplers import integrate as integrate
from .diffusion.samplers import probability_flow as probability_flow
from .diffusion.schedule import (
    DiscreteSchedule as DiscreteSchedule,
)

# the diffusion maths
from .diffusion.schedule import (
    NoiseSchedule as NoiseSchedule,
)
from .diffusion.schedule import (
    time_derivative as time_derivative,
)
from .engine.api import (
    Run as Run,
)
from .engine.api import (
    SeedGroup as SeedGroup,
)
from .engine.api import (
    load_run as load_run,
)
from .engine.api import (
    resume as resume,
)

# training and using runs from Python
from .engine.api import (
    train as train,
)
from .engine.api import (
    train_groups as train_groups,
)
from .engine.trained.inference import TrainedModel as TrainedModel

# using a trained run
from .engine.trained.inference import load_model as load_model
from .engine.training.data import resolve_data_root as resolve_data_root
from .engine.training.data import standardized_splits as standardized_splits
from .errors import (
    REQUEUE_EXIT_CODE as REQUEUE_EXIT_CODE,
)
from .errors import (
    DataUnavailable as DataUnavailable,
)
from .errors import (
    NopropError as NopropError,
)
from .errors import (
    PluginError as PluginError,
)
from .errors import (
    RecipeError as RecipeError,
)
from .errors import (
    RunInterrupted as RunInterrupted,
)
from .errors import (
    RunPreempted as RunPreempted,
)
from .model.block_units import BlockPerUnitVariant as BlockPerUnitVariant

# model parts
from .model.blocks import Block as Block
from .model.blocks import BlockSpec as BlockSpec
from .model.blocks import ImageConditioned as ImageConditioned
from .model.choices import UPDATE_ORDERS as UPDATE_ORDERS
from .model.dropout import Dropout as Dropout
from .model.embedding import (
    LabelEmbedding as LabelEmbedding,
)
from .model.embedding import (
    TrainableEmbedding as TrainableEmbedding,
)
from .model.embedding import (
    initial_embedding_weight as initial_embedding_weight,
)
from .model.heads import Head as Head
from .model.heads import start_at_nearest_embedding as start_at_nearest_embedding
from .model.paper_block import (
    TIME_EMBEDDING as TIME_EMBEDDING,
)
from .model.paper_block import (
    ReshapeToImage as ReshapeToImage,
)
from .model.paper_block import (
    conv_encoder as conv_encoder,
)
from .model.paper_block import (
    conv_feature_size as conv_feature_size,
)
from .model.paper_block import (
    image_label_path as image_label_path,
)
from .model.paper_block import (
    is_image_embedding as is_image_embedding,
)
from .model.paper_block import (
    paper_block as paper_block,
)
from .model.paper_block import (
    sinusoidal_embedding as sinusoidal_embedding,
)
from .model.single_block import SingleBlockVariant as SingleBlockVariant

# data sets and trackers
from .model.splits import TensorSplits as TensorSplits
from .model.variant import StackedVariant as StackedVariant
from .model.variant import Variant as Variant
from .model.variant import VariantParts as VariantParts
from .plugin.config import (
    CHANGEABLE_ON_RESUME as CHANGEABLE_ON_RESUME,
)
from .plugin.config import (
    BackboneConfig as BackboneConfig,
)
from .plugin.config import (
    DatasetConfig as DatasetConfig,
)
from .plugin.config import (
    HeadConfig as HeadConfig,
)
from .plugin.config import (
    Inference as Inference,
)
from .plugin.config import (
    InvalidValue as InvalidValue,
)
from .plugin.config import (
    LabelEmbeddingConfig as LabelEmbeddingConfig,
)
from .plugin.config import (
    LauncherConfig as LauncherConfig,
)
from .plugin.config import (
    PluginConfig as PluginConfig,
)
from .plugin.config import (
    ScheduleConfig as ScheduleConfig,
)
from .plugin.config import (
    TrackerConfig as TrackerConfig,
)
from .plugin.config import (
    VariantConfig as VariantConfig,
)
from .plugin.config import (
    at_least as at_least,
)
from .plugin.config import (
    between as between,
)
from .plugin.config import (
    greater_than as greater_than,
)
from .plugin.config import (
    one_of as one_of,
)

# registering plugins
from .plugin.hookspecs import hookimpl as hookimpl
from .plugin.launcher import (
    Job as Job,
)
from .plugin.launcher import (
    JobOutcome as JobOutcome,
)

# where jobs run
from .plugin.launcher import (
    Launcher as Launcher,
)
from .plugin.launcher import (
    run_job as run_job,
)
from .plugin.launcher import (
    stop_for_requeue as stop_for_requeue,
)
from .plugin.manager import load_registry as load_registry
from .plugin.registry import Registry as Registry
from .plugin.tracker import Tracker as Tracker
from .speed.stacked import StackedBlocks as StackedBlocks
