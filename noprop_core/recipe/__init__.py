"""Recipes: the TOML schema, its strict conversion with one-line errors, and loading
(``extends`` chains and ``--set`` overrides)."""
