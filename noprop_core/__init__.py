"""noprop: the variational diffusion contract of NoProp (Li, Teh & Pascanu, 2025).

The core defines noise schedules, the NoProp objectives and samplers, the plugin hook
specs and registry, the recipe schema, the trainer and the CLI. Everything swappable
(backbones, label embeddings, schedules, variants, datasets, trackers) is a plugin
registered through the ``noprop`` entry-point group; see ``noprop_core.hookspecs``.
"""

__version__ = "0.1.0"
