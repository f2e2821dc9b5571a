"""The tracker contract. The base class records nothing; it is the `none` tracker."""

from __future__ import annotations

from typing import Any


class Tracker:
    """Receives hyperparameters once, then scalar metrics; ``close`` is always called."""

    run_id: str | None = None

    def start(self, hparams: dict[str, Any]) -> None:
        """Called once before training with the resolved recipe as plain builtins."""

    def track(self, value: float, *, name: str, step: int, epoch: int, context: dict[str, Any]) -> None:
        """One scalar. Subset, block and term go in ``context``, not in ``name``."""

    def close(self) -> None:
        """Called once, also after errors and interruptions."""
