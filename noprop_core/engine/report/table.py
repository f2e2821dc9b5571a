"""`noprop report RUN_DIR...`: runs side by side, seeds of one configuration pooled into one
row, against the paper where a row is the paper's configuration at the paper's budget.

Run directories whose resolved recipes differ only in ``seed`` form one row: its accuracies are
the mean ± standard error over every inference run of every seed (n of them), as Table 1 pools
3 seeds × 5 inference runs. Δ is shown only when the configuration is one the paper ran (its
CNN, softmax head, prediction target) *and* the budget is the paper's: its epochs (Table 3), all
of the real training data, the full test set. Otherwise the row says why not, in a footnote.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import tomli

from noprop_core.engine import run_directory
from noprop_core.engine.protocol import Spread, agrees, spread
from noprop_core.engine.report.paper import DIFFUSION_BLOCKS_SOURCE, SOURCE, PaperReference, paper_reference
from noprop_core.errors import NopropError
from noprop_core.plugin.registry import Registry
from noprop_core.recipe.conversion import structure_recipe

COLUMNS = (
    "run",
    "dataset",
    "variant",
    "embedding",
    "backbone",
    "epochs",
    "n",
    "test %",
    "train %",
    "wall",
    "peak memory",
    "paper test %",
    "Δ",
    "within spread",
)


@attrs.frozen
class RunSummary:
    run_dir: Path
    metrics: dict[str, Any]
    recipe: dict[str, Any]
    # From the recipe structured through the plugins (``load_summary`` with a registry); without
    # them, the plugin names and no paper value.
    variant_label: str = ""
    embedding_label: str = ""
    reference: PaperReference | None = None

    def accuracy_runs(self, split: str) -> list[float]:
        runs = self.metrics.get(f"{split}_accuracy_runs")
        value = self.metrics.get(f"{split}_accuracy")
        return list(runs) if runs else ([] if value is None else [value])

    def configuration(self) -> str:
        """What must be equal for runs to be seeds of one configuration: the recipe without its seeds."""
        recipe = {key: value for key, value in self.recipe.items() if key not in ("seed", "seeds")}
        return json.dumps([recipe, bool(self.metrics.get("data_stand_in"))], sort_keys=True)


@attrs.frozen
class Row:
    """One configuration: one run, or the seeds of a group pooled."""

    runs: tuple[RunSummary, ...]

    @property
    def first(self) -> RunSummary:
        return self.runs[0]

    @property
    def name(self) -> str:
        parents = {run.run_dir.parent for run in self.runs}
        if len(self.runs) > 1 and len(parents) == 1:
            return f"{next(iter(parents)).name} ({len(self.runs)} seeds)"
        return self.first.run_dir.name + (f" (+{len(self.runs) - 1} seeds)" if len(self.runs) > 1 else "")

    def spread(self, split: str) -> Spread | None:
        values = [value for run in self.runs for value in run.accuracy_runs(split)]
        return spread(values) if values else None

    @property
    def reference(self) -> PaperReference | None:
        return self.first.reference

    def budget_mismatch(self) -> str | None:
        """Why this row is not at the paper's budget, or None when it is."""
        metrics, recipe = self.first.metrics, self.first.recipe
        paper_epochs = self.reference.epochs if self.reference else None
        if metrics.get("data_stand_in"):
            return "stand-in data (the real files were absent)"
        if recipe["data"].get("subset"):
            return f"trained on the first {recipe['data']['subset']} examples only"
        if recipe.get("eval", {}).get("test_subset"):
            return f"tested on the first {recipe['eval']['test_subset']} test examples only"
        done = min(run.metrics["epochs_completed"] for run in self.runs)
        if paper_epochs is not None and done != paper_epochs:
            return f"{done} of the paper's {paper_epochs} epochs"
        return None

    def cells(self, footnotes: list[str]) -> tuple[str, ...]:
        m, recipe = self.first.metrics, self.first.recipe
        label = self.first.embedding_label
        reference = self.reference
        paper_epochs = reference.epochs if reference else None
        epochs = f"{m['epochs_completed']}" + (f"/{paper_epochs}" if paper_epochs else "")
        test, train = self.spread("test"), self.spread("train")
        paper = reference.values if reference else None
        delta = within = ""
        if paper is not None and test is not None:
            reason = self.budget_mismatch()
            if reason is None:
                delta = f"{test.mean - paper.test:+.2f}"
                verdict = agrees(test, paper.test, paper.test_se)
                within = {True: "yes", False: "no", None: "(one value)"}[verdict]
            else:
                footnotes.append(f"{self.name}: no Δ: {reason}")
                delta = f"[{len(footnotes)}]"
        walls = [run.metrics["wall_seconds"] for run in self.runs]
        peak = max(run.metrics["peak_memory_bytes"] for run in self.runs)
        return (
            self.name,
            m["dataset"] + (" (stand-in)" if m.get("data_stand_in") else ""),
            self.first.variant_label,
            label,
            recipe["model"]["backbone"]["name"],
            epochs,
            str(test.n if test else 0),
            test.text() if test else "",
            train.text() if train else "",
            f"{walls[0]:.0f} s" if len(walls) == 1 else f"{sum(walls) / len(walls):.0f} s per run",
            f"{peak / 2**30:.2f} GiB",
            "" if paper is None else f"{paper.test:.2f} ± {paper.test_se:.2f}",
            delta,
            within,
        )


