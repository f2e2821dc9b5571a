"""The ``noprop`` command line: run (and smoke runs), eval, validate, report, plugins."""
