"""`noprop sweep`: hyper-parameter search with Optuna, each trial a run folder."""
