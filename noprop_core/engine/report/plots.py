"""`noprop report --plot DIR`: accuracy per epoch, accuracy along the inference chain, schedules."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from noprop_core.engine.report.table import Row, RunSummary


def write_plots(runs: list[RunSummary], out_dir: Path, rows: Sequence[Row] = ()) -> list[Path]:
    """Every plot that applies to these runs, as PNG files in ``out_dir``; returns the files."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    with_matrix = [run for run in runs if run.metrics.get("confusion_matrix")][:4]
    reading = [run for run in runs if any(r.get("image_accuracy") for r in run.metrics["history"])][:4]
    groups = [row for row in rows if len(row.runs) > 1]
    figures: dict[str, Callable[[], Any]] = {
        "accuracy.png": lambda: accuracy_figure(plt, runs),
        "losses.png": lambda: loss_figure(plt, runs),
        **({"confusion.png": lambda: confusion_figure(plt, with_matrix)} if with_matrix else {}),
        "chain_accuracy.png": lambda: chain_figure(plt, runs),
        "schedule.png": lambda: schedule_figure(plt, runs),
        **({"image_accuracy.png": lambda: image_accuracy_figure(plt, reading)} if reading else {}),
        **({"seed_groups.png": lambda: seed_band_figure(plt, groups)} if groups else {}),
    }
    written = []
    for name, make in figures.items():
        figure = make()
        figure.tight_layout()
        figure.savefig(out_dir / name, dpi=120)
        plt.close(figure)
        written.append(out_dir / name)
    return written


def chain_figure(plt: Any, runs: list[RunSummary]) -> Any:
    """Test accuracy of the head read at every state of the inference chain, last evaluated epoch."""
    figure, axis = plt.subplots(figsize=(7, 4.5))
    for run in runs:
        chains = [r for r in run.metrics["history"] if r.get("chain_accuracy")]
        if chains:
            steps, values = zip(*chains[-1]["chain_accuracy"])
            last = max(steps) or 1
            label = f"{run.run_dir.name} (epoch {chains[-1]['epoch']})"
            axis.plot([s / last for s in steps], values, marker=".", label=label)
    axis.set(
        xlabel="position along the inference chain (t / T)",
        ylabel="test accuracy of the head at z_t (%)",
        title="Accuracy along the inference chain",
    )
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7)
    return figure


def schedule_figure(plt: Any, runs: list[RunSummary]) -> Any:
    """ᾱ(t) and log SNR(t) of each run's (possibly learned) schedule."""
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for run in runs:
        schedule = run.metrics.get("schedule_curve")
        if schedule:
            left.plot(schedule["t"], schedule["alpha_bar"], label=run.run_dir.name)
            right.plot(schedule["t"], schedule["log_snr"], label=run.run_dir.name)
    left.set(xlabel="t", ylabel="ᾱ(t)", title="Noise schedule ᾱ(t)")
    right.set(xlabel="t", ylabel="log SNR(t)", title="log SNR(t) (clipped below at −15: at t = 0, ᾱ → 0)")
    right.set_ylim(bottom=-15)
    for axis in (left, right):
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    return figure


def image_accuracy_figure(plt: Any, runs: list[RunSummary]) -> Any:
    """How much each block reads the image: its test accuracy with the label input pure noise,
    per evaluated epoch, one panel per run and one colour per block (chance: 100 / classes)."""
    figure, axes = plt.subplots(1, len(runs), figsize=(5.5 * len(runs), 4), squeeze=False)
    for axis, run in zip(axes[0], runs):
        history = [r for r in run.metrics["history"] if r.get("image_accuracy")]
        blocks = len(history[-1]["image_accuracy"])
        for block in range(blocks):
            axis.plot(
                [r["epoch"] for r in history],
                [r["image_accuracy"][block] for r in history],
                marker="." if len(history) < 30 else None,
                color=f"C{block % 10}",
                label=f"block {block + 1}",
            )
        name = run.run_dir.name
        title = f"{run.run_dir.parent.name}/{name}" if name.startswith("seed-") else name
        axis.set(xlabel="epoch", ylabel="test accuracy from the image alone (%)", ylim=(0, 100), title=title)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7, ncol=2)
    figure.suptitle("How much each block reads the image (label input: pure noise)")
    return figure


def seed_band_figure(plt: Any, groups: list[Row]) -> Any:
    """Test accuracy per epoch of each seed group: the mean over seeds with a band of ± one
    standard error across seeds, each seed as a thin line; the right panel zooms into the
    second half of training, where the seeds' spread is what a reader wants to see."""
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for index, row in enumerate(groups):
        draw_seed_band(axes, row, f"C{index % 10}")
    axes[0].set(xlabel="epoch", ylabel="test accuracy (%)", title="Seed groups: mean ± standard error across seeds")
    axes[1].set(xlabel="epoch", ylabel="test accuracy (%)", title="Second half of training (zoomed)")
    for axis in axes:
        axis.grid(alpha=0.3)
        axis.xaxis.get_major_locator().set_params(integer=True)
    axes[0].legend(fontsize=7)
    return figure


