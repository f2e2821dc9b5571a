"""Using a trained model: `noprop predict` on image files, `load_model`, and `noprop export`
(safetensors weights; ONNX and TorchScript graphs of the whole chain, checked against PyTorch)."""

from __future__ import annotations

import json
import os
import subprocess

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import REPO
from helpers import NOPROP
from noprop_core import load_model
from noprop_core.engine.trained.export import ExportedChain, noise_shape
from noprop_core.engine.training.experiment import build_experiment
from noprop_core.plugin.manager import load_registry
from noprop_core.recipe.loading import load_recipe


def noprop(*args: str, cwd=REPO) -> subprocess.CompletedProcess:
    env = {**os.environ, "NOPROP_DISABLE_PLUGIN_AUTOLOAD": "1"}
    return subprocess.run([NOPROP, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("predict") / "digits"
    result = noprop("run", "--set", "train.epochs=3", "--set", "tracker.name=none", "--out", str(out))
    assert result.returncode == 0, result.stderr
    registry = load_registry(autoload=False)
    splits = build_experiment(load_recipe(out / "recipe.toml", registry), registry, notify=lambda t: None).splits
    return out, splits


def unit_range(model, images: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(model.card["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(model.card["std"]).view(1, -1, 1, 1)
    return images * std + mean


def test_predict_on_png_files_gives_the_classes_of_the_evaluation(trained, tmp_path):
    run_dir, splits = trained
    model = load_model(run_dir)
    images = unit_range(model, splits.test_images[:20])
    folder = tmp_path / "pngs"
    folder.mkdir()
    for index, image in enumerate(images):
        pixels = (image[0].clamp(0, 1) * 255).round().to(torch.uint8).numpy()
        Image.fromarray(pixels).save(folder / f"{index:02d}.png")
    result = noprop("predict", str(run_dir), str(folder), "--json")
    assert result.returncode == 0, result.stderr
    predicted = json.loads(result.stdout)
    assert [p["path"] for p in predicted] == [str(folder / f"{i:02d}.png") for i in range(20)]
    assert set(predicted[0]) == {"path", "class", "name", "probability"}
    assert all(p["name"] == str(p["class"]) and 0 < p["probability"] <= 1 for p in predicted)
    # The evaluation's chain on the same 20 test images (one batch, the run's seed): the PNG
    # path (decode, 8-bit rounding, standardisation) changes no class.
    assert [p["class"] for p in predicted] == model.predict(splits.test_images[:20]).tolist()
    # Inside the whole test set's batch the chain draws other noise: most classes agree.
    generator = torch.Generator().manual_seed(model.recipe.seed)
    with torch.no_grad():
        evaluated = model.variant.predict(splits.test_images, generator).argmax(-1)[:20]
    agree = sum(p["class"] == c for p, c in zip(predicted, evaluated.tolist()))
    print(f"predict vs the full test set's evaluation: {agree}/20 classes agree")
    assert agree >= 17
    text = noprop("predict", str(run_dir), str(folder / "00.png"), "--top-k", "3")
    assert text.returncode == 0 and text.stdout.count("%") == 3


def test_load_run_predicts_as_the_run_evaluated(trained):
    run_dir, splits = trained
    model = load_model(run_dir)
    probabilities = model.predict_proba(splits.test_images)
    torch.testing.assert_close(probabilities.sum(-1), torch.ones(len(probabilities)))
    accuracy = 100 * (model.predict(splits.test_images) == splits.test_labels).double().mean().item()
    assert accuracy == pytest.approx(json.loads((run_dir / "metrics.json").read_text())["test_accuracy"])


def test_onnx_and_torchscript_exports_predict_as_pytorch_on_the_test_set(trained, tmp_path):
    import onnxruntime

    run_dir, splits = trained
    model = load_model(run_dir)
    images = unit_range(model, splits.test_images)
    noise = torch.randn(noise_shape(model, len(images)), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        reference = ExportedChain(model).eval()(images, noise)
    for fmt, name in (("onnx", "model.onnx"), ("torchscript", "model.pt")):
        result = noprop("export", str(run_dir), "--format", fmt, "--out", str(tmp_path / name))
        assert result.returncode == 0, result.stderr
        assert "noise (11, batch, 10) ~ N(0, I)" in result.stdout
    session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"))
    [onnx_out] = session.run(None, {"images": images.numpy(), "noise": noise.numpy()})
    assert int((onnx_out.argmax(-1) != reference.argmax(-1).numpy()).sum()) == 0
    np.testing.assert_allclose(onnx_out, reference.numpy(), atol=1e-5)
    with torch.no_grad():
        scripted = torch.jit.load(str(tmp_path / "model.pt"))(images, noise)
    assert torch.equal(scripted.argmax(-1), reference.argmax(-1))
    # The graph is the chain: other noise, other (mostly equal) answers; no noise input, no graph.
    assert not torch.equal(ExportedChain(model).eval()(images, torch.randn_like(noise)), reference)


def test_safetensors_export_is_the_weights_only(trained, tmp_path):
    from safetensors import safe_open

    run_dir, _ = trained
    # a folder that does not exist yet is made
    weights = tmp_path / "new" / "folder" / "w.safetensors"
    result = noprop("export", str(run_dir), "--format", "safetensors", "--out", str(weights))
    assert result.returncode == 0, result.stderr
    assert weights.stat().st_size < (run_dir / "checkpoint.pt").stat().st_size / 2  # no optimizer state
    state = torch.load(run_dir / "checkpoint.pt", weights_only=True)["model"]
    with safe_open(str(weights), "pt") as handle:
        metadata = handle.metadata()
        assert json.loads(metadata["inference"])["image_shape"] == [1, 8, 8]
        assert "[variant]" in metadata["recipe"]
        for key in handle.keys():
            assert torch.equal(handle.get_tensor(key), state[key]), key
        assert set(handle.keys()) <= set(state)


def test_predict_errors_are_one_line(trained, tmp_path):
    run_dir, _ = trained
    (tmp_path / "bad.png").write_bytes(b"not an image")
    for args, expected in (
        ([str(run_dir), str(tmp_path / "nope.png")], "nope.png: no such image or folder"),
        ([str(run_dir), str(tmp_path / "bad.png")], "bad.png: not a readable PNG or JPEG image"),
        ([str(tmp_path), str(tmp_path / "bad.png")], "not a run directory"),
        ([str(run_dir), str(tmp_path / "bad.png"), "--top-k", "0"], "--top-k: expected a number >= 1"),
    ):
        result = noprop("predict", *args)
        assert result.returncode == 2 and expected in result.stderr and result.stderr.count("\n") == 1, result.stderr
    (tmp_path / "a_file").write_text("")
    result = noprop("export", str(run_dir), "--format", "safetensors", "--out", str(tmp_path / "a_file" / "w.st"))
    assert result.returncode == 2 and "w.st: cannot create its folder (" in result.stderr, result.stderr


def test_run_predict_takes_what_users_hold_and_answers_as_the_tensor_path(trained):
    """numpy, uint8 pixels, PIL images, one image without the batch axis, channels last, float64:
    the same classes as the float tensor of the same pixels."""
    import noprop_core as noprop

    run_dir, splits = trained
    run = noprop.load_run(run_dir)
    pixels = (unit_range(run.model(), splits.test_images[:12]).clamp(0, 1) * 255).round().to(torch.uint8)
    floats = pixels.float() / 255  # the same pixels as floats in [0, 1]
    expected = run.predict(floats)
    assert expected.shape == (12,) and len(set(expected.tolist())) > 3  # a trained model, not one class
    same = {
        "numpy float32": floats.numpy(),
        "uint8 tensor, 0–255": pixels,
        "uint8 numpy, channels last": pixels.permute(0, 2, 3, 1).numpy(),
        "float64": floats.double(),
        "a list of PIL images": [Image.fromarray(image[0].numpy()) for image in pixels],
        "a list of tensors": list(floats),
    }
    for name, images in same.items():
        assert torch.equal(run.predict(images), expected), name
    one = run.predict(floats[3])  # (1, 8, 8): one image, no batch axis
    assert one.dim() == 0 and one.item() == expected[3].item()
    assert run.predict(floats[3, 0]).item() == expected[3].item()  # (8, 8) for a grey model
    assert run.predict(Image.fromarray(pixels[3, 0].numpy())).item() == expected[3].item()
    probabilities = run.predict_proba(pixels)
    assert probabilities.shape == (12, 10) and torch.allclose(probabilities.sum(-1), torch.ones(12))


@pytest.mark.parametrize(
    ("images", "message"),
    [
        (
            torch.rand(4, 1, 28, 28),
            "predict: the run expects (B, 1, 8, 8) images (or one, (1, 8, 8)): floats in [0, 1] or uint8 in 0–255; got (4, 1, 28, 28)",
        ),
        (torch.rand(4, 3, 8, 8), "got (4, 3, 8, 8)"),
        (torch.rand(4, 1, 8, 8) * 255, "predict: floats must lie in [0, 1] (pixels 0–255 as uint8); got values from"),
        (torch.ones(4, 1, 8, 8, dtype=torch.int64), "got int64 values"),
        ([torch.rand(1, 8, 8), torch.rand(1, 7, 8)], "predict: the images of a list differ in shape or type"),
        ("digit.png", "got a str"),
        ([], "predict: no images given"),
    ],
    ids=[
        "28×28 to an 8×8 model",
        "RGB to a grey model",
        "0–255 as floats",
        "int64",
        "a ragged list",
        "a path",
        "nothing",
    ],
)
def test_run_predict_refuses_what_does_not_fit_in_one_line(trained, images, message):
    import noprop_core as noprop

    with pytest.raises(noprop.NopropError) as refused:
        noprop.load_run(trained[0]).predict(images)
    assert message in str(refused.value) and "\n" not in str(refused.value)
