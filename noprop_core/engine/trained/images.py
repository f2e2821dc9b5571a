"""What a trained model is given to classify, as users hold it: torch tensors, numpy arrays, PIL
images, or lists of them; a batch or one image without the batch axis. uint8 pixels are read as
0–255, floating-point ones as 0–1 (a float outside [0, 1] is refused rather than guessed at);
channels first, or last for numpy arrays and PIL images, whose layout that is. Anything else is
one ``NopropError`` line naming what the run expects and what it got."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from noprop_core.errors import NopropError

FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def expectation(shape: tuple[int, int, int]) -> str:
    return (
        f"expects (B, {', '.join(map(str, shape))}) images (or one, {tuple(shape)}): floats in [0, 1] or uint8 in 0–255"
    )


def as_image_batch(images: Any, shape: tuple[int, int, int]) -> tuple[Tensor, bool]:
    """(B, C, H, W) float32 in [0, 1] for the run's image ``shape``, and whether the input was a
    single image without the batch axis."""
    tensor = to_tensor(images, shape)
    single = tensor.dim() == len(shape) or (tensor.dim() == 2 and shape[0] == 1)
    if tensor.dim() == 2 and shape[0] == 1:  # one grey image, (H, W)
        tensor = tensor[None]
    if single:
        tensor = tensor[None]
    if tensor.dim() != 4 or tuple(tensor.shape[1:]) != tuple(shape):
        raise NopropError(f"predict: the run {expectation(shape)}; got {tuple(tensor.shape)}")
    return scaled(tensor, shape), single


def to_tensor(images: Any, shape: tuple[int, int, int]) -> Tensor:
    """A tensor of the images as given (a list stacked), channels moved first where they were last."""
    if isinstance(images, (list, tuple)):
        if not images:
            raise NopropError("predict: no images given")
        parts = [to_tensor(image, shape) for image in images]
        if len({tuple(part.shape) for part in parts}) > 1 or len({part.dtype for part in parts}) > 1:
            got = sorted({f"{tuple(p.shape)} {str(p.dtype).removeprefix('torch.')}" for p in parts})
            raise NopropError(f"predict: the images of a list differ in shape or type ({', '.join(got)})")
        return torch.stack(parts)
    if isinstance(images, Tensor):
        return images.detach().cpu()
    module = type(images).__module__.split(".")[0]
    if module == "numpy":
        return channels_first(torch.from_numpy(images.copy()), shape)
    if module == "PIL":
        from torchvision.transforms.functional import pil_to_tensor

        return pil_to_tensor(images)
    raise NopropError(f"predict: the run {expectation(shape)}; got a {type(images).__name__}")


def channels_first(tensor: Tensor, shape: tuple[int, int, int]) -> Tensor:
    """An array in (…, H, W, C) layout — numpy's and PIL's — moved to (…, C, H, W)."""
    channels, height, width = shape
    layout_last = tensor.dim() >= 3 and tuple(tensor.shape[-3:]) == (height, width, channels)
    if layout_last and tuple(tensor.shape[-3:]) != tuple(shape):
        return tensor.movedim(-1, -3)
    return tensor


def scaled(tensor: Tensor, shape: tuple[int, int, int]) -> Tensor:
    """uint8 read as 0–255, floats as 0–1 (outside it: refused); float32 out."""
    if tensor.dtype == torch.uint8:
        return tensor.float() / 255.0
    if tensor.dtype not in FLOATS:
        got = str(tensor.dtype).removeprefix("torch.")
        raise NopropError(f"predict: the run {expectation(shape)}; got {got} values")
    low, high = tensor.min().item(), tensor.max().item()
    if low < 0.0 or high > 1.0 or tensor.isnan().any():
        raise NopropError(
            f"predict: floats must lie in [0, 1] (pixels 0–255 as uint8); got values from {low:g} to {high:g}"
        )
    return tensor.float()
