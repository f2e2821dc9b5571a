"""The [speed] options (noprop_core.speed.plan), exercised on CPU."""

from __future__ import annotations

import pytest
import torch

from conftest import REPO
from noprop_core.engine.runs.fresh import start_run as run
from noprop_core.errors import NopropError

RECIPE = REPO / "recipes" / "digits_dt.toml"
# On the CPU wherever the tests run: CUDA kernels are not deterministic, and Adam's first steps
# (≈ lr·sign(g)) magnify that past these tolerances.
SHORT = [
    "train.epochs=2",
    "data.subset=300",
    "variant.timesteps=3",
    "eval.train_subset=100",
    "tracker.name=none",
    "device=cpu",
]


@pytest.fixture(scope="module")
def baseline(registry, tmp_path_factory):
    return run(RECIPE, registry, overrides=SHORT, out_dir=tmp_path_factory.mktemp("plain") / "run")[1]


def block_losses(metrics) -> list[float]:
    return [terms["denoise"] for record in metrics["history"] for terms in record["loss_per_unit"].values()]


@pytest.mark.slow
def test_channels_last_trains_the_same_model(registry, baseline, tmp_path):
    metrics = run(RECIPE, registry, overrides=[*SHORT, "speed.channels_last=true"], out_dir=tmp_path / "run")[1]
    # NHWC kernels round differently, and Adam's first steps (≈ lr·sign(g)) magnify that over
    # the epoch; a layout mistake would change the losses entirely.
    assert block_losses(metrics) == pytest.approx(block_losses(baseline), rel=0.05)


@pytest.mark.slow
def test_bf16_autocast_changes_the_arithmetic_not_the_result(registry, baseline, tmp_path):
    metrics = run(RECIPE, registry, overrides=[*SHORT, "speed.autocast=bf16"], out_dir=tmp_path / "run")[1]
    assert block_losses(metrics) != block_losses(baseline)  # bfloat16 really was used
    assert block_losses(metrics) == pytest.approx(block_losses(baseline), rel=0.1)
    assert all(isinstance(v, float) for v in metrics["history"][0]["loss"].values())


@pytest.mark.slow
def test_compiled_blocks_train_the_same_model_and_keep_their_parameter_names(registry, baseline, tmp_path):
    # The "eager" backend captures each block with torch.compile's graph tracer without
    # generating kernels: the integration is exercised in seconds rather than minutes.
    run_dir, metrics = run(RECIPE, registry, overrides=[*SHORT, "speed.compile=eager"], out_dir=tmp_path / "run")
    assert block_losses(metrics) == pytest.approx(block_losses(baseline), rel=1e-4)
    state = torch.load(run_dir / "checkpoint.pt", weights_only=False)["model"]
    assert not any("_orig_mod" in key for key in state)


def test_cuda_graphs_on_cpu_is_one_clear_error(registry, tmp_path):
    with pytest.raises(NopropError, match="speed.compile: 'cudagraphs' needs a CUDA device, the run is on cpu"):
        run(RECIPE, registry, overrides=[*SHORT, "speed.compile=cudagraphs", "device=cpu"], out_dir=tmp_path / "run")


@pytest.mark.slow
@pytest.mark.parametrize("option", ["speed.channels_last=true", "speed.autocast=bf16"])
def test_fused_blocks_take_the_speed_options_too(registry, tmp_path, option):
    # The fused pass runs the conv path as grouped convolutions on stacked weights: the options
    # change layouts and arithmetic under it, and it must still train the same model.
    fused = [*SHORT, "variant.order=simultaneous", "variant.fused=true"]
    plain = run(RECIPE, registry, overrides=fused, out_dir=tmp_path / "plain")[1]
    metrics = run(RECIPE, registry, overrides=[*fused, option], out_dir=tmp_path / "run")[1]
    assert block_losses(metrics) == pytest.approx(block_losses(plain), rel=0.1)
    first, second = (record["loss"]["denoise"] for record in metrics["history"])
    assert second < first
