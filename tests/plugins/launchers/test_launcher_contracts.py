"""The first-party launchers pass the launcher contract (`slurm` through submitit's local
executor, which follows the same submission and requeue protocol without a cluster)."""

from __future__ import annotations

from noprop_core.testing import LauncherContract


class TestLocal(LauncherContract):
    name = "local"
    config = {"workers": 2}


class TestSlurmOnSubmititsLocalExecutor(LauncherContract):
    name = "slurm"
    config = {"executor": "local", "workers": 2}
