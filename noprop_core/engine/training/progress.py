"""Progress reports from the trainer: the interface, and its plain form (one line per epoch, for
logs and pipes). The command line shows live bars instead (``noprop_core.cli.progress``)."""

from __future__ import annotations

import sys
from typing import TextIO


def loss_text(loss: dict[str, float]) -> str:
    return " ".join(f"{name}={value:.4g}" for name, value in loss.items())


READOUT_GAP_SHOWN = 2.0  # points: a larger read-out gap is named on the epoch's line


def accuracy_text(accuracy: float | None, nearest: float | None = None) -> str:
    """The epoch line's accuracy, naming the nearest class embedding's when the head lags it."""
    if accuracy is None:
        return "test accuracy —"
    if nearest is not None and nearest - accuracy >= READOUT_GAP_SHOWN:
        return f"test accuracy {accuracy:.2f}% (the head lags: nearest class embedding {nearest:.2f}%)"
    return f"test accuracy {accuracy:.2f}%"


class Progress:
    """Plain progress: one line per epoch, for logs and pipes."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr  # looked up now, not at import: callers may redirect it

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def start_epoch(self, epoch: int, epochs: int) -> None:
        pass

    def start_phase(self, label: str, index: int, count: int, batches: int) -> None:
        pass

    def advance(self) -> None:
        pass

    wants_running_loss = False  # live displays set it: the trainer then reports a running mean loss

    def running_loss(self, unit: str, loss: float) -> None:
        """The mean total loss of ``unit`` so far in this epoch (live displays only)."""

    def end_epoch(
        self,
        epoch: int,
        epochs: int,
        loss: dict[str, float],
        test_accuracy: float | None,
        seconds: float,
        nearest: float | None = None,
    ) -> None:
        print(
            f"epoch {epoch}/{epochs}  {loss_text(loss)}  {accuracy_text(test_accuracy, nearest)}  ({seconds:.1f} s training)",
            file=self.stream,
            flush=True,
        )

    def message(self, text: str) -> None:
        print(text, file=self.stream, flush=True)


class EvaluationProgress:
    """Progress of an evaluation, counted in images; plain form: a line at every quarter."""

    LINES = 4

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.total = self.done = self.reported = 0

    def __enter__(self) -> EvaluationProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def start(self, total: int) -> None:
        self.total, self.done, self.reported = total, 0, 0

    def __call__(self, images: int) -> None:
        self.done += images
        quarter = self.done * self.LINES // max(self.total, 1)
        if quarter > self.reported:
            self.reported = quarter
            print(f"evaluated {self.done}/{self.total} images", file=self.stream, flush=True)