def group_rows(runs: list[RunSummary]) -> list[Row]:
    """Runs of one configuration that differ only in seed, as one row each, in first-seen order."""
    groups: dict[str, list[RunSummary]] = {}
    for run in runs:
        groups.setdefault(run.configuration(), []).append(run)
    return [Row(tuple(members)) for members in groups.values()]


def load_summary(run_dir: Path, registry: Registry | None = None) -> RunSummary:
    """A run folder's metrics and recipe; with the plugins' registry, also its variant's display
    name and the published value it compares with, as the plugins declare them."""
    metrics_path, recipe_path = run_dir / run_directory.METRICS, run_dir / run_directory.RECIPE
    if not metrics_path.is_file() or not recipe_path.is_file():
        raise NopropError(f"{run_dir}: not a run directory (needs {run_directory.METRICS} and {run_directory.RECIPE})")
    try:
        metrics = json.loads(metrics_path.read_text())
        recipe = tomli.loads(recipe_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, tomli.TOMLDecodeError) as exc:
        raise NopropError(f"{run_dir}: unreadable run files ({exc})") from None
    problem = _malformed(metrics, recipe)
    if problem:
        raise NopropError(f"{run_dir}: not a noprop run's files ({problem})")
    variant, embedding, reference = metrics["variant"], recipe["model"].get("embedding", {}).get("name", "?"), None
    if registry is not None:
        try:
            structured = structure_recipe(copy.deepcopy(recipe), registry, str(recipe_path))  # read above
        except NopropError:  # e.g. a plugin no longer installed: the run is still shown
            structured = None
        if structured is not None:
            variant, embedding = structured.variant.display_name(), structured.model.embedding.display_name()
            reference = paper_reference(structured)
    return RunSummary(run_dir, metrics, recipe, variant, embedding, reference)


METRICS_KEYS: dict[str, type | tuple[type, ...]] = {
    "variant": str,
    "dataset": str,
    "epochs_completed": int,
    "history": list,
    "wall_seconds": (int, float),
}
RECIPE_TABLES = ("data", "model", "variant", "train")


def _malformed(metrics: object, recipe: dict[str, Any]) -> str | None:
    if not isinstance(metrics, dict):
        return f"{run_directory.METRICS} holds {type(metrics).__name__}, expected an object"
    for key, kind in METRICS_KEYS.items():
        if not isinstance(metrics.get(key), kind) or isinstance(metrics.get(key), bool):
            return f"{run_directory.METRICS}: {key}: missing or not a {getattr(kind, '__name__', 'number')}"
    if not all(isinstance(record, dict) for record in metrics["history"]):
        return f"{run_directory.METRICS}: history: expected a list of objects"
    for table in RECIPE_TABLES:
        if not isinstance(recipe.get(table), dict):
            return f"{run_directory.RECIPE}: [{table}] missing"
    return None


def load_runs(paths: list[Path], warn: Callable[[str], None], registry: Registry | None = None) -> list[RunSummary]:
    """Every readable run among ``paths`` (seed groups expanded); the others are skipped with a
    one-line warning each. None at all is one error line, which says why (no warnings before it)."""
    runs, skipped = [], []
    for path in expand(paths):
        try:
            runs.append(load_summary(path, registry))
        except NopropError as exc:
            skipped.append(str(exc))
    if not runs:
        more = f"; {len(skipped) - 1} more skipped" if len(skipped) > 1 else ""
        why = f" ({skipped[0]}{more})" if skipped else ""
        raise NopropError(f"report: no run to report among {', '.join(map(str, paths))}{why}")
    for reason in skipped:
        warn(f"noprop: warning: skipped {reason}")
    return runs


def expand(paths: list[Path]) -> list[Path]:
    """A seed group's folder (holding protocol.json) stands for its seed-<N>/ run directories."""
    expanded = []
    for path in paths:
        if (path / "protocol.json").is_file() and not (path / run_directory.METRICS).is_file():
            expanded += sorted(p for p in path.glob("seed-*") if p.is_dir())
        else:
            expanded.append(path)
    return expanded


def table_rows(rows: list[Row]) -> tuple[list[tuple[str, ...]], list[str]]:
    footnotes: list[str] = []
    return [row.cells(footnotes) for row in rows], footnotes


CAPTION = (
    f"paper: {SOURCE}, mean ± standard error of 3 seeds × 5 inference runs (DiffusionBlocks and "
    f"classifier rows: {DIFFUSION_BLOCKS_SOURCE}, Tables 1 and 6, no standard error given); n: values "
    "pooled here (seeds × inference runs); Δ = test − paper; within spread: |Δ| ≤ 2·√(se² + se_paper²); "
    "epochs: done / the paper's (Table 3)"
)


def markdown_table(rows: list[Row]) -> str:
    cells, footnotes = table_rows(rows)
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    notes = "".join(f"\n[{index}] {note}" for index, note in enumerate(footnotes, 1))
    return "\n".join(lines) + "\n\n" + CAPTION + ".\n" + (notes.lstrip("\n") + "\n" if notes else "")
