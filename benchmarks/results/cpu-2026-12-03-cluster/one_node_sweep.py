"""The exact run behind sweep-slurm/: sweeps/digits_dt.toml through the slurm launcher (2 workers,
one CPU each) on a one-node Slurm cluster started by the test suite's helper, torn down after.

    python benchmarks/results/cpu-2026-12-03-cluster/one_node_sweep.py /tmp/sweep-slurm   # as root
"""

import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "tests"))
from slurm_cluster import OneNodeSlurm  # noqa: E402

out = sys.argv[1]
slurm = OneNodeSlurm()
reason = slurm.start()
print("cluster:", reason or "up", flush=True)
try:
    started = time.time()
    env = {**os.environ, **slurm.env, "NOPROP_DISABLE_PLUGIN_AUTOLOAD": "1"}
    code = subprocess.run(
        [
            "noprop",
            "sweep",
            "sweeps/digits_dt.toml",
            "--out",
            out,
            "--launcher",
            "slurm",
            "--launcher-set",
            "workers=2",
            "--launcher-set",
            "cpus_per_job=1",
            "--launcher-set",
            "time_minutes=60",
        ],
        cwd=REPO,
        env=env,
    ).returncode
    print(f"exit {code}, wall {time.time() - started:.0f} s", flush=True)
    print(slurm.run("squeue").stdout)
finally:
    slurm.stop()
