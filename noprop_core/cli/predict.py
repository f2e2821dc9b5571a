"""`noprop predict`: a trained run used on image files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from noprop_core.engine.trained.inference import TrainedModel
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
    probabilities = model.class_probabilities(images)  # the path every input of Run.predict takes
    names = model.class_names
    results = []
    for path, row in zip(paths, probabilities):
        values, classes = row.topk(min(top_k, len(row)))
        ranked = [
            {"class": int(c), "name": names[int(c)] if names else None, "probability": float(v)}
            for v, c in zip(values, classes)
        ]
        results.append({"path": str(path), **ranked[0], **({"top_k": ranked} if top_k > 1 else {})})
    return results


def prediction_lines(results: list[dict[str, Any]]) -> list[str]:
    lines = []
    for result in results:
        ranked = result.get("top_k", [result])
        text = ", ".join(
            f"{r['class']}" + (f" ({r['name']})" if r["name"] is not None else "") + f" {100 * r['probability']:.1f} %"
            for r in ranked
        )
        lines.append(f"{result['path']}: {text}")
    return lines


def dump_json(results: list[dict[str, Any]]) -> str:
    return json.dumps(results, indent=2)
