"""`noprop predict` and `noprop export`: a trained run used on new images, or written out for
use without noprop."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch

from noprop_core.engine.inference import TrainedModel
from noprop_core.engine.run_directory import FILE_MODE
from noprop_core.errors import NopropError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def image_paths(paths: list[Path]) -> list[Path]:
    """Files as given; folders contribute their PNG and JPEG files, sorted."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.is_file():
            found.append(path)
        else:
            raise NopropError(f"{path}: no such image or folder")
    if not found:
        raise NopropError(f"no PNG or JPEG images in {', '.join(map(str, paths))}")
    return found


def read_image(path: Path, shape: tuple[int, int, int]) -> torch.Tensor:
    """One image as the run's model sees it before standardisation: (C, H, W) in [0, 1], with
    the run's channel count (grey or RGB) and size (resized with antialiasing if different)."""
    from torchvision.io import ImageReadMode, decode_image
    from torchvision.transforms.functional import resize

    mode = {1: ImageReadMode.GRAY, 3: ImageReadMode.RGB}.get(shape[0])
    if mode is None:
        raise NopropError(f"{path}: the run's images have {shape[0]} channels; predict reads grey or RGB images")
    try:
        image = decode_image(str(path), mode=mode)
    except (RuntimeError, ValueError) as exc:
        raise NopropError(f"{path}: not a readable PNG or JPEG image ({' '.join(str(exc).split())[:120]})") from None
    if tuple(image.shape[1:]) != shape[1:]:
        image = resize(image, list(shape[1:]), antialias=True)
    return image.float() / 255.0


def predictions(model: TrainedModel, paths: list[Path], top_k: int) -> list[dict[str, Any]]:
    images = torch.stack([read_image(path, model.image_shape) for path in paths])
    probabilities = model.predict_proba(model.standardise(images))
    names = model.class_names
    results = []
    for path, row in zip(paths, probabilities):
        values, classes = row.topk(min(top_k, len(row)))
        ranked = [{"class": int(c), "name": names[int(c)] if names else None, "probability": float(v)}
                  for v, c in zip(values, classes)]  # fmt: skip
        results.append({"path": str(path), **ranked[0], **({"top_k": ranked} if top_k > 1 else {})})
    return results


def prediction_lines(results: list[dict[str, Any]]) -> list[str]:
    lines = []
    for result in results:
        ranked = result.get("top_k", [result])
        text = ", ".join(f"{r['class']}" + (f" ({r['name']})" if r["name"] is not None else "") +
                         f" {100 * r['probability']:.1f} %" for r in ranked)  # fmt: skip
        lines.append(f"{result['path']}: {text}")
    return lines


def dump_json(results: list[dict[str, Any]]) -> str:
    return json.dumps(results, indent=2)


# -- export ----------------------------------------------------------------------------------
FORMATS = ("safetensors", "onnx", "torchscript")


class NoiseFeed:
    """Stands in for torch.randn / randn_like while a chain is traced: each call returns the
    next slice of a noise tensor given as the graph's input, so the exported graph is the
    whole inference chain with its noise supplied by the caller (ONNX has no torch-equal RNG)."""

    def __init__(self, noise: torch.Tensor | None):
        self.noise, self.calls, self.shapes = noise, 0, []

    def __call__(self, *args, **kwargs) -> torch.Tensor:
        if self.noise is None:  # counting: real noise of the requested shape
            value = self.real(*args, **kwargs)
            self.shapes.append(tuple(value.shape))
        else:
            value = self.noise[self.calls]
        self.calls += 1
        return value

    def __enter__(self) -> NoiseFeed:
        self.real, self.real_like = torch.randn, torch.randn_like
        torch.randn = self
        torch.randn_like = lambda tensor, **kwargs: self(tuple(tensor.shape))
        return self

    def __exit__(self, *exc: object) -> None:
        torch.randn, torch.randn_like = self.real, self.real_like


class ExportedChain(torch.nn.Module):
    """images in [0, 1] (B, C, H, W) and noise (K, B, d) ~ N(0, I) → class probabilities (B, classes)."""

    def __init__(self, model: TrainedModel):
        super().__init__()
        self.variant = model.variant
        self.register_buffer("mean", torch.tensor(model.card["mean"] or [0.0]).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(model.card["std"] or [1.0]).view(1, -1, 1, 1))

    def forward(self, images: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        with NoiseFeed(noise):
            scores = self.variant.predict((images - self.mean) / self.std, None)
        return scores.float().softmax(dim=-1)


def noise_shape(model: TrainedModel, batch: int) -> tuple[int, ...]:
    """(K, batch, d): the K standard-normal draws the chain makes for a batch."""
    with torch.no_grad(), NoiseFeed(None) as feed:
        model.variant.predict(torch.zeros(1, *model.image_shape), None)
    shapes = {shape[1:] for shape in feed.shapes}
    if len(shapes) > 1 or any(shape[0] != 1 for shape in feed.shapes):
        raise NopropError(
            f"{model.run_dir}: this variant's noise cannot be supplied as one input (draws {feed.shapes})"
        )
    return (feed.calls, batch, *next(iter(shapes))) if feed.calls else (0, batch, 1)


def export(model: TrainedModel, fmt: str, out: Path) -> dict[str, Any]:
    """Write the model as ``fmt`` to ``out``; returns what was written (for the CLI's summary)."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NopropError(f"{out}: cannot create its folder ({exc.strerror})") from None
    metadata = {"format": "noprop-export-1", "inference": json.dumps(model.card),
                "recipe": (model.run_dir / "recipe.toml").read_text()}  # fmt: skip
    if fmt == "safetensors":
        from safetensors.torch import save_model

        save_model(model.variant, str(out), metadata=metadata)
        out.chmod(FILE_MODE)
        return {"path": out, "bytes": out.stat().st_size}
    warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)  # len(images): the batch is traced as dynamic
    warnings.filterwarnings("ignore", category=FutureWarning, module="torch.jit")
    chain = ExportedChain(model).eval()
    example = torch.zeros(2, *model.image_shape)
    draws, _batch, dim = noise_shape(model, 2)  # the chain is run once to count its draws
    noise = torch.zeros(draws, 2, dim)
    if fmt == "torchscript":
        with torch.no_grad():
            traced = torch.jit.trace(chain, (example, noise), check_trace=False)
        torch.jit.save(traced, str(out), _extra_files={"noprop.json": json.dumps(metadata)})
    else:
        with torch.no_grad():
            torch.onnx.export(chain, (example, noise), str(out), input_names=["images", "noise"],
                              output_names=["probabilities"], dynamo=False,
                              dynamic_axes={"images": {0: "batch"}, "noise": {1: "batch"}, "probabilities": {0: "batch"}})  # fmt: skip
        import onnx

        graph = onnx.load(str(out))
        for key, value in metadata.items():
            graph.metadata_props.add(key=key, value=value)
        onnx.save(graph, str(out))
    return {"path": out, "bytes": out.stat().st_size, "noise_shape": (draws, "batch", dim)}
