"""Using a trained run: its model loaded for inference, re-evaluation, export."""
