"""Draws docs/engine-flow.png, the picture of docs/engine.md: how a run flows through the engine.

python tools/engine_flow.py
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "docs" / "engine-flow.png"

# name: (x, y, title, where, colour)
BOXES = {
    "recipe": (0.9, 2.0, "recipe.toml + --set", "recipe/: load_recipe", "#e8eef7"),
    "experiment": (3.2, 2.0, "Experiment", "training/experiment.py:\ndata, variant and its parts, speed", "#e8f4ea"),
    "trainer": (5.5, 2.0, "Trainer", "training/trainer.py: steps, epochs,\nevaluation, tracking, compute", "#e8f4ea"),
    "session": (7.8, 2.0, "RunSession", "runs/: fresh, resume, signals,\ncheckpoint every epoch", "#fdf1e0"),
    "folder": (10.1, 2.0, "run folder", "recipe.toml · checkpoint.pt ·\nmetrics.json (run_directory.py)", "#f3f3f3"),
    "groups": (
        6.65,
        3.55,
        "seed groups",
        "runs/seed_group.py, stacked.py:\none run per seed, protocol.json",
        "#fdf1e0",
    ),
    "sweeps": (3.8, 3.55, "sweeps", "sweep/: Optuna study, trials,\nowners, best.toml", "#f6e8f4"),
    "api": (1.1, 3.55, "api.py", "train · resume · load_recipe\nsweep · report · load_run", "#e8eef7"),
    "trained": (9.0, 0.45, "using a run", "trained/: load_model, eval,\npredict, export", "#f3f3f3"),
    "report": (11.3, 0.45, "reporting", "report/: tables next to the\npapers' values, plots", "#f3f3f3"),
}
ARROWS = [
    ("recipe", "experiment"),
    ("experiment", "trainer"),
    ("trainer", "session"),
    ("session", "folder"),
    ("api", "sweeps"),
    ("sweeps", "groups"),
    ("groups", "session"),
    ("api", "recipe"),
    ("folder", "trained"),
    ("folder", "report"),
]
WIDTH, HEIGHT = 2.05, 1.05


def main() -> None:
    figure, axis = plt.subplots(figsize=(13.5, 5.0))
    for x, y, title, where, colour in BOXES.values():
        box = FancyBboxPatch(
            (x - WIDTH / 2, y - HEIGHT / 2), WIDTH, HEIGHT, boxstyle="round,pad=0.04", fc=colour, ec="#555555"
        )
        axis.add_patch(box)
        axis.text(x, y + 0.22, title, ha="center", va="center", fontsize=10.5, weight="bold")
        axis.text(x, y - 0.17, where, ha="center", va="center", fontsize=7.6, color="#333333")
    for start, end in ARROWS:
        (x0, y0), (x1, y1) = BOXES[start][:2], BOXES[end][:2]
        dx, dy = x1 - x0, y1 - y0
        # from the edge of one box to the edge of the other
        scale = min(abs(WIDTH / 2 / dx) if dx else 9, abs(HEIGHT / 2 / dy) if dy else 9) + 0.03
        arrow = FancyArrowPatch(
            (x0 + dx * scale, y0 + dy * scale),
            (x1 - dx * scale, y1 - dy * scale),
            arrowstyle="-|>",
            mutation_scale=14,
            color="#444444",
        )
        axis.add_patch(arrow)
    axis.text(
        6.3,
        -0.45,
        "layers inside the engine: api → sweep → runs → trained | report → training → run_directory | protocol | fault_points",
        ha="center",
        fontsize=8.5,
        color="#555555",
    )
    axis.set(xlim=(-0.3, 12.6), ylim=(-0.7, 4.3))
    axis.axis("off")
    figure.tight_layout()
    figure.savefig(OUT, dpi=110)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
