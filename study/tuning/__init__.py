"""Hyperparameter search: one module per backend, the objective, callbacks, the study store.

Importing this package is cheap (no TensorFlow): the CLI lists its commands without loading a
model. ``run_search`` and ``train_from_study`` import training code when called.
"""
from study.tuning.search import SearchRequest, run_search
from study.tuning.storage import DEFAULT_STORAGE, StudySpec, load_existing, open_storage

__all__ = ["DEFAULT_STORAGE", "SearchRequest", "StudySpec", "load_existing", "open_storage", "run_search"]
