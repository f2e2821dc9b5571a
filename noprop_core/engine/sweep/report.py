"""`noprop report OUT` on a sweep folder: its trials sorted by the objective, and ``OUT/sweep.png``
(the objective by trial, and against each searched parameter)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from noprop_core.engine.sweep.driver import SUMMARY, SWEEP_COPY
from noprop_core.errors import NopropError

COLUMNS = ("trial", "state", "objective", "parameters", "wall", "run folder")


def is_sweep(path: Path) -> bool:
    return (path / SWEEP_COPY).is_file()


def load_summary(out: Path) -> dict[str, Any]:
    """The study as it stands: read from its storage (a sweep still running, or killed, shows too)."""
    from noprop_core.engine.sweep.driver import summarize
    from noprop_core.engine.sweep.study import storage_for
    from noprop_core.recipe.sweep import load_sweep

    sweep = load_sweep(out / SWEEP_COPY)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.load_study(study_name=None, storage=storage_for(sweep, out))
    except (KeyError, ValueError):
        summary_file = out / SUMMARY
        if summary_file.is_file():
            return json.loads(summary_file.read_text())
        raise NopropError(f"{out}: a sweep folder whose study cannot be read") from None
    return summarize(study, sweep, out, wall_seconds=0.0)


def trial_rows(summary: dict[str, Any]) -> list[tuple[str, ...]]:
    """Finished trials best first, then the others by number."""
    trials = summary["trials"]
    done = sorted((t for t in trials if t["objective"] is not None), key=lambda t: -t["objective"])
    rest = sorted((t for t in trials if t["objective"] is None), key=lambda t: t["number"])
    rows: list[tuple[str, ...]] = []
    for trial in [*done, *rest]:
        params = ", ".join(f"{key} = {_short(value)}" for key, value in trial["params"].items())
        objective = f"{trial['objective']:.2f}" if trial["objective"] is not None else (trial.get("error") or "—")
        wall = f"{trial['wall_seconds']:.0f} s" if trial.get("wall_seconds") is not None else ""
        rows.append((str(trial["number"]), trial["state"], objective, params, wall, trial.get("run_dir") or ""))
    return rows


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def write_sweep_plot(summary: dict[str, Any], path: Path) -> Path:
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    trials = summary["trials"]
    keys = sorted({key for trial in trials for key in trial["params"]})
    figure, axes = plt.subplots(1, 1 + len(keys), figsize=(4.2 * (1 + len(keys)), 3.8), squeeze=False)
    history = axes[0][0]
    markers = {"complete": ("o", "tab:blue"), "pruned": ("x", "tab:orange"), "fail": ("s", "tab:red")}
    best, best_line = None, []
    for trial in sorted(trials, key=lambda t: t["number"]):
        if trial["state"] == "complete":
            best = trial["objective"] if best is None else max(best, trial["objective"])
        best_line.append((trial["number"], best))
    for state, (marker, color) in markers.items():
        points = [(t["number"], t["objective"]) for t in trials if t["state"] == state and t["objective"] is not None]
        if points:
            history.scatter(*zip(*points), marker=marker, color=color, label=state)
    line = [(n, b) for n, b in best_line if b is not None]
    if line:
        history.step(*zip(*line), where="post", color="black", linewidth=1, label="best so far")
    history.set(xlabel="trial", ylabel=summary["objective"].replace("_", " ") + " (%)", title="objective by trial")
    history.grid(alpha=0.3)
    history.legend(fontsize=7)
    for axis, key in zip(axes[0][1:], keys):
        points = [(t["params"][key], t["objective"]) for t in trials if t["state"] == "complete" and key in t["params"]]
        if points:
            axis.scatter(*zip(*points), color="tab:blue")
        if key in summary.get("log_scale", []):  # searched on a log scale: shown on one
            axis.set_xscale("log")
            axis.xaxis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            axis.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
            axis.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        axis.set(xlabel=key, title=f"effect of {key}")
        axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
