"""The study store: one optuna storage that tuning writes through and everything else reads.

``connect``   open a storage URL (read-only for readers), one-line errors for every database failure
``studies``   what a study searched, create/resume/refuse, and the readers (rows, best trial, trials frame)
``liveness``  trials whose worker died, failed at once on this host
``urls``      storage URLs with their password masked, wherever they are shown

It imports no tuner backend: reports and prediction read studies without loading a search.
"""
from study.store.connect import DEFAULT_STORAGE, NoStore, StorageError, open_storage, storage_errors
from study.store.studies import (
    COSTS,
    FINISHED,
    OBJECTIVES,
    NoCompleteTrial,
    NoSingleBest,
    NoStudy,
    Objectives,
    StudySpec,
    best_param_rows,
    best_trial,
    count_finished,
    epoch_cap,
    is_edge_study,
    is_multi_objective,
    last_failure,
    load_existing,
    named_trial,
    open_study,
    off_front,
    pareto_front,
    required_best,
    study_names,
    study_row,
    study_rows,
    trial_cost,
    trial_params,
    trial_records,
    trial_value,
    trials_frame,
)
from study.store import records
from study.store.urls import STORAGE_ENV, mask_text, mask_url

__all__ = [
    "COSTS", "DEFAULT_STORAGE", "FINISHED", "OBJECTIVES", "STORAGE_ENV", "NoCompleteTrial", "NoSingleBest", "NoStore",
    "NoStudy", "Objectives", "StorageError", "StudySpec", "best_param_rows", "best_trial", "count_finished", "epoch_cap",
    "is_edge_study", "is_multi_objective", "last_failure", "load_existing", "mask_text", "mask_url", "named_trial", "open_storage",
    "open_study", "off_front", "pareto_front", "records", "required_best", "storage_errors", "study_names", "study_row", "study_rows",
    "trial_cost", "trial_params", "trial_records", "trial_value", "trials_frame",
]
