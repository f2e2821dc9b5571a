"""Recipes shipped with noprop (TOML). `recipes/digits_dt.toml` is the default of `noprop run`."""
