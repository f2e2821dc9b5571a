"""Label embeddings: the class embedding matrix W_Embed (num_classes × dim)."""

from __future__ import annotations

from torch import Tensor, nn


class LabelEmbedding(nn.Module):
    """Holds W_Embed. ``weight`` is the (m, d) matrix; ``forward(y)`` returns rows u_y.

    Subclasses register ``weight`` as an nn.Parameter when learnable, else as a buffer.
    """

    weight: Tensor

    @property
    def num_classes(self) -> int:
        return self.weight.shape[0]

    @property
    def dim(self) -> int:
        return self.weight.shape[1]

    @property
    def learnable(self) -> bool:
        return isinstance(self.weight, nn.Parameter) and self.weight.requires_grad

    def forward(self, labels: Tensor) -> Tensor:
        return self.weight[labels]
