"""Plugins: the table of plugin kinds, their config bases and validators, the pluggy hook specs
derived from the table, the registry, and loading through the ``noprop`` entry-point group."""
