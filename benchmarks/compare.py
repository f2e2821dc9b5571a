"""Methods (or settings) side by side at equal budget: each configuration is a shipped recipe plus
``--set`` overrides, trained for 3 seeds with the ordinary ``noprop run --seeds``; the table gives
the final test accuracy (mean ± se over seeds × inference runs), the epochs each seed needed to
reach a target accuracy, and each block's accuracy from the image alone; one plot shows test
accuracy against epoch (mean ± se over seeds) per configuration.

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
    }


def text(values: dict) -> str:
    return Spread(values["mean"], values["standard_error"], values["n"]).text()


def markdown(rows: list[dict]) -> str:
    lines = [
        "| configuration | recipe + overrides | epochs | test % (n) | train % | epochs to target per seed | "
        "block accuracy from the image alone, last epoch (mean over seeds) | wall per run |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        reached = ", ".join("—" if e is None else str(e) for e in row["epochs_to_target"])
        image = row["image_accuracy_last"]
        blocks = "—"
        if image:
            means = [sum(values) / len(values) for values in zip(*image)]
            blocks = " / ".join(f"{m:.0f}" for m in means)
        overrides = " ".join(f"`{s}`" for s in row["set"])
        lines.append(
            f"| {row['label']} | `{row['recipe']}` {overrides} | {row['epochs']} | {text(row['test'])} "
            f"({row['test']['n']}) | {text(row['train'])} | {reached} (≥ {row['target']:g} %) | {blocks} | "
            f"{row['wall_seconds_per_run']['mean']:.0f} s |"
        )
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (whole, zoom) = plt.subplots(1, 2, figsize=(12, 4.8))
    for index, row in enumerate(rows):
        epochs = sorted(int(e) for e in row["curve"])
        points = [row["curve"][str(e) if str(e) in row["curve"] else e] for e in epochs]  # str keys once read back
        means = [point["mean"] for point in points]
        errors = [point["standard_error"] or 0.0 for point in points]
        style = ("-", "--", ":")[index // 10 % 3]  # colours repeat after ten: the line style tells them apart
        for axis in (whole, zoom):
            axis.plot(epochs, means, color=f"C{index % 10}", linestyle=style, marker=".", label=row["label"])
            axis.fill_between(
                epochs,
                [m - e for m, e in zip(means, errors)],
                [m + e for m, e in zip(means, errors)],
                color=f"C{index % 10}",
                alpha=0.2,
            )
    whole.set(xlabel="epoch", ylabel="test accuracy (%)", ylim=(0, 100), title=title)
    zoom.set(xlabel="epoch", ylabel="test accuracy (%)", ylim=(85, 100), title="zoom: 85–100 %")
    for axis in (whole, zoom):
        axis.grid(alpha=0.3)
    whole.legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


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
    plot(rows, args.out / "accuracy.png", plan.get("title", "test accuracy per epoch (mean ± se over seeds)"))
    print(markdown(rows))


if __name__ == "__main__":
    main()