def draw_seed_band(axes: Any, row: Row, colour: str) -> None:
    """One seed group on both panels: each seed thin, the mean with its ± se band."""
    from noprop_core.engine.protocol import spread

    curves = [
        {r["epoch"]: r["test_accuracy"] for r in run.metrics["history"] if r.get("test_accuracy") is not None}
        for run in row.runs
    ]
    epochs = sorted(set.intersection(*(set(points) for points in curves)))
    spreads = [spread([points[epoch] for points in curves]) for epoch in epochs]
    means = [s.mean for s in spreads]
    low = [s.mean - (s.standard_error or 0.0) for s in spreads]
    high = [s.mean + (s.standard_error or 0.0) for s in spreads]
    late = [i for i, epoch in enumerate(epochs) if epoch > epochs[-1] / 2] or list(range(len(epochs)))
    for axis, shown in zip(axes, (range(len(epochs)), late)):

        def pick(values: list[Any], shown: Sequence[int] = shown) -> list[Any]:
            return [values[i] for i in shown]

        for points in curves:
            axis.plot(pick(epochs), pick([points[e] for e in epochs]), color=colour, alpha=0.35, linewidth=0.8)
        label = f"{row.name}: mean of {len(curves)} seeds"
        axis.plot(pick(epochs), pick(means), color=colour, marker="o", markersize=3, label=label)
        axis.fill_between(pick(epochs), pick(low), pick(high), color=colour, alpha=0.25)


def accuracy_figure(plt: Any, runs: list[RunSummary]) -> Any:
    """Test (solid) and train (dashed) accuracy per epoch, one colour per run, and (dotted) the
    test accuracy of the nearest class embedding to the state the head reads: where it lies above
    the solid line, the head loses what the chain found. The y range fits the values (at least
    two points wide) so that differences show."""
    figure, axis = plt.subplots(figsize=(7, 4.5))
    values = []
    for index, run in enumerate(runs):
        styles = (("test_accuracy", "-", "test"), ("train_accuracy", "--", "train"))
        for key, style, label in (*styles, ("nearest_embedding_accuracy", ":", "nearest embedding")):
            points = [(r["epoch"], r[key]) for r in run.metrics["history"] if r.get(key) is not None]
            if points:
                values += [v for _, v in points]
                axis.plot(
                    *zip(*points),
                    style,
                    color=f"C{index % 10}",
                    marker="o",
                    markersize=3,
                    label=f"{run.run_dir.name} {label}",
                )
    if values:
        low, high = min(values), max(values)
        pad = max(1.0, (high - low) * 0.1)
        axis.set_ylim(max(0.0, low - pad), min(100.0, high + pad) if high + pad > low + 2 else low + 2)
    title = "Accuracy per epoch (test solid, train dashed,\nnearest class embedding of the head's state dotted)"
    axis.set(xlabel="epoch", ylabel="accuracy (%)", title=title)
    axis.xaxis.get_major_locator().set_params(integer=True)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7)
    return figure


def loss_figure(plt: Any, runs: list[RunSummary]) -> Any:
    """Each block's loss per term and epoch, log scale: one row per run (at most four), one panel
    per term that changes (a term constant by construction, like the KL of fixed one-hot labels,
    would be a flat line). Blocks coloured from early (light) to late (dark)."""
    shown = runs[:4]
    rows = []
    for run in shown:
        history = run.metrics["history"]
        units = list(history[0]["loss_per_unit"]) if history else []
        terms = [
            term
            for term in (history[0]["loss_per_unit"][units[0]] if units else {})
            if len({round(r["loss_per_unit"][u][term], 12) for r in history for u in units}) > 1
        ]
        rows.append((run, units, terms or ["total"] if not terms and units else terms))
    columns = max((len(terms) for _, _, terms in rows), default=1) or 1
    figure, axes = plt.subplots(
        len(rows) or 1, columns, figsize=(4.2 * columns, 3.4 * max(1, len(rows))), squeeze=False
    )
    colours = plt.get_cmap("viridis_r")
    for row_axes, (run, units, terms) in zip(axes, rows):
        epochs = [r["epoch"] for r in run.metrics["history"]]
        for axis, term in zip(row_axes, terms):
            for position, unit in enumerate(units):
                series = [r["loss_per_unit"][unit].get(term) for r in run.metrics["history"]]
                if any(v is None or v <= 0 for v in series):
                    continue
                axis.plot(
                    epochs,
                    series,
                    color=colours(0.15 + 0.85 * position / max(1, len(units) - 1)),
                    marker="." if len(epochs) < 30 else None,
                    label=unit,
                )
            axis.set_yscale("log")
            axis.set(xlabel="epoch", ylabel=f"{term} loss", title=f"{run.run_dir.name}: {term}")
            axis.xaxis.get_major_locator().set_params(integer=True)
            axis.grid(alpha=0.3, which="both")
        for axis in row_axes[len(terms) :]:
            axis.axis("off")
        if terms and len(units) > 1:
            row_axes[0].legend(fontsize=6, ncol=2)
    return figure


def confusion_figure(plt: Any, runs: list[RunSummary]) -> Any:
    """The final test evaluation's confusion matrix of each run (rows: true class), as the
    fraction of each true class, so classes of different sizes compare."""
    import numpy

    figure, axes = plt.subplots(1, len(runs), figsize=(5.2 * len(runs), 4.6), squeeze=False)
    for axis, run in zip(axes[0], runs):
        counts = numpy.asarray(run.metrics["confusion_matrix"], dtype=float)
        fractions = counts / counts.sum(axis=1, keepdims=True).clip(min=1)
        image = axis.imshow(fractions, cmap="Blues", vmin=0, vmax=1)
        classes = len(counts)
        if classes <= 20:
            for (true, predicted), value in numpy.ndenumerate(counts):
                if value:
                    axis.text(
                        predicted,
                        true,
                        f"{int(value)}",
                        ha="center",
                        va="center",
                        fontsize=6,
                        color="white" if fractions[true, predicted] > 0.5 else "black",
                    )
            axis.set_xticks(range(classes))
            axis.set_yticks(range(classes))
        accuracy = 100 * numpy.trace(counts) / max(1, counts.sum())
        axis.set(xlabel="predicted class", ylabel="true class", title=f"{run.run_dir.name}: {accuracy:.2f} % correct")
        figure.colorbar(image, ax=axis, fraction=0.046, label="fraction of the true class")
    return figure
