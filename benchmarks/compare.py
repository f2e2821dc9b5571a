"""Methods (or settings) side by side at equal budget: each configuration is a shipped recipe plus
``--set`` overrides, trained for 3 seeds with the ordinary ``noprop run --seeds``; the table gives
the final test accuracy (mean ± se over seeds × inference runs), the head's read-out gap, the
epochs each seed needed to reach a target accuracy, each block's accuracy from the image alone,
and the training compute of a run (block passes, FLOPs, training seconds on one thread); the plot
shows test accuracy (mean ± se over seeds) against epoch and against training compute.

    python benchmarks/compare.py PLAN.toml --out DIR [--only NAME ...] [--jobs 2] [--summarise]

A plan is a TOML file::

    seeds = [0, 1, 2]
    target = 95.0                    # accuracy whose first epoch is reported
    common = ["eval.every=2"]        # overrides for every configuration
    [runs.ct_old]
    recipe = "digits_ct"
    set = ["train.epochs=50"]

Each configuration's seed group lands in DIR/NAME/ (``protocol.json``, every seed's
``metrics.json``); DIR/summary.json and DIR/summary.md collect the numbers, DIR/accuracy.png the
plot. Threads: every run is pinned to ``speed.threads = 1`` and ``--jobs`` seeds train at once
(2 on a 2-core machine), so runs never compete for a core. A group already complete in DIR is
read, not trained again (rerun a configuration by deleting its folder).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import tomllib

from noprop_core.engine.protocol import Spread, spread


def first_epoch_at(history: list[dict], target: float) -> int | None:
    """The first evaluated epoch whose test accuracy reaches ``target`` (None: never)."""
    return next((r["epoch"] for r in history if (r.get("test_accuracy") or 0.0) >= target), None)


def seed_metrics(group: Path) -> list[dict]:
    """The metrics of the group's finished seeds (a run still training has no final evaluation)."""
    found = [json.loads(path.read_text()) for path in sorted(group.glob("seed-*/metrics.json"))]
    return [metrics for metrics in found if metrics.get("test_accuracy_runs")]


def train_group(name: str, config: dict, plan: dict, out: Path, jobs: int) -> None:
    seeds = [str(seed) for seed in plan.get("seeds", [0, 1, 2])]
    overrides = [*plan.get("common", []), *config.get("set", []), "speed.threads=1", "tracker.name=none"]
    command = [
        sys.executable,
        "-m",
        "noprop_core.cli",
        "run",
        config["recipe"],
        "--out",
        str(out / name),
        "--seeds",
        *seeds,
        "--jobs",
        str(jobs),
    ]
    for override in overrides:
        command += ["--set", override]
    print("$", " ".join(command), flush=True)
    subprocess.run(command, check=True)


def summarise(name: str, config: dict, plan: dict, out: Path) -> dict:
    runs = seed_metrics(out / name)
    target = plan.get("target", 95.0)
    pooled = [value for run in runs for value in run["test_accuracy_runs"]]
    reached = [first_epoch_at(run["history"], target) for run in runs]
    evaluated = [r for r in runs[0]["history"] if r.get("test_accuracy") is not None]
    curves = {}
    for record in evaluated:
        epoch = record["epoch"]
        values = [next(r["test_accuracy"] for r in run["history"] if r["epoch"] == epoch) for run in runs]
        curves[epoch] = spread(values).as_dict()
    image = [run["history"][-1].get("image_accuracy") for run in runs]
    compute = {
        epoch: mean(
            [
                next(r.get("flops") or r.get("block_passes") or 0 for r in run["history"] if r["epoch"] == epoch)
                for run in runs
            ]
        )
        for epoch in curves
    }
    gaps = [run.get("readout_gap") for run in runs]
    return {
        "name": name,
        "recipe": config["recipe"],
        "set": config.get("set", []),
        "label": config.get("label", name),
        "epochs": runs[0]["epochs_completed"],
        "test": spread(pooled).as_dict(),
        "train": spread([v for run in runs for v in run["train_accuracy_runs"]]).as_dict(),
        "epochs_to_target": reached,
        "target": target,
        "image_accuracy_last": image if all(v is not None for v in image) else None,
        "curve": curves,
        "wall_seconds_per_run": spread([run["wall_seconds"] for run in runs]).as_dict(),
        "train_seconds_per_run": spread([run["train_seconds"] for run in runs]).as_dict(),
        "block_passes": mean([run.get("train_block_passes") or 0 for run in runs]),
        "flops": None
        if any(run.get("train_flops") is None for run in runs)
        else mean([run["train_flops"] for run in runs]),
        "readout_gap": None if None in gaps else spread(gaps).as_dict(),
        "compute_curve": {epoch: value for epoch, value in compute.items()},
        "compute_unit": "FLOPs" if all(run.get("train_flops") for run in runs) else "block passes",
    }


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def text(values: dict) -> str:
    return Spread(values["mean"], values["standard_error"], values["n"]).text()


