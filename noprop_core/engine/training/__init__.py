"""Training one run: the experiment built from a recipe, the data in memory, the trainer and its
loop, evaluation during training, metrics, progress and tracking."""
