"""The CPU max-pool gives nn.MaxPool2d(2)'s values and gradients, ties and odd sizes included."""

import pytest
import torch
import torch.nn.functional as F
from torch.func import vmap

from noprop_core.model.max_pool import MaxPool2x2


def _reference_and_ours(x: torch.Tensor, grad: torch.Tensor):
    a = x.clone().requires_grad_()
    b = x.clone().requires_grad_()
    expected = F.max_pool2d(a, 2)
    got = MaxPool2x2()(b)
    expected.backward(grad)
    got.backward(grad)
    return expected, got, a.grad, b.grad


@pytest.mark.parametrize("shape", [(3, 5, 8, 8), (2, 4, 7, 9), (4, 6, 5)])
def test_values_and_gradients_equal_pytorchs(shape):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=generator)
    out_shape = (*shape[:-2], shape[-2] // 2, shape[-1] // 2)
    grad = torch.randn(out_shape, generator=generator)
    expected, got, expected_grad, got_grad = _reference_and_ours(x, grad)
    assert torch.equal(got, expected)
    assert torch.equal(got_grad, expected_grad)
    assert got_grad.abs().sum() > 0


def test_ties_send_the_gradient_to_the_first_maximum_as_pytorch_does():
    # Every pattern of ties in a window: values from {0, 1} in all 16 arrangements, after a ReLU
    # the usual case (many zeros).
    patterns = torch.tensor([[(i >> k) & 1 for k in range(4)] for i in range(16)], dtype=torch.float32)
    x = patterns.reshape(16, 2, 2).permute(1, 0, 2).reshape(1, 1, 2, 32)  # 16 windows side by side
    grad = torch.arange(1.0, 17.0).reshape(1, 1, 1, 16)
    expected, got, expected_grad, got_grad = _reference_and_ours(x, grad)
    assert torch.equal(got, expected)
    assert torch.equal(got_grad, expected_grad)


def test_without_gradient_and_under_vmap_it_still_equals_pytorch():
    x = torch.randn(3, 2, 4, 6, 6)
    with torch.no_grad():
        assert torch.equal(MaxPool2x2()(x[0]), F.max_pool2d(x[0], 2))
    pool = MaxPool2x2()
    weights = torch.randn(3, 1, requires_grad=True)

    def loss(w, images):
        return (pool(images * w) ** 2).sum()

    got = vmap(torch.func.grad(loss))(weights.detach(), x)
    expected = torch.stack(
        [torch.func.grad(lambda w, i: (F.max_pool2d(i * w, 2) ** 2).sum())(w, i) for w, i in zip(weights.detach(), x)]
    )
    torch.testing.assert_close(got, expected)


def test_on_a_cpu_it_takes_the_quarters_and_an_export_keeps_pytorchs_operation():
    pool = MaxPool2x2()
    for x in (torch.randn(2, 3, 4, 4, requires_grad=True), torch.randn(3, 4, 4, requires_grad=True)):
        assert type(pool(x).grad_fn).__name__ == "_MaxPool2x2Backward"
    traced = torch.jit.trace(pool, torch.randn(1, 2, 4, 4))
    assert "aten::max_pool2d" in str(traced.graph) and "aten::maximum" not in str(traced.graph)
    with pytest.raises(RuntimeError):  # five dimensions: refused as nn.MaxPool2d refuses them
        pool(torch.randn(1, 1, 2, 4, 4))
