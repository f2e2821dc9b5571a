"""The tracker contract (torch-free: a tracker's own process need not import torch).

A tracker plugin returns a ``Tracker``; the base class records nothing (it is the `none`
tracker). What is tracked is decided by ``noprop_core.engine.training.tracking.TrainingTracking``.
Images arrive as (C, H, W) values in [0, 1]: a torch tensor in the training process, a numpy
array in a tracker's own process (``noprop_core.engine.training.tracker_process``); both have
``.shape`` and convert with ``numpy.asarray``.
"""

from __future__ import annotations

from typing import Any


class Tracker:
    """Receives hyperparameters once, then metrics and images; ``close`` is always called."""

    run_id: str | None = None

    def start(self, hparams: dict[str, Any]) -> None:
        """Called once before training with the resolved recipe as plain builtins."""

    def track(self, value: float, *, name: str, step: int, epoch: int, context: dict[str, Any]) -> None:
        """One scalar."""

    def track_image(self, image: Any, *, name: str, step: int, epoch: int, context: dict[str, Any]) -> None:
        """One image, (C, H, W) with values in [0, 1]."""

    def close(self) -> None:
        """Called once, also after errors and interruptions."""

    def metrics_fields(self) -> dict[str, Any]:
        """Extra keys for metrics.json (e.g. where the tracked run lives)."""
        return {}
