"""speed.cuda_graph: the fused update recorded as one CUDA graph (noprop_core.speed.cuda_graph).

The checks of the graph itself need a GPU and are skipped without one (CI has none); they ran
on an H100 (see docs/speed.md). The refusals are checked everywhere.
"""

from __future__ import annotations

import pytest
import torch

from conftest import REPO
from noprop_core.engine.runs.fresh import start_run as run
from noprop_core.engine.training.experiment import build_experiment
from noprop_core.engine.training.trainer import Trainer
from noprop_core.errors import NopropError
from noprop_core.recipe.loading import load_recipe
from noprop_core.speed.cuda_graph import WARMUP_STEPS

RECIPE = REPO / "recipes" / "digits_dt.toml"
SHORT = ["train.epochs=3", "data.subset=300", "variant.timesteps=3", "eval.train_subset=100", "tracker.name=none"]
FUSED = ["variant.order=simultaneous", "variant.fused=true"]
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="records a CUDA graph: needs a CUDA device")


def test_cuda_graph_on_cpu_is_one_clear_error(registry, tmp_path):
    with pytest.raises(NopropError, match=r"^speed.cuda_graph: needs a CUDA device, the run is on cpu$"):
        run(RECIPE, registry, overrides=[*SHORT, *FUSED, "speed.cuda_graph=true", "device=cpu"], out_dir=tmp_path / "r")


@needs_cuda
def test_cuda_graph_needs_the_fused_update(registry, tmp_path):
    with pytest.raises(NopropError, match="speed.cuda_graph: records the stacked update of all blocks"):
        run(RECIPE, registry, overrides=[*SHORT, "speed.cuda_graph=true", "device=cuda"], out_dir=tmp_path / "r")


def cuda_trainer(registry, cuda_graph: bool) -> Trainer:
    overrides = [*SHORT, *FUSED, "device=cuda", f"speed.cuda_graph={str(cuda_graph).lower()}"]
    return Trainer(build_experiment(load_recipe(RECIPE, registry, overrides), registry))


@torch.no_grad()
def copy_state(source: Trainer, target: Trainer) -> None:
    """Parameters, batch-norm statistics and Adam's moments of ``source`` copied into ``target``
    in place (a recorded graph keeps pointing at the tensors it was recorded with)."""
    for name, value in target.variant.state_dict().items():
        value.copy_(source.variant.state_dict()[name])
    for source_optimizer, target_optimizer in zip(source.optimizers(), target.optimizers(), strict=True):
        for source_parameter, target_parameter in zip(
            source_optimizer.param_groups[0]["params"], target_optimizer.param_groups[0]["params"], strict=True
        ):
            for key, value in target_optimizer.state[target_parameter].items():
                value.copy_(source_optimizer.state[source_parameter][key])


def relative_difference(graphed: list[torch.Tensor], eager: list[torch.Tensor]) -> float:
    graphed_flat, eager_flat = torch.cat([t.flatten() for t in graphed]), torch.cat([t.flatten() for t in eager])
    return ((graphed_flat - eager_flat).norm() / eager_flat.norm()).item()


@needs_cuda
def test_a_replayed_update_equals_the_eager_update_from_the_same_state(registry):
    # Before every step the eager trainer takes the graphed trainer's state, and the CUDA
    # generator is seeded alike: a replay draws the same noise and dropout masks as an eager step.
    # Compared: losses, gradients and Adam's first moments (linear in the gradients), per block,
    # relative to their size. Not the parameters: Adam divides by √v, which magnifies the float
    # rounding of near-zero gradients (biases in front of batch norm) to steps of ±lr.
    torch.backends.cudnn.allow_tf32 = False
    try:
        graphed, eager = cuda_trainer(registry, True), cuda_trainer(registry, False)
        images, labels = graphed.experiment.splits.train_images, graphed.experiment.splits.train_labels
        units = graphed.variant.units
        for step in range(WARMUP_STEPS + 3):  # eager warm-up, the recording (runs its minibatch), two replays
            batch = slice(32 * step, 32 * (step + 1))
            copy_state(graphed, eager)
            before = [p.detach().clone() for p in graphed.variant.parameters()]
            terms = []
            for trainer in (graphed, eager):
                torch.cuda.manual_seed(1000 + step)
                terms.append(trainer.update(images[batch], labels[batch], units))
            if step < WARMUP_STEPS:
                continue
            for unit in units:
                for name in ("ce", "kl", "denoise"):
                    torch.testing.assert_close(terms[0][unit][name], terms[1][unit][name], rtol=1e-5, atol=1e-6)
            for graphed_optimizer, eager_optimizer in zip(graphed.optimizers(), eager.optimizers(), strict=True):
                graphed_params = graphed_optimizer.param_groups[0]["params"]
                eager_params = eager_optimizer.param_groups[0]["params"]
                assert relative_difference([p.grad for p in graphed_params], [p.grad for p in eager_params]) < 1e-4
                moments = [
                    [o.state[p]["exp_avg"] for p in ps]
                    for o, ps in ((graphed_optimizer, graphed_params), (eager_optimizer, eager_params))
                ]
                assert relative_difference(*moments) < 1e-4
            for name, value in eager.variant.state_dict().items():  # batch-norm statistics, step counts
                torch.testing.assert_close(graphed.variant.state_dict()[name], value, rtol=1e-4, atol=1e-6, msg=name)
            assert all(not torch.equal(p, old) for p, old in zip(graphed.variant.parameters(), before, strict=True))
        assert len(graphed.graphed.recordings) == 1
    finally:
        torch.backends.cudnn.allow_tf32 = True


@needs_cuda
def test_a_graphed_run_learns_and_records_again_when_the_learning_rate_changes(registry, tmp_path):
    # 1000 examples in batches of 128: seven full minibatches and one of 104 per epoch (a second
    # shape); the cosine schedule changes the learning rate every epoch (the graph is recorded again).
    overrides = [
        *SHORT,
        *FUSED,
        "device=cuda",
        "data.subset=1000",
        "train.lr_schedule=cosine",
        "train.epochs=6",
        "eval.every=6",
    ]
    eager = run(RECIPE, registry, overrides=overrides, out_dir=tmp_path / "eager")[1]
    graphed = run(RECIPE, registry, overrides=[*overrides, "speed.cuda_graph=true"], out_dir=tmp_path / "graph")[1]
    losses = [record["loss"]["total"] for record in graphed["history"]]
    assert losses[-1] < 0.3 * losses[0]  # on CPU, eager: 307 → 30 (seed 0), 284 → 36 (seed 1)
    eager_losses = [record["loss"]["total"] for record in eager["history"]]
    assert losses == pytest.approx(eager_losses, rel=0.25)  # the same learning, whatever the noise draws
    assert abs(graphed["history"][-1]["test_accuracy"] - eager["history"][-1]["test_accuracy"]) < 15
