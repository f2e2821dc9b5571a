"""First-party noprop plugins, loaded through the `noprop` entry-point group."""
