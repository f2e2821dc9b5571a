"""Reproduction runs for a lent GPU: each recipe trains for its share of a wall-clock budget,
is stopped as a user would stop it (SIGINT: the run saves its checkpoint and says where it
stopped), then evaluated from that checkpoint with the recipe's own inference; every command's
console output and the run folders' metrics.json land in OUT.

    python benchmarks/device_reproduce.py --minutes 8 --out $OUT [--recipes cifar100_diffusion_blocks cifar10_ct]
    python benchmarks/device_reproduce.py --minutes 0.3 --out /tmp/x --smoke     # the same on a CPU, tiny

``--smoke`` passes ``--smoke`` to ``noprop run`` (a few batches, stand-in data where the data
files are absent), which is how the test suite runs this script. OUT/summary.json lists, per
recipe, the epochs done, the wall time and the test accuracy reached.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

RECIPES = ("cifar100_diffusion_blocks", "cifar10_ct")
NOPROP = [sys.executable, "-m", "noprop_core.cli"]


def train_for(recipe: str, seconds: float, out: Path, smoke: bool, overrides: list[str]) -> dict:
    run_dir = out / recipe
    command = [*NOPROP, "run", recipe, "--out", str(run_dir), "--set", "tracker.name=none"]
    command += ["--smoke"] if smoke else []
    for override in overrides:
        command += ["--set", override]
    started = time.monotonic()
    with open(out / f"{recipe}.train.log", "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGINT)  # the run finishes its step, checkpoints, exits
            process.wait(timeout=300)
    wall = time.monotonic() - started
    result = {"recipe": recipe, "train_wall_seconds": round(wall, 1), "train_exit": process.returncode}
    if not (run_dir / "checkpoint.pt").exists():
        return {**result, "error": "no checkpoint (see the train log)"}
    if not smoke:  # a smoke run's data may be a stand-in that `noprop eval` cannot load again
        with open(out / f"{recipe}.eval.log", "w") as log:
            evaluated = subprocess.run([*NOPROP, "eval", str(run_dir)], stdout=log, stderr=subprocess.STDOUT)
        result["eval_exit"] = evaluated.returncode
    metrics = json.loads((run_dir / "metrics.json").read_text())
    evaluations = run_dir / "evaluations.json"
    last = json.loads(evaluations.read_text())[-1] if evaluations.exists() else {}
    return {
        **result,
        "epochs_completed": metrics.get("epochs_completed"),
        "test_accuracy_last_epoch": metrics.get("test_accuracy"),
        "test_accuracy_eval": last.get("test_accuracy"),
        "device": metrics.get("device"),
        "history_test": [
            [r["epoch"], r["test_accuracy"]] for r in metrics.get("history", []) if r.get("test_accuracy")
        ],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, required=True, help="wall-clock budget for all the training")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES))
    parser.add_argument("--smoke", action="store_true", help="a few batches of each recipe (for a CPU test)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="recipe override for every run")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    share = 60 * args.minutes / len(args.recipes)
    results = [train_for(recipe, share, args.out, args.smoke, args.overrides) for recipe in args.recipes]
    (args.out / "summary.json").write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results, indent=1))
    return 0 if all("error" not in r for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
