"""`noprop export` and ``Run.export``: a trained run written out for use without noprop
(safetensors weights, or the whole inference chain as ONNX or TorchScript with its noise as an input)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch

from noprop_core.engine.run_directory import FILE_MODE
from noprop_core.engine.trained.inference import TrainedModel
from noprop_core.errors import NopropError

FORMATS = ("safetensors", "onnx", "torchscript")


class NoiseFeed:
    """Stands in for torch.randn / randn_like while a chain is traced: each call returns the
    next slice of a noise tensor given as the graph's input, so the exported graph is the
    whole inference chain with its noise supplied by the caller (ONNX has no torch-equal RNG)."""

    def __init__(self, noise: torch.Tensor | None) -> None:
        self.noise, self.calls = noise, 0
        self.shapes: list[tuple[int, ...]] = []

    def __call__(self, *args: Any, **kwargs: Any) -> torch.Tensor:
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
        torch.randn_like = lambda tensor, **kwargs: self(tuple(tensor.shape))  # type: ignore[assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        torch.randn, torch.randn_like = self.real, self.real_like


class ExportedChain(torch.nn.Module):
    """images in [0, 1] (B, C, H, W) and noise (K, B, d) ~ N(0, I) → class probabilities (B, classes)."""

    def __init__(self, model: TrainedModel) -> None:
        super().__init__()
        self.variant = model.variant
        self.mean: torch.Tensor
        self.std: torch.Tensor
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
    metadata = {
        "format": "noprop-export-1",
        "inference": json.dumps(model.card),
        "recipe": (model.run_dir / "recipe.toml").read_text(),
    }
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
    write = write_torchscript if fmt == "torchscript" else write_onnx
    write(chain, (example, noise), out, metadata)
    return {"path": out, "bytes": out.stat().st_size, "noise_shape": (draws, "batch", dim)}


def write_torchscript(
    chain: ExportedChain, inputs: tuple[torch.Tensor, torch.Tensor], out: Path, metadata: dict[str, str]
) -> None:
    with torch.no_grad():
        traced = torch.jit.trace(chain, inputs, check_trace=False)
    torch.jit.save(traced, str(out), _extra_files={"noprop.json": json.dumps(metadata)})


def write_onnx(
    chain: ExportedChain, inputs: tuple[torch.Tensor, torch.Tensor], out: Path, metadata: dict[str, str]
) -> None:
    """The chain as an ONNX graph with dynamic batch, and the metadata as its properties."""
    with torch.no_grad():
        torch.onnx.export(
            chain,
            inputs,
            str(out),
            input_names=["images", "noise"],
            output_names=["probabilities"],
            dynamo=False,
            dynamic_axes={"images": {0: "batch"}, "noise": {1: "batch"}, "probabilities": {0: "batch"}},
        )
    import onnx

    graph = onnx.load(str(out))
    for key, value in metadata.items():
        graph.metadata_props.add(key=key, value=value)
    onnx.save(graph, str(out))
