"""Nothing lost: interrupted runs resume exactly, bad states stop cleanly with one-line errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import types
from pathlib import Path

import attrs
import pytest
import torch

from conftest import REPO
from helpers import ALGORITHM_1, NOPROP, deterministic_history, digits_trainer
from noprop_core.engine import run_directory
from noprop_core.engine.training.trainer import NonFiniteLoss
from noprop_core.errors import REQUEUE_EXIT_CODE
from noprop_core.plugin.config import BackboneConfig
from noprop_core.plugin.hookspecs import hookimpl
from noprop_core.plugin.manager import load_registry

RUN = ["run", "--set", "train.epochs=6", "--set", "data.subset=400", "--set", "variant.timesteps=3"]


def start(*args: str) -> subprocess.Popen:
    env = {**os.environ, "NOPROP_DISABLE_PLUGIN_AUTOLOAD": "1"}
    return subprocess.Popen(
        [NOPROP, *args], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finished(*args: str) -> subprocess.CompletedProcess:
    process = start(*args)
    stdout, stderr = process.communicate(timeout=600)
    return subprocess.CompletedProcess(args, process.returncode, stdout, stderr)


def wait_for_checkpoint(out: Path, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while not (out / "checkpoint.pt").exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.02)


def outcome(out: Path) -> dict:
    """What must match between an interrupted-then-resumed run and an uninterrupted one."""
    metrics = json.loads((out / "metrics.json").read_text())
    history = deterministic_history(metrics["history"])
    return {"history": history, **{k: metrics[k] for k in ("test_accuracy", "train_accuracy", "epochs_completed")}}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("runs") / "whole"
    result = finished(*RUN, "--out", str(out))
    assert result.returncode == 0, result.stderr
    return outcome(out)


def test_a_killed_run_resumes_to_exactly_the_same_result(uninterrupted, tmp_path):
    out = tmp_path / "killed"
    process = start(*RUN, "--out", str(out))
    wait_for_checkpoint(out, process)
    process.send_signal(signal.SIGKILL)  # no chance to clean up
    process.wait()
    assert process.returncode == -signal.SIGKILL
    done_before = run_directory.load_checkpoint(out / "checkpoint.pt")["history"]
    assert 1 <= len(done_before) < 6, "the kill must land before the run ends"
    resumed = finished("run", "--resume", str(out))
    assert resumed.returncode == 0, resumed.stderr
    assert outcome(out) == uninterrupted


@pytest.mark.parametrize(
    ("signum", "exit_code"),
    [(signal.SIGTERM, 130), (signal.SIGUSR2, REQUEUE_EXIT_CODE)],  # USR2: Slurm's (submitit's) preemption signal
    ids=["sigterm", "preemption"],
)
def test_a_signal_saves_the_position_inside_the_epoch_and_resume_matches(uninterrupted, tmp_path, signum, exit_code):
    out = tmp_path / "terminated"
    process = start(*RUN, "--out", str(out))
    wait_for_checkpoint(out, process)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == exit_code, stderr
    assert ("to be requeued" in stderr) == (signum == signal.SIGUSR2)
    assert f"Continue with: noprop run --resume {out}" in stderr
    checkpoint = run_directory.load_checkpoint(out / "checkpoint.pt")
    assert checkpoint["current_epoch"] is not None and checkpoint["current_epoch"]["batches_done"] >= 1
    resumed = finished("run", "--resume", str(out))
    assert resumed.returncode == 0, resumed.stderr
    assert outcome(out) == uninterrupted


def test_resume_takes_no_other_options_and_rejects_a_corrupt_checkpoint(tmp_path):
    (tmp_path / "recipe.toml").write_text((REPO / "recipes" / "digits_dt.toml").read_text())
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    corrupt = finished("run", "--resume", str(tmp_path))
    assert corrupt.returncode == 2
    assert (
        corrupt.stderr.strip()
        == f"noprop: error: {tmp_path / 'checkpoint.pt'}: not a readable noprop checkpoint (UnpicklingError)"
    )
    assert (tmp_path / "checkpoint.pt").read_bytes() == b"not a checkpoint"
    mixed = finished("run", "--resume", str(tmp_path), "--seed", "2")
    assert mixed.returncode == 2 and "it takes no --seed" in mixed.stderr


def test_an_unwritable_output_directory_stops_before_training(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = finished("run", "--set", "train.epochs=1", "--out", str(blocker / "run"))
    assert result.returncode == 2
    assert result.stderr.strip().startswith(f"noprop: error: --out {blocker / 'run'}: cannot write there")


@attrs.frozen(kw_only=True)
class PoisonConfig(BackboneConfig):
    dropout: float = 0.2  # the digits recipe sets it
    poison_at_call: int = 10


def poisoned_cnn_plugin() -> types.ModuleType:
    """A backbone that behaves like `cnn` until its n-th forward pass, then returns NaN."""
    from noprop_plugins.backbones.cnn import CnnConfig, build

    calls = {"n": 0}

    class Poisoned(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module, at: int):
            super().__init__()
            self.inner, self.at = inner, at

        def forward(self, images, z, t=None):
            calls["n"] += 1
            logits = self.inner(images, z, t)
            return logits * float("nan") if calls["n"] >= self.at and self.training else logits

    module = types.ModuleType("poison_plugin")
    module.noprop_register_backbones = hookimpl(
        lambda registry: registry.add(
            "poisoned",
            lambda c, spec: Poisoned(build(CnnConfig(name="cnn"), spec), c.poison_at_call),
            config=PoisonConfig,
        )
    )
    module.noprop_register_backbones.__name__ = "noprop_register_backbones"
    return module


def test_a_non_finite_loss_stops_training_and_keeps_the_last_good_checkpoint(tmp_path):
    from noprop_core.engine.runs.fresh import start_run as run

    registry = load_registry([("poison", poisoned_cnn_plugin())], autoload=False)
    overrides = [
        "train.epochs=3",
        "data.subset=256",
        "variant.timesteps=2",
        "train.batch_size=128",
        "model.backbone.name=poisoned",
        "model.backbone.poison_at_call=6",
        "eval.every=1",
        *ALGORITHM_1,
    ]
    # 256 examples, batch 128, 2 blocks in turn: 4 forward passes an epoch; the 6th is in epoch 2.
    with pytest.raises(NonFiniteLoss, match=r"non-finite loss \(block1 denoise\) in variant 'dt' at epoch 2, step 5"):
        run(REPO / "recipes" / "digits_dt.toml", registry, overrides=overrides, out_dir=tmp_path / "run")
    checkpoint = run_directory.load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert len(checkpoint["history"]) == 1 and checkpoint["step"] == 4
    assert all(torch.isfinite(v).all() for v in checkpoint["model"].values() if v.is_floating_point())


def test_gradient_clipping_bounds_each_units_gradient(registry):

    trainer = digits_trainer(registry, "variant.timesteps=2", "train.grad_clip=0.001")
    splits = trainer.experiment.splits
    trainer.variant.train()
    trainer.update(splits.train_images[:64], splits.train_labels[:64], ["block1"])
    norm = torch.nn.utils.get_total_norm([p.grad for p in trainer.variant.blocks[0].parameters()])
    assert norm <= 0.001 * (1 + 1e-5)
    assert all(p.grad is None for p in trainer.variant.blocks[1].parameters())
