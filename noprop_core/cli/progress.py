"""Progress display: rich bars (epoch / block / batch, with loss) on a terminal, plain lines otherwise."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.progress import Progress as RichBars

from noprop_core.engine.training.progress import EvaluationProgress, Progress, accuracy_text, loss_text


class RichProgress(Progress):
    """Three live bars: epochs, units (blocks) within the epoch, minibatches within the unit."""

    def __init__(self, console: Console) -> None:
        super().__init__()
        self.console = console
        self.bars = RichBars(
            TextColumn("{task.description:>12}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[note]}"),
            console=console,
        )
        self.epoch_task: Any = None  # rich TaskIDs, once the bars exist
        self.phase_task: Any = None
        self.batch_task: Any = None
        self.phase_count = 0

    def __enter__(self) -> RichProgress:
        self.bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bars.stop()

    def start_epoch(self, epoch: int, epochs: int) -> None:
        if self.epoch_task is None:
            self.epoch_task = self.bars.add_task("epoch", total=epochs, completed=epoch - 1, note="")

    def start_phase(self, label: str, index: int, count: int, batches: int) -> None:
        if self.phase_task is None:
            self.phase_task = self.bars.add_task("unit", total=count, note="")
            self.batch_task = self.bars.add_task("batch", total=batches, note="")
        self.phase_count = count
        self.bars.update(self.phase_task, total=count, completed=index - 1, note=label)
        self.bars.update(self.batch_task, total=batches, completed=0, note="")

    wants_running_loss = True

    def advance(self) -> None:
        self.bars.advance(self.batch_task)

    def running_loss(self, unit: str, loss: float) -> None:
        self.bars.update(self.batch_task, note=f"running loss {loss:.4g}")

    def end_epoch(
        self,
        epoch: int,
        epochs: int,
        loss: dict[str, float],
        test_accuracy: float | None,
        seconds: float,
        nearest: float | None = None,
    ) -> None:
        self.bars.update(self.phase_task, completed=self.phase_count)
        self.bars.update(
            self.epoch_task, completed=epoch, note=f"{accuracy_text(test_accuracy)}  loss {loss['total']:.4g}"
        )
        self.console.print(
            f"epoch {epoch}/{epochs}  {loss_text(loss)}  {accuracy_text(test_accuracy, nearest)}  ({seconds:.1f} s training)"
        )

    def message(self, text: str) -> None:
        self.console.print(text)


def make_progress(console: Console) -> Progress:
    return RichProgress(console) if console.is_terminal else Progress()


class RichEvaluationProgress(EvaluationProgress):
    """One live bar over the images to evaluate (all passes together), with its ETA."""

    def __init__(self, console: Console) -> None:
        super().__init__()
        self.bars = RichBars(
            TextColumn("  evaluating"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("images"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=console,
        )
        self.task: Any = None  # a rich TaskID, once the bar exists

    def __enter__(self) -> RichEvaluationProgress:
        self.bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bars.stop()

    def start(self, total: int) -> None:
        self.task = self.bars.add_task("evaluating", total=total)

    def __call__(self, images: int) -> None:
        self.bars.advance(self.task, images)


def make_evaluation_progress(console: Console) -> EvaluationProgress:
    return RichEvaluationProgress(console) if console.is_terminal else EvaluationProgress()
