"""noprop: the variational diffusion contract of NoProp (Li, Teh & Pascanu, 2025).

This package is the public API, for plugin authors and for training from Python: import from
``noprop_core`` itself, never from its subpackages, whose layout may change. The names are
listed once, in ``__init__.pyi`` beside this file (what type checkers and editors read), and
loaded from there on first use, so that the command line can start without importing torch.

Layers, from the bottom: ``diffusion`` (schedules, Gaussian identities, objectives, samplers),
``model`` (blocks, the paper's block, embeddings, heads, the variant contract), ``plugin``
(the table of plugin kinds, config bases, hooks, registry), ``speed`` (the ``[speed]`` section,
stacked blocks), ``recipe`` (schema and loading), ``engine`` (training, runs, using and
reporting them, sweeps; ``docs/engine.md``), ``cli``. A layer imports only the layers below it
(``[tool.importlinter]`` in pyproject.toml, checked by the test suite). The contract kit for
plugin tests is ``noprop_core.testing`` (it needs pytest).
"""

import lazy_loader

__version__ = "0.1.0"

__getattr__, __dir__, _public = lazy_loader.attach_stub(__name__, __file__)
__all__ = ["__version__", *_public]
