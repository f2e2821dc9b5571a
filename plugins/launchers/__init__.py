"""Launchers: where `noprop` jobs run (this machine, a Slurm cluster)."""
