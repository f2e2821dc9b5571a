"""The training engine: building an experiment from a recipe, the trainer, data in memory,
evaluation, tracking and the run directory."""
