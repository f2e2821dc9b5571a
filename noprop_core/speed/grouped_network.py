"""T copies of one ``nn.Sequential`` image path run as a single wide network.

``torch.func.vmap`` over T convolutional blocks lowers each convolution to a grouped
convolution, but between layers it moves the block dimension back to the front, which costs a
copy per layer, adds each bias as a separate kernel and leaves element-wise layers working on
strided tensors. Run by hand, the T copies can stay in the grouped layout (B, T·C, H, W) from
the first convolution to the flatten, where every element-wise layer is one contiguous kernel.
A stacked MNIST step is faster this way than with vmap over the whole block on a CPU (docs/speed.md,
"Speed").

A tensor moves through three layouts:
- *shared* (B, …): the same input for every copy (the images); or, for G groups of copies
  (seeds trained together, each on its own minibatch), (G, B, …): group g's input for its copies;
- *grouped* (B, T·C, H, W): copy t owns channels t·C … (t+1)·C − 1;
- *stacked* (T, B, F): after ``Flatten``, as vmap would give it.

Supported layers: Conv2d (zero padding), Linear, BatchNorm1d/2d (with a momentum), ReLU,
MaxPool2d, AvgPool2d, Dropout, Identity, Flatten (from dimension 1), nested Sequential.
``supports`` says whether a module qualifies; anything else stays with vmap.

Dropout draws one mask per copy. Given one ``torch.Generator`` per group of copies, group g's
masks come from generator g, drawn as that group alone would draw them: G seeds trained together
draw exactly the masks each would draw trained alone.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from noprop_core.model.dropout import keep_scale

PARAMETER_FREE = (nn.ReLU, nn.MaxPool2d, nn.AvgPool2d, nn.Identity)  # and no randomness


def _leaves(module: nn.Module, prefix: str) -> Iterator[tuple[str, nn.Module]]:
    if isinstance(module, nn.Sequential):
        for name, child in module.named_children():
            yield from _leaves(child, f"{prefix}{name}.")
    else:
        yield prefix, module


def _supported_leaf(module: nn.Module) -> bool:
    if isinstance(module, nn.Conv2d):
        return module.padding_mode == "zeros" and isinstance(module.padding, tuple)
    if isinstance(module, nn.Flatten):
        return module.start_dim == 1 and module.end_dim == -1
    if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        return module.momentum is not None and module.affine
    return isinstance(module, (nn.Linear, nn.Dropout, *PARAMETER_FREE))


def supports(module: nn.Module) -> bool:
    """Whether ``module`` is a Sequential made only of the supported layers."""
    return isinstance(module, nn.Sequential) and all(_supported_leaf(leaf) for _, leaf in _leaves(module, ""))


class _Flow:
    """A tensor and its layout while it passes through the T copies."""

    def __init__(self, tensor: Tensor, copies: int, groups: int | None) -> None:
        self.tensor, self.layout, self.copies = tensor, "shared", copies
        if groups is not None:  # (G, B, C, H, W): each group's input repeated for its copies
            _, batch, *image = tensor.shape
            per_group = copies // groups
            grouped = tensor.transpose(0, 1).unsqueeze(2).expand(batch, groups, per_group, *image)
            self.tensor, self.layout = grouped.reshape(batch, copies * image[0], *image[1:]), "grouped"

    def per_copy(self) -> Tensor:
        """The tensor with a separate part for every copy: a shared one is repeated into the
        grouped layout (every copy needs its own channels from here on); others as they are."""
        if self.layout == "shared":
            self.tensor, self.layout = self.tensor.repeat(1, self.copies, 1, 1), "grouped"
        return self.tensor


def grouped_forward(
    sequential: nn.Module,
    prefix: str,
    params: Mapping[str, Tensor],
    buffers: Mapping[str, Tensor],
    inputs: Tensor,
    copies: int,
    generators: Sequence[torch.Generator] | None = None,
    groups: int | None = None,
) -> Tensor:
    """Output (T, B, F) of the T copies of ``sequential`` on the shared ``inputs`` (B, …), or on
    per-group inputs (G, B, …) when ``groups`` = G (copies split evenly, group-major).
    ``generators``: one per group (or one in all), for the dropout masks.

    ``params`` and ``buffers`` hold the copies' tensors stacked along a first dimension of size
    T, named ``prefix`` + the name inside ``sequential``. Batch-norm running statistics are
    updated in place in the stacked buffers, per copy, as each copy's own layer would.
    """
    flow = _Flow(inputs, copies, groups)
    for name, leaf in _leaves(sequential, prefix):
        if isinstance(leaf, nn.Conv2d):
            _conv(flow, leaf, params, name)
        elif isinstance(leaf, nn.Linear):
            _linear(flow, params, name)
        elif isinstance(leaf, (nn.BatchNorm1d, nn.BatchNorm2d)):
            _batch_norm(flow, leaf, params, buffers, name)
        elif isinstance(leaf, nn.Flatten):
            _flatten(flow)
        elif isinstance(leaf, nn.Dropout):
            flow.tensor = _dropout(flow, leaf, generators)  # one mask per copy
        else:
            flow.tensor = leaf(flow.tensor)
    if flow.layout != "stacked":
        raise ValueError("grouped_forward: the sequential must end in flat features (Flatten, Linear)")
    return flow.tensor


def _dropout(flow: _Flow, dropout: nn.Dropout, generators: Sequence[torch.Generator] | None) -> Tensor:
    tensor = flow.per_copy()
    if generators is None or not dropout.training or dropout.p == 0.0:
        return dropout(tensor)
    dim = 0 if flow.layout == "stacked" else 1  # the copies: (T, B, F) or (B, T·C, H, W)
    chunks = tensor.chunk(len(generators), dim=dim)
    masks = [
        torch.rand(chunk.shape, generator=generator, device=chunk.device, dtype=chunk.dtype)
        for chunk, generator in zip(chunks, generators)
    ]
    return tensor * keep_scale(torch.cat(masks, dim=dim), dropout.p)


def _conv(flow: _Flow, conv: nn.Conv2d, params: Mapping[str, Tensor], name: str) -> None:
    weight = params[f"{name}weight"]  # (T, O, C/g, k, k)
    bias = params.get(f"{name}bias")
    groups = conv.groups
    if flow.layout == "shared" and groups == 1:
        inputs = flow.tensor  # one ordinary convolution with T·O output channels
    else:
        inputs, groups = flow.per_copy(), groups * flow.copies
    flow.tensor = F.conv2d(
        inputs,
        weight.flatten(0, 1),
        None if bias is None else bias.flatten(),
        conv.stride,
        conv.padding,
        conv.dilation,
        groups,
    )
    flow.layout = "grouped"


def _flatten(flow: _Flow) -> None:
    tensor = flow.per_copy()
    batch = len(tensor)
    flow.tensor = tensor.reshape(batch, flow.copies, -1).transpose(0, 1)  # (T, B, C·H·W)
    flow.layout = "stacked"


def _linear(flow: _Flow, params: Mapping[str, Tensor], name: str) -> None:
    if flow.layout == "grouped":
        raise ValueError("grouped_forward: a Linear layer needs flat features (add a Flatten)")
    weight = params[f"{name}weight"]  # (T, out, in)
    bias = params.get(f"{name}bias")
    if flow.layout == "shared":
        out = torch.einsum("bi,toi->tbo", flow.tensor, weight)
        flow.tensor = out if bias is None else out + bias[:, None, :]
    elif bias is None:
        flow.tensor = torch.bmm(flow.tensor, weight.transpose(1, 2))
    else:
        flow.tensor = torch.baddbmm(bias[:, None, :], flow.tensor, weight.transpose(1, 2))
    flow.layout = "stacked"


def _batch_norm(
    flow: _Flow,
    norm: nn.modules.batchnorm._BatchNorm,
    params: Mapping[str, Tensor],
    buffers: Mapping[str, Tensor],
    name: str,
) -> None:
    assert norm.momentum is not None  # ``supports`` takes only batch norms with a momentum
    running_mean, running_var = buffers.get(f"{name}running_mean"), buffers.get(f"{name}running_var")
    use_batch_statistics = norm.training or running_mean is None
    weight, bias = params[f"{name}weight"].flatten(), params[f"{name}bias"].flatten()
    if flow.layout == "stacked":  # (T, B, C) → (B, T·C): channel t·C + c is copy t's channel c
        copies, batch, channels = flow.tensor.shape
        tensor = flow.tensor.transpose(0, 1).reshape(batch, copies * channels)
    else:
        tensor = flow.per_copy()
    out = F.batch_norm(
        tensor,
        None if running_mean is None else running_mean.view(-1),
        None if running_var is None else running_var.view(-1),  # views: updated in place, per copy
        weight,
        bias,
        use_batch_statistics,
        norm.momentum,
        norm.eps,
    )
    if norm.training and running_mean is not None:
        buffers[f"{name}num_batches_tracked"].add_(1)
    flow.tensor = out.reshape(batch, copies, channels).transpose(0, 1) if flow.layout == "stacked" else out
