"""What a backbone factory is told about the block it must build."""

from __future__ import annotations

import attrs


@attrs.frozen(kw_only=True)
class BlockSpec:
    image_shape: tuple[int, int, int]  # (channels, height, width)
    embedding_dim: int
    num_classes: int
    time_conditioned: bool = False  # continuous-time variants pass t as a third input
