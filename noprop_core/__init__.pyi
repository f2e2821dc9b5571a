"""The public API of noprop_core: every name it exports, and the module that defines it.

This stub is the one table of public names: type checkers and editors read it, and
``noprop_core/__init__.py`` loads each name from it on first use (``lazy_loader.attach_stub``),
so that the command line starts without importing torch.
"""

__version__: str

# errors a plugin may raise: one line for the user, exit status 2
from .errors import (
    REQUEUE_EXIT_CODE as REQUEUE_EXIT_CODE,
    DataUnavailable as DataUnavailable,
    NopropError as NopropError,
    PluginError as PluginError,
    RecipeError as RecipeError,
    RunInterrupted as RunInterrupted,
    RunPreempted as RunPreempted,
)

# registering plugins: the hook marker, config bases and validators, the registry
from .plugin.hookspecs import (
    hookimpl as hookimpl,
)
from .plugin.config import (
    CHANGEABLE_ON_RESUME as CHANGEABLE_ON_RESUME,
    BackboneConfig as BackboneConfig,
    DatasetConfig as DatasetConfig,
    HeadConfig as HeadConfig,
    Inference as Inference,
    InvalidValue as InvalidValue,
    LabelEmbeddingConfig as LabelEmbeddingConfig,
    LauncherConfig as LauncherConfig,
    head_init_field as head_init_field,
    PluginConfig as PluginConfig,
    ScheduleConfig as ScheduleConfig,
    TrackerConfig as TrackerConfig,
    VariantConfig as VariantConfig,
    at_least as at_least,
    between as between,
    greater_than as greater_than,
    one_of as one_of,
)
from .plugin.manager import (
    load_registry as load_registry,
)
from .plugin.registry import (
    Registry as Registry,
)

# the diffusion maths
from .diffusion.schedule import (
    DiscreteSchedule as DiscreteSchedule,
    NoiseSchedule as NoiseSchedule,
    time_derivative as time_derivative,
)
from .diffusion.gaussian import (
    embedding_from_noise as embedding_from_noise,
    kl_to_standard_normal as kl_to_standard_normal,
    noise_from_embedding as noise_from_embedding,
    posterior_step as posterior_step,
    sample_marginal as sample_marginal,
)
from .diffusion.objectives import (
    convex_denoise as convex_denoise,
    ct_loss as ct_loss,
    ct_times as ct_times,
    dt_loss as dt_loss,
    dt_noisy_inputs as dt_noisy_inputs,
    fm_loss as fm_loss,
    noise_output_dim as noise_output_dim,
    predicted_noise as predicted_noise,
)
from .diffusion.choices import (
    CT_SAMPLERS as CT_SAMPLERS,
    NOISE_FORMS as NOISE_FORMS,
    ODE_SOLVERS as ODE_SOLVERS,
    PREDICTION_TARGETS as PREDICTION_TARGETS,
    TIME_SAMPLING as TIME_SAMPLING,
    WEIGHTINGS as WEIGHTINGS,
)
from .diffusion.samplers import (
    adaptive as adaptive,
    dpm_solver_2m as dpm_solver_2m,
    dt_chain as dt_chain,
    integrate as integrate,
    probability_flow as probability_flow,
)
from .diffusion.noise_levels import (
    LogNormalNoiseLevels as LogNormalNoiseLevels,
    edm_preconditioning as edm_preconditioning,
    edm_weight as edm_weight,
    edm_weighted as edm_weighted,
    grid_blocks as grid_blocks,
)

# model parts: blocks, the paper's block, σ-conditioning, embeddings, heads, the variant contract
from .model.blocks import (
    SharedParts as SharedParts,
    refer_to as refer_to,
    Block as Block,
    BlockSpec as BlockSpec,
    ImageConditioned as ImageConditioned,
)
from .model.paper_block import (
    TIME_EMBEDDING as TIME_EMBEDDING,
    TIME_SCALE as TIME_SCALE,
    ReshapeToImage as ReshapeToImage,
    conv_encoder as conv_encoder,
    conv_feature_size as conv_feature_size,
    image_label_path as image_label_path,
    is_image_embedding as is_image_embedding,
    paper_block as paper_block,
    sinusoidal_embedding as sinusoidal_embedding,
)
from .model.adaln import (
    HEAD_CONDITIONING as HEAD_CONDITIONING,
    AdaLNZero as AdaLNZero,
    NoiseModulation as NoiseModulation,
    TimeEmbedder as TimeEmbedder,
    modulate as modulate,
    timestep_sinusoid as timestep_sinusoid,
)
from .model.embedding import (
    LabelEmbedding as LabelEmbedding,
    TrainableEmbedding as TrainableEmbedding,
    initial_embedding_weight as initial_embedding_weight,
)
from .model.heads import (
    Head as Head,
    nearest_embedding_scores as nearest_embedding_scores,
    start_head as start_head,
    start_at_nearest_embedding as start_at_nearest_embedding,
)
from .model.variant import (
    ReadOut as ReadOut,
    StackedVariant as StackedVariant,
    Variant as Variant,
    VariantParts as VariantParts,
)
from .model.choices import (
    HEAD_INITS as HEAD_INITS,
    UPDATE_ORDERS as UPDATE_ORDERS,
)
from .model.dropout import (
    Dropout as Dropout,
)
from .model.single_block import (
    SingleBlockVariant as SingleBlockVariant,
)
from .model.block_units import (
    BlockPerUnitVariant as BlockPerUnitVariant,
)
from .speed.threads import (
    sharing_cpus as sharing_cpus,
)
from .speed.stacked_variant import (
    StackedBlockVariant as StackedBlockVariant,
)
from .speed.stacked import (
    StackedBlocks as StackedBlocks,
)

# data sets and trackers
from .model.splits import (
    TensorSplits as TensorSplits,
)
from .engine.training.data import (
    resolve_data_root as resolve_data_root,
    standardized_splits as standardized_splits,
)
from .plugin.tracker import (
    Tracker as Tracker,
)

# where jobs run
from .plugin.launcher import (
    Job as Job,
    JobOutcome as JobOutcome,
    Launcher as Launcher,
    run_job as run_job,
    stop_for_requeue as stop_for_requeue,
)

# using a trained run
from .engine.trained.inference import (
    TrainedModel as TrainedModel,
    load_model as load_model,
)

# training and using runs from Python
from .engine.api import (
    Report as Report,
    Run as Run,
    SeedGroup as SeedGroup,
    load_recipe as load_recipe,
    load_run as load_run,
    report as report,
    resume as resume,
    sweep as sweep,
    train as train,
    train_groups as train_groups,
)
from .engine.sweep.driver import (
    SweepResult as SweepResult,
)
from .recipe.schema import (
    Recipe as Recipe,
)
