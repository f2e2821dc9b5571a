"""`noprop report --plot DIR`: accuracy per epoch, accuracy along the inference chain, schedules."""

from __future__ import annotations

from pathlib import Path

from noprop_core.cli.report import Row, RunSummary


def write_plots(runs: list[RunSummary], out_dir: Path, rows: list[Row] = ()) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []

    def save(figure, name: str) -> None:
        figure.tight_layout()
        figure.savefig(out_dir / name, dpi=120)
        plt.close(figure)
        written.append(out_dir / name)

    figure, axis = plt.subplots(figsize=(7, 4.5))
    for run in runs:
        history = run.metrics["history"]
        for key, style in (("test_accuracy", "-"), ("train_accuracy", ":")):
            points = [(r["epoch"], r[key]) for r in history if r.get(key) is not None]
            if points:
                axis.plot(
                    *zip(*points), style, marker="o", markersize=3, label=f"{run.run_dir.name} {key.split('_')[0]}"
                )
    axis.set(xlabel="epoch", ylabel="accuracy (%)", title="Accuracy per epoch")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7)
    save(figure, "accuracy.png")

    figure, axis = plt.subplots(figsize=(7, 4.5))
    for run in runs:
        chains = [r for r in run.metrics["history"] if r.get("chain_accuracy")]
        if chains:
            steps, values = zip(*chains[-1]["chain_accuracy"])
            last = max(steps) or 1
            axis.plot(
                [s / last for s in steps], values, marker=".", label=f"{run.run_dir.name} (epoch {chains[-1]['epoch']})"
            )
    axis.set(xlabel="position along the inference chain (t / T)", ylabel="test accuracy of the head at z_t (%)",
             title="Accuracy along the inference chain")  # fmt: skip
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7)
    save(figure, "chain_accuracy.png")

    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for run in runs:
        schedule = run.metrics.get("schedule_curve")
        if schedule:
            left.plot(schedule["t"], schedule["alpha_bar"], label=run.run_dir.name)
            right.plot(schedule["t"], schedule["log_snr"], label=run.run_dir.name)
    left.set(xlabel="t", ylabel="ᾱ(t)", title="Noise schedule ᾱ(t)")
    right.set(xlabel="t", ylabel="log SNR(t)", title="log SNR(t)")
    for axis in (left, right):
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    save(figure, "schedule.png")

    groups = [row for row in rows if len(row.runs) > 1]
    if groups:
        save(seed_band_figure(plt, groups), "seed_groups.png")
    return written


def seed_band_figure(plt, groups: list[Row]):
    """Test accuracy per epoch of each seed group: the mean over seeds with a band of ± one
    standard error across seeds, each seed as a thin line; the right panel zooms into the
    second half of training, where the seeds' spread is what a reader wants to see."""
    from noprop_core.engine.protocol import spread

    figure, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for index, row in enumerate(groups):
        colour = f"C{index % 10}"
        curves = [
            {r["epoch"]: r["test_accuracy"] for r in run.metrics["history"] if r.get("test_accuracy") is not None}
            for run in row.runs
        ]
        epochs = sorted(set.intersection(*(set(points) for points in curves)))
        spreads = [spread([points[epoch] for points in curves]) for epoch in epochs]
        means = [s.mean for s in spreads]
        errors = [s.standard_error or 0.0 for s in spreads]
        late = [i for i, epoch in enumerate(epochs) if epoch > epochs[-1] / 2] or list(range(len(epochs)))
        for axis, shown in zip(axes, (range(len(epochs)), late)):
            pick = lambda values, shown=shown: [values[i] for i in shown]  # noqa: E731
            for points in curves:
                axis.plot(pick(epochs), pick([points[e] for e in epochs]), color=colour, alpha=0.35, linewidth=0.8)
            axis.plot(pick(epochs), pick(means), color=colour, marker="o", markersize=3,
                      label=f"{row.name}: mean of {len(curves)} seeds")  # fmt: skip
            axis.fill_between(pick(epochs), pick([m - e for m, e in zip(means, errors)]),
                              pick([m + e for m, e in zip(means, errors)]), color=colour, alpha=0.25)  # fmt: skip
    axes[0].set(xlabel="epoch", ylabel="test accuracy (%)", title="Seed groups: mean ± standard error across seeds")
    axes[1].set(xlabel="epoch", ylabel="test accuracy (%)", title="Second half of training (zoomed)")
    for axis in axes:
        axis.grid(alpha=0.3)
        axis.xaxis.get_major_locator().set_params(integer=True)
    axes[0].legend(fontsize=7)
    return figure
