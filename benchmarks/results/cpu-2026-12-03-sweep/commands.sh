#!/bin/bash
# The measurement: a 12-trial tpe sweep of digits_dt (lr, η, dropout; median pruning), then
# the best trial's recipe against the shipped one, 3 seeds each, on the same held-out split.
set -x
cd /work/main
R=benchmarks/results/cpu-2026-12-03-sweep
noprop sweep sweeps/digits_dt.toml --out $R/sweep > $R/sweep.log 2>&1
noprop report $R/sweep > $R/report.txt 2>&1
noprop run $R/sweep/best.toml --seeds 0 1 2 --jobs 2 --set eval.inference_runs=5 --out $R/best-3-seeds > $R/best-3-seeds.log 2>&1
noprop run digits_dt --seeds 0 1 2 --jobs 2 --set data.validation=287 --set tracker.name=none --set eval.inference_runs=5 --out $R/shipped-3-seeds > $R/shipped-3-seeds.log 2>&1
echo done
