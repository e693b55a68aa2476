"""Hyperparameter search: the request, one module per backend, the objective, the live display.

Modules import downward only (``docs/ARCHITECTURE.md``): ``request`` (light: what a search is) and
the backends' registries are cheap; ``search.run_search`` and ``final.train_from_study`` load
training code (TensorFlow) when their modules are imported.
"""
