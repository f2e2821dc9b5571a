"""Orchestrating runs: a fresh run, a resumed one, a stop on a signal, seeds stacked together,
and seed groups (the paper's protocol, in this process or through a launcher)."""
