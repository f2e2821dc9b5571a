"""Fused block training (noprop_core.speed.stacked) equals per-block training, step for step."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from conftest import REPO
from noprop_core.diffusion.objectives import convex_denoise
from noprop_core.model.variant import VariantParts
from noprop_core.speed.grouped_network import grouped_forward, supports
from noprop_core.speed.stacked import StackedBlocks
from noprop_plugins.backbones.cnn import CnnConfig
from noprop_plugins.backbones.cnn import build as build_cnn
from noprop_plugins.backbones.vit import ViTConfig
from noprop_plugins.backbones.vit import build as build_vit
from noprop_plugins.embeddings.onehot.embedding import OneHotEmbedding
from noprop_plugins.heads.softmax.head import SoftmaxHead
from noprop_plugins.schedules.cosine.schedule import CosineSchedule
from noprop_plugins.variants.dt import DTConfig
from noprop_plugins.variants.dt.model import NoPropDT

T, B, CLASSES = 3, 16, 10


BACKBONES = {
    "cnn": lambda dropout: lambda spec: build_cnn(CnnConfig(name="cnn", dropout=dropout), spec),
    "vit": lambda dropout: (
        lambda spec: build_vit(ViTConfig(name="vit", width=16, depth=1, heads=2, patch_size=2, dropout=dropout), spec)
    ),
}


def make_dt(fused: bool, grouped_image_path: bool = True, backbone: str = "cnn", dropout: float = 0.0) -> NoPropDT:
    torch.manual_seed(7)  # both variants start from the same parameters
    parts = VariantParts(
        embedding=OneHotEmbedding(CLASSES),
        schedule=CosineSchedule(),
        image_shape=(1, 8, 8),
        num_classes=CLASSES,
        make_block=BACKBONES[backbone](dropout),
        make_head=lambda: SoftmaxHead(CLASSES, CLASSES),
    )
    variant = NoPropDT(DTConfig(name="dt", timesteps=T, order="simultaneous", fused=fused), parts)
    if fused:
        # the paper's conv path qualifies for the grouped network; a transformer encoder does not
        assert variant.stacked.grouped_image_path == (backbone == "cnn")
        variant.stacked = StackedBlocks(variant.blocks, grouped_image_path=grouped_image_path)
    return variant


def per_block_losses(variant: NoPropDT, images, labels, eps_prev, eps_last) -> dict[str, dict[str, torch.Tensor]]:
    """L_t block by block, written out from Eq. 8 with the given standard normal draws."""
    weight, chain = variant.embedding.weight, variant.chain()
    u = weight[labels]
    terms = {}
    for t in range(1, T + 1):
        z_prev = chain.alpha_bar[t - 1].sqrt() * u + (1 - chain.alpha_bar[t - 1]).sqrt() * eps_prev[t - 1]
        u_hat = convex_denoise(variant.blocks[t - 1](images, z_prev), weight)
        z_last = chain.alpha_bar[-1].sqrt() * u + (1 - chain.alpha_bar[-1]).sqrt() * eps_last[t - 1]
        a0 = chain.alpha_bar[0]
        kl = 0.5 * (a0 * u.pow(2).sum(-1) - CLASSES * a0 - CLASSES * torch.log1p(-a0)).mean()
        terms[f"block{t}"] = {
            "ce": F.cross_entropy(variant.head(z_last), labels),
            "kl": kl,
            "denoise": 0.5 * T * variant.eta * chain.snr_weight[t - 1] * (u_hat - u).pow(2).sum(-1).mean(),
        }
    return terms


def step(variant: NoPropDT, terms) -> None:
    # Plain SGD, one optimizer per block as in the trainer: a parameter step proportional to the
    # gradient. (Adam's first step is g/|g| per element, which would magnify float rounding in
    # gradients near zero into visible differences.)
    optimizers = [torch.optim.SGD(variant.unit_parameters(u), lr=0.1) for u in variant.units]
    optimizers.append(torch.optim.SGD(variant.shared_parameters(), lr=0.1))
    torch.stack([v for unit_terms in terms.values() for v in unit_terms.values()]).sum().backward()
    variant.after_backward()
    for optimizer in optimizers:
        optimizer.step()


@pytest.mark.parametrize(
    ("backbone", "grouped_image_path"),
    [("cnn", True), ("cnn", False), ("vit", False)],
    ids=["grouped-conv-path", "vmap-whole-block", "vit-vmapped"],
)
def test_fused_update_equals_the_per_block_update(backbone, grouped_image_path):
    fused, plain = make_dt(True, grouped_image_path, backbone), make_dt(False, backbone=backbone)
    fused.train(), plain.train()
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(B, 1, 8, 8, generator=generator)
    labels = torch.randint(0, CLASSES, (B,), generator=generator)
    eps_prev, eps_last = torch.randn(2, T, B, CLASSES, generator=generator).unbind(0)

    fused_terms = fused.fused_losses(images, labels, noise=(eps_prev, eps_last))
    plain_terms = per_block_losses(plain, images, labels, eps_prev, eps_last)
    for unit in plain.units:
        for name in ("ce", "kl", "denoise"):
            torch.testing.assert_close(fused_terms[unit][name], plain_terms[unit][name], rtol=1e-5, atol=1e-6)

    step(fused, fused_terms)
    step(plain, plain_terms)
    fused_params, plain_params = dict(fused.named_parameters()), dict(plain.named_parameters())
    assert fused_params.keys() == plain_params.keys()
    # Gradients agree to float rounding relative to each block's (and the head's) gradient size.
    # (Per element would not do: biases in front of batch norm have a true gradient of 0, and
    # their computed gradient is rounding noise of the size of the block's loss × 1e-7.)
    for prefix in [*(f"blocks.{t}." for t in range(T)), "head."]:
        names = [n for n in plain_params if n.startswith(prefix)]
        fused_grad = torch.cat([fused_params[n].grad.flatten() for n in names])
        plain_grad = torch.cat([plain_params[n].grad.flatten() for n in names])
        assert (fused_grad - plain_grad).norm() <= 1e-5 * plain_grad.norm(), prefix
    for name, value in plain_params.items():
        torch.testing.assert_close(fused_params[name], value, rtol=1e-5, atol=1e-5, msg=name)
    # Batch-norm running statistics were updated per block, into the blocks' own buffers.
    for name, value in plain.state_dict().items():
        torch.testing.assert_close(fused.state_dict()[name], value, rtol=1e-5, atol=1e-5, msg=name)
    # And the updated blocks, run one by one, give what the stacked computation gives.
    fused.eval()
    z = torch.randn(T, B, CLASSES)
    stacked = fused.stacked(images, z).detach()
    for t, block in enumerate(fused.blocks):
        torch.testing.assert_close(stacked[t], block(images, z[t]).detach(), rtol=1e-5, atol=1e-5)


def every_supported_layer() -> nn.Sequential:
    return nn.Sequential(
        nn.ReLU(),
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Sequential(nn.Conv2d(4, 6, 3, padding=1, groups=2, bias=False), nn.AvgPool2d(2)),
        nn.Conv2d(6, 4, 1, stride=2),
        nn.MaxPool2d(2),
        nn.Identity(),
        nn.Flatten(),
        nn.Linear(4, 5),
        nn.BatchNorm1d(5),
        nn.Linear(5, 3, bias=False),
    )


def stack_copies(copies: list[nn.Module]) -> tuple[dict, dict]:
    params = {
        name: torch.stack([dict(c.named_parameters())[name] for c in copies]).detach().requires_grad_()
        for name, _ in copies[0].named_parameters()
    }
    buffers = {
        name: torch.stack([dict(c.named_buffers())[name] for c in copies]) for name, _ in copies[0].named_buffers()
    }
    return params, buffers


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_grouped_forward_equals_each_copy_run_alone(training):
    torch.manual_seed(0)
    copies = [every_supported_layer().train(training) for _ in range(4)]
    for copy_ in copies:  # non-trivial running statistics for eval mode
        for buffer_name, buffer in copy_.named_buffers():
            if "running" in buffer_name:
                buffer.uniform_(0.5, 1.5)
    assert supports(copies[0])
    params, buffers = stack_copies(copies)
    images = torch.randn(8, 3, 8, 8)
    out = grouped_forward(copies[0], "", params, buffers, images, copies=4)
    assert out.shape == (4, 8, 3)
    for t, copy_ in enumerate(copies):
        torch.testing.assert_close(out[t], copy_(images), rtol=1e-5, atol=1e-5)
        for name, buffer in copy_.named_buffers():  # running statistics updated per copy, alike
            torch.testing.assert_close(buffers[name][t], buffer.to(buffers[name].dtype), msg=name)
    # Gradients reach every copy's parameters, and only through its own output.
    out[2].sum().backward()
    # (Weights only: a bias in front of batch norm has a true gradient of 0 in training.)
    assert all(p.grad[2].abs().sum() > 0 for name, p in params.items() if name.endswith("weight"))
    assert all(p.grad[[0, 1, 3]].abs().sum() == 0 for p in params.values())


def test_grouped_dropout_draws_a_mask_per_copy():
    torch.manual_seed(0)
    layers = nn.Sequential(nn.Dropout(0.5), nn.Conv2d(1, 2, 3, padding=1), nn.Dropout(0.5), nn.Flatten())
    params, buffers = stack_copies([layers] * 3)  # three identical copies
    out = grouped_forward(layers, "", params, buffers, torch.ones(4, 1, 5, 5), copies=3)
    assert not torch.equal(out[0], out[1]) and not torch.equal(out[1], out[2])
    assert not supports(nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, padding_mode="reflect"), nn.Flatten()))
    assert not supports(nn.Sequential(nn.LayerNorm(3)))


@pytest.mark.parametrize("backbone", ["vit", "cnn"])
def test_a_vmapped_stack_draws_its_dropout_masks_from_the_steps_generator(backbone):
    stack = make_dt(True, grouped_image_path=False, backbone=backbone, dropout=0.5).stacked
    images, z = torch.rand(B, 1, 8, 8), torch.randn(T, B, CLASSES)

    def logits(seed: int) -> torch.Tensor:
        return stack(images, z, [torch.Generator().manual_seed(seed)]).detach()

    global_state = torch.get_rng_state()
    first, again, other = logits(1), logits(1), logits(2)
    assert torch.equal(torch.get_rng_state(), global_state)  # the run's own random stream is left alone
    assert torch.equal(first, again)
    assert not torch.equal(first, other)  # the masks change with the step's seed


def test_fused_needs_the_simultaneous_order(registry, tmp_path):
    from noprop_core.errors import RecipeError
    from noprop_core.recipe.loading import load_recipe

    with pytest.raises(RecipeError, match="variant.fused: fused = true needs order = 'simultaneous'"):
        load_recipe(REPO / "recipes" / "digits_dt.toml", registry, ["variant.fused=true", "variant.order=sequential"])


@pytest.mark.slow
def test_a_fused_run_trains_and_its_checkpoint_loads_into_an_unfused_model(registry, tmp_path):
    from noprop_core.engine.runs.fresh import start_run as run
    from noprop_core.engine.trained.reevaluation import evaluate_run

    overrides = ["train.epochs=2", "variant.order=simultaneous", "variant.fused=true", "tracker.name=none"]
    run_dir, metrics = run(REPO / "recipes" / "digits_dt.toml", registry, overrides=overrides, out_dir=tmp_path / "run")
    first, second = (record["loss"]["denoise"] for record in metrics["history"])
    assert second < first / 3  # the blocks learn to denoise
    # The checkpoint is an ordinary one: evaluating it rebuilds the model (fused again) from it.
    assert evaluate_run(run_dir, registry)["test_accuracy"] == pytest.approx(metrics["test_accuracy"])