def markdown(rows: list[dict]) -> str:
    lines = [
        "| configuration | recipe + overrides | epochs | test % (n) | read-out gap (points) | train % | "
        "epochs to target per seed | block accuracy from the image alone, last epoch (mean over seeds) | "
        "training compute per run: block passes / FLOPs / seconds (1 thread) | wall per run |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        reached = ", ".join("—" if e is None else str(e) for e in row["epochs_to_target"])
        image = row["image_accuracy_last"]
        blocks = "—"
        if image:
            means = [sum(values) / len(values) for values in zip(*image)]
            blocks = " / ".join(f"{m:.0f}" for m in means)
        overrides = " ".join(f"`{s}`" for s in row["set"])
        gap = "—" if row.get("readout_gap") is None else text(row["readout_gap"])
        passes = f"{row['block_passes']:.3g}" if row.get("block_passes") else "—"
        flops = "—" if row.get("flops") is None else f"{row['flops']:.3g}"
        seconds = f"{row['train_seconds_per_run']['mean']:.0f} s" if "train_seconds_per_run" in row else "—"
        compute = f"{passes} / {flops} / {seconds}"
        lines.append(
            f"| {row['label']} | `{row['recipe']}` {overrides} | {row['epochs']} | {text(row['test'])} "
            f"({row['test']['n']}) | {gap} | {text(row['train'])} | {reached} (≥ {row['target']:g} %) | {blocks} | "
            f"{compute} | {row['wall_seconds_per_run']['mean']:.0f} s |"
        )
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path, title: str, epochs_shown: int | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if all(len(row["curve"]) == 1 for row in rows):  # one evaluation each: a line per epoch says nothing
        figure = final_figure(plt, rows, title)
        figure.savefig(path, dpi=120)
        plt.close(figure)
        return
    figure, (whole, zoom, by_compute) = plt.subplots(1, 3, figsize=(18, 5))
    units = {row.get("compute_unit", "block passes") for row in rows}
    for index, row in enumerate(rows):
        epochs = sorted(int(e) for e in row["curve"])
        points = [by_epoch(row["curve"], e) for e in epochs]
        means = [point["mean"] for point in points]
        errors = [point["standard_error"] or 0.0 for point in points]
        low, high = [m - e for m, e in zip(means, errors)], [m + e for m, e in zip(means, errors)]
        style = ("-", "--", ":")[index // 10 % 3]  # colours repeat after ten: the line style tells them apart
        colour = f"C{index % 10}"
        compute = [by_epoch(row.get("compute_curve", {}), e) for e in epochs]
        for axis, xs in ((whole, epochs), (zoom, epochs), (by_compute, compute)):
            if None in xs:
                continue
            axis.plot(xs, means, color=colour, linestyle=style, marker=".", label=row["label"])
            axis.fill_between(xs, low, high, color=colour, alpha=0.2)
    whole.set(xlabel="epoch", ylabel="test accuracy (%)", ylim=(0, 100), title=title)
    zoom.set(xlabel="epoch", ylabel="test accuracy (%)", ylim=(85, 100), title="zoom: 85–100 %")
    if epochs_shown is not None:  # longer rows (at equal compute) are read on the compute panel
        for axis in (whole, zoom):
            axis.set_xlim(0, epochs_shown)
    unit = "FLOPs" if units == {"FLOPs"} else "block passes"
    by_compute.set(
        xlabel=f"training compute ({unit}, log scale)",
        ylabel="test accuracy (%)",
        ylim=(0, 100),
        xscale="log",
        title="at equal compute",
    )
    for axis in (whole, zoom, by_compute):
        axis.grid(alpha=0.3)
    whole.legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def final_figure(plt, rows: list[dict], title: str):
    """Each configuration's final test accuracy (mean ± se over seeds × inference runs) as a bar,
    the nearest class embedding of the head's state as a diamond, and against training compute."""
    with_compute = any(row.get("flops") or row.get("block_passes") for row in rows)
    figure, axes = plt.subplots(1, 2 if with_compute else 1, figsize=(15 if with_compute else 9, 0.5 * len(rows) + 2.5))
    bars, by_compute = (axes[0], axes[1]) if with_compute else (axes, None)
    positions = list(range(len(rows)))[::-1]
    for position, row in zip(positions, rows):
        colour = f"C{rows.index(row) % 10}"
        bars.barh(position, row["test"]["mean"], xerr=row["test"]["standard_error"] or 0.0, color=colour, alpha=0.8)
        nearest = nearest_accuracy(row)
        if nearest is not None:
            bars.plot(nearest, position, "D", color="black", markersize=5)
        if by_compute is not None and (row.get("flops") or row.get("block_passes")):
            compute = row.get("flops") or row["block_passes"]
            by_compute.errorbar(
                compute,
                row["test"]["mean"],
                yerr=row["test"]["standard_error"] or 0.0,
                fmt="o",
                color=colour,
                capsize=3,
            )
    bars.set_yticks(positions, [row["label"] for row in rows], fontsize=8)
    bars.set(xlabel="test accuracy (%); ◆ nearest class embedding of the head's state", xlim=(0, 100), title=title)
    bars.grid(alpha=0.3)
    if by_compute is not None:
        by_compute.set(xscale="log", xlabel="training compute (FLOPs, log scale)", ylabel="test accuracy (%)")
        by_compute.set(ylim=(0, 100), title="at equal compute")
        by_compute.grid(alpha=0.3)
    figure.tight_layout()
    return figure


def nearest_accuracy(row: dict) -> float | None:
    """The mean nearest-embedding accuracy: the head's accuracy plus its read-out gap."""
    gap = row.get("readout_gap")
    return None if gap is None else row["test"]["mean"] + gap["mean"]


def by_epoch(values: dict, epoch: int):
    """A per-epoch value, whether the epochs are ints or, read back from JSON, strings."""
    return values.get(str(epoch), values.get(epoch))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("plan", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--only", nargs="*", default=None, help="configurations to run (default: all)")
    parser.add_argument("--jobs", type=int, default=2, help="seeds trained at once, one thread each")
    parser.add_argument("--summarise", action="store_true", help="train nothing: tabulate the groups already complete")
    args = parser.parse_args(argv)
    plan = tomllib.loads(args.plan.read_text())
    names = [] if args.summarise else args.only or list(plan["runs"])
    for name in names:
        if len(seed_metrics(args.out / name)) < len(plan.get("seeds", [0, 1, 2])):
            train_group(name, plan["runs"][name], plan, args.out, args.jobs)
    done = [n for n in plan["runs"] if len(seed_metrics(args.out / n)) >= len(plan.get("seeds", [0, 1, 2]))]
    rows = [summarise(name, plan["runs"][name], plan, args.out) for name in done]
    (args.out / "summary.json").write_text(json.dumps(rows, indent=1) + "\n")
    (args.out / "summary.md").write_text(markdown(rows))
    title = plan.get("title", "test accuracy per epoch (mean ± se over seeds)")
    plot(rows, args.out / "accuracy.png", title, plan.get("epochs_shown"))
    print(markdown(rows))


if __name__ == "__main__":
    main()
