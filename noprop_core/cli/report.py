"""`noprop report RUN_DIR...`: runs side by side, against the paper where a run matches it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs
import tomli

from noprop_core.cli.paper import EPOCHS, SOURCE, paper_accuracy
from noprop_core.engine import run_directory
from noprop_core.errors import NopropError

COLUMNS = (
    "run",
    "dataset",
    "variant",
    "embedding",
    "epochs",
    "test %",
    "train %",
    "wall",
    "peak memory",
    "paper %",
    "Δ",
)


@attrs.frozen
class RunSummary:
    run_dir: Path
    metrics: dict[str, Any]
    recipe: dict[str, Any]

    @property
    def paper(self) -> float | None:
        return paper_accuracy(self.recipe)

    @property
    def variant_label(self) -> str:
        """The variant's name, with its prediction target where it is not the paper's."""
        target = self.recipe["variant"].get("target", "embedding")
        return self.metrics["variant"] + ("" if target == "embedding" else f" ({target} target)")

    def row(self) -> tuple[str, ...]:
        m = self.metrics
        embedding = self.recipe["model"]["embedding"]
        label = embedding["name"] + (f"-{embedding['dim']}" if "dim" in embedding else "")
        paper_epochs = EPOCHS.get((m["dataset"], m["variant"]))
        epochs = f"{m['epochs_completed']}" + (f"/{paper_epochs}" if paper_epochs else "")
        test, paper = m.get("test_accuracy"), self.paper
        return (
            self.run_dir.name, m["dataset"] + (" (stand-in)" if m.get("data_stand_in") else ""), self.variant_label, label,
            epochs, percent(test), percent(m.get("train_accuracy")), f"{m['wall_seconds']:.0f} s",
            f"{m['peak_memory_bytes'] / 2**30:.2f} GiB", percent(paper),
            f"{test - paper:+.2f}" if test is not None and paper is not None else "",
        )  # fmt: skip


def percent(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def load_run(run_dir: Path) -> RunSummary:
    metrics_path, recipe_path = run_dir / run_directory.METRICS, run_dir / run_directory.RECIPE
    if not metrics_path.is_file() or not recipe_path.is_file():
        raise NopropError(f"{run_dir}: not a run directory (needs {run_directory.METRICS} and {run_directory.RECIPE})")
    try:
        metrics = json.loads(metrics_path.read_text())
        recipe = tomli.loads(recipe_path.read_text())
    except (json.JSONDecodeError, tomli.TOMLDecodeError) as exc:
        raise NopropError(f"{run_dir}: unreadable run files ({exc})") from None
    return RunSummary(run_dir, metrics, recipe)


def markdown_table(runs: list[RunSummary]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(run.row()) + " |" for run in runs]
    note = (f"\nepochs: completed / the paper's (Table 3). paper %: {SOURCE} (mean of 3 seeds × 5 inference runs); "
            f"Δ = test − paper.")  # fmt: skip
    return "\n".join(lines) + "\n" + note + "\n"
