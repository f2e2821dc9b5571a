"""Reporting finished runs: the table next to the paper's values, and the plots."""
