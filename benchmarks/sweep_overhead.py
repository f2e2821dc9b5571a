"""What a sweep adds to a run: one trial of `noprop sweep` against the same `noprop run`.

    python benchmarks/sweep_overhead.py [--epochs 4] [--repeats 3]

Both train the same digits configuration (one categorical choice in the sweep's space, so the
trial's recipe equals the run's), alternated in one process tree so machine noise hits both;
every run is pinned to one thread (``speed.threads = 1``). Prints each wall time (process start
to exit) and the ratio of the medians.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NOPROP = [sys.executable, "-m", "noprop_core.cli"]


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    options = parser.parse_args()
    fixed = [
        "data.validation=287",
        f"train.epochs={options.epochs}",
        'tracker.name="none"',
        "speed.threads=1",
        'device="cpu"',
    ]
    runs, trials = [], []
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        sweep = root / "one_trial.toml"
        sets = ", ".join(f"'{item}'" for item in fixed)
        sweep.write_text(
            f'recipe = "digits_dt"\nset = [{sets}]\nmethod = "grid"\ntrials = 1\n'
            '[space]\n"variant.eta" = { type = "categorical", choices = [0.1] }\n'
        )
        for repeat in range(options.repeats):
            sets_args = [arg for item in [*fixed, "variant.eta=0.1"] for arg in ("--set", item)]
            runs.append(timed([*NOPROP, "run", "digits_dt", *sets_args, "--out", str(root / f"run-{repeat}")]))
            trials.append(timed([*NOPROP, "sweep", str(sweep), "--out", str(root / f"sweep-{repeat}")]))
            print(f"repeat {repeat}: noprop run {runs[-1]:.1f} s, one sweep trial {trials[-1]:.1f} s", flush=True)
    run, trial = statistics.median(runs), statistics.median(trials)
    print(
        f"median: noprop run {run:.1f} s, sweep of one trial {trial:.1f} s; ratio {trial / run:.3f} "
        f"(+{trial - run:.1f} s: Optuna, the study database, the space check's data load)"
    )


if __name__ == "__main__":
    main()
