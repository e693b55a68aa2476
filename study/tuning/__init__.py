"""Hyperparameter search: the request, one module per backend, the objective, the estimate, the pool.

Modules import downward only (``docs/ARCHITECTURE.md``): ``request`` (light: what a search is) and
the backends' registries are cheap; ``search.run_search`` loads training code (TensorFlow) when its
module is imported. What a search shows while it runs is the caller's (``study.events``).
"""
