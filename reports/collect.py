"""Gather what a report shows: per regime, one study's search and its runs, as plain dataclasses.

Which study per regime: the ones named (``studies``); for any regime not named, the study of
that regime with the most final runs (ties: the most recently active, then the newest). Which runs:
the study's final runs (one per seed, with test predictions); when it has none, its best trial's
run, which has validation predictions only (the report says so).

Missing pieces are errors that name what is missing, unless ``partial`` is set: then they are
collected in ``Evidence.lacks`` so the report can say on its first line what it lacks.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import optuna
import pandas as pd
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState

from study.config import REGIMES
from study.data import CLASSES, load_dataset
from study.errors import UserError
from study.runs import Run, RunError
from reports.errors import MissingRegime, NoFinalRuns, NoStoreToRead, NoStudies, ReportError
from study.store import (
    NoStore,
    best_param_rows,
    best_trial,
    is_edge_study,
    is_multi_objective,
    mask_url,
    open_storage,
    records,
    study_names,
    trials_frame,
)

# What the tables and training curves read from history.csv (study.training writes more).
HISTORY_COLUMNS = ("epoch", "phase", "loss", "accuracy", "val_loss", "val_accuracy")
IMPORTANCE_SEED = 0  # fANOVA fits a random forest; a fixed seed keeps the report reproducible
# Importance evaluators, the first one ranking parameters everywhere: PED-ANOVA (optuna 5's default, which
# looks at what sets the best trials apart) and fANOVA (variance over the whole search).
IMPORTANCE_EVALUATORS = {
    "PED-ANOVA": lambda: optuna.importance.PedAnovaImportanceEvaluator(),
    "fANOVA": lambda: optuna.importance.FanovaImportanceEvaluator(seed=IMPORTANCE_SEED),
}


# ----------------------------------------------------------------------------------- data types
@dataclass(frozen=True)
class ParamAxis:
    """One searched hyperparameter as the parallel-coordinate plot needs it."""

    name: str
    kind: str  # "float" | "int" | "categorical"
    log: bool = False
    low: float | None = None
    high: float | None = None
    choices: tuple[Any, ...] = ()


@dataclass(frozen=True, eq=False)
class SearchSummary:
    """A study's search: trial outcomes, effort, the best trial and hyperparameter importances."""

    name: str
    regime: str
    backend: str
    objective: str
    direction: str
    counts: dict[str, int]  # COMPLETE / PRUNED / FAIL / RUNNING / WAITING
    trials: pd.DataFrame  # number, state, value, last_value, epochs, seconds, param.<name>...
    axes: tuple[ParamAxis, ...]
    best_number: int | None
    best_value: float | None
    best_params: tuple[dict[str, Any], ...]  # name, best, paper
    importances: dict[str, dict[str, float]] | None  # evaluator -> parameter -> importance
    importance_note: str
    final_runs: tuple[str, ...]
    max_epochs: int | None = None  # the search's cap on each phase's epochs

    @property
    def ranking(self) -> list[str]:
        """Parameters, most important first by the first evaluator that has importances (empty without)."""
        return list(next(iter(self.importances.values()))) if self.importances else []


@dataclass(frozen=True, eq=False)
class RegimeEvidence:
    """One regime's runs (sorted by seed) and where they came from."""

    regime: str
    search: SearchSummary
    runs: tuple[Run, ...]
    source: str  # "final": the study's final runs; "trial": its best trial's run
    trial_number: int | None = None
    top: tuple[Run, ...] = ()  # ``train --from-study --top K``'s runs: the K best trials retrained (an ensemble)

    @property
    def seeds(self) -> list[int]:
        return [run.config.seed for run in self.runs]


@dataclass(frozen=True, eq=False)
class Evidence:
    storage: str
    regimes: dict[str, RegimeEvidence]  # in REGIMES order, only the regimes found
    lacks: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class DataView:
    """The dataset the runs were evaluated on, as far as it could be re-read from disk.

    ``counts`` (class x split) always exists: from the dataset when it loads, else from the stored
    labels (then without the train column). ``images`` holds the evaluated split's faces, or None
    with the reason in ``problem``.
    """

    source: str
    layout: str
    fingerprint: str
    synthetic: bool
    sizes: dict[str, int]
    counts: pd.DataFrame
    images: np.ndarray | None
    problem: str = ""
    regimes: tuple[str, ...] = ()
    subset: float = 1.0  # the share of the training split the runs trained on


# ---------------------------------------------------------------------------------------- gather
def open_store(storage: str) -> optuna.storages.BaseStorage:
    """The store at ``storage``, read-only (reading never creates a store): a report opens it once."""
    try:
        return open_storage(storage, read_only=True)
    except NoStore as exc:
        raise NoStoreToRead(exc.url) from None


def gather(storage: str, studies: Sequence[str] = (), partial: bool = False,
           store: optuna.storages.BaseStorage | None = None) -> Evidence:
    """Evidence for every regime; raises ``ReportError`` on what is missing unless ``partial``. ``store``:
    the store at ``storage`` when the caller has opened it already."""
    store = store or open_store(storage)
    storage = mask_url(storage)  # from here on only shown: a password must reach no message or report
    chosen = choose_studies(store, storage, studies)
    lacks = _missing_regimes(chosen, store, storage, partial)
    regimes: dict[str, RegimeEvidence] = {}
    for regime, study in chosen.items():
        evidence, problems = regime_evidence(study, partial)
        lacks += problems
        if evidence is not None:
            regimes[regime] = evidence
    if not regimes:
        raise ReportError(f"nothing to report from {storage}: " + "; ".join(lacks))
    return Evidence(storage, regimes, tuple(lacks))


def choose_studies(store: optuna.storages.BaseStorage, url: str, names: Sequence[str]) -> dict[str, optuna.Study]:
    """The named studies, and for each regime not named, its default study (see module docstring)."""
    all_names = study_names(store)
    if not all_names:
        raise NoStudies(url)
    names = list(dict.fromkeys(names))
    chosen = _named(store, url, all_names, names)
    # an edge search (a metric against a cost) has a front, not a best configuration: its own section shows it
    candidates = [s for s in (records.load(n, store) for n in all_names if n not in names) if not is_multi_objective(s)]
    for regime in REGIMES:
        mine = [s for s in candidates if records.regime(s) == regime]
        if regime not in chosen and mine:
            chosen[regime] = max(mine, key=lambda study: _preference(study, store))
    return {regime: chosen[regime] for regime in REGIMES if regime in chosen}


def _named(store: optuna.storages.BaseStorage, url: str, all_names: list[str],
           names: Sequence[str]) -> dict[str, optuna.Study]:
    chosen: dict[str, optuna.Study] = {}
    for name in names:
        if name not in all_names:
            raise ReportError(f"no study named {name!r} in {url}; studies: {', '.join(all_names)}")
        study = records.load(name, store)
        regime = records.regime(study)
        if regime not in REGIMES:
            raise ReportError(f"study {name!r} records no regime (it was not made by a search of this toolkit)")
        if is_multi_objective(study):
            raise ReportError(f"study {name!r} is an edge search ({records.objective(study)}): it has a Pareto front, "
                              "not a best configuration to compare; the report shows it in its own section")
        if regime in chosen:
            raise ReportError(f"«study» {chosen[regime].study_name} and «study» {name} are both {regime} studies: "
                              "pass one study per regime")
        chosen[regime] = study
    return chosen


def only_side_studies(store: optuna.storages.BaseStorage) -> bool:
    """The store holds studies, and each is a data-efficiency curve or an edge search: nothing to compare
    the regimes with, but something to report."""
    studies = [records.load(name, store) for name in study_names(store)]
    return bool(studies) and all(records.is_curve(s) or is_edge_study(s) for s in studies)


def _preference(study: optuna.Study, store: optuna.storages.BaseStorage) -> tuple[int, float, int]:
    """Most final runs first, then the latest trial activity, then the newest study."""
    times = [t.datetime_complete or t.datetime_start for t in study.get_trials(deepcopy=False)]
    latest = max((t.timestamp() for t in times if t is not None), default=0.0)
    return len(records.final_runs(study)), latest, store.get_study_id_from_name(study.study_name)


def _missing_regimes(chosen: dict[str, optuna.Study], store: optuna.storages.BaseStorage, url: str,
                     partial: bool) -> list[str]:
    missing = [r for r in REGIMES if r not in chosen]
    if not missing:
        return []
    listed = ", ".join(f"{n} ({_regime_of(store, n)})" for n in study_names(store))
    lacks = [f"a {regime} study (none in {url}; studies: {listed})" for regime in missing]
    if not partial:
        have = ", ".join(chosen) or "none"
        raise MissingRegime(f"no {' or '.join(missing)} study in {url} (studies: {listed}); comparing the regimes "
                            "needs both", missing[0], have)
    return lacks


def _regime_of(store: optuna.storages.BaseStorage, name: str) -> str:
    return records.regime(records.load(name, store)) or "no regime"


# ------------------------------------------------------------------------------------------ runs
def regime_evidence(study: optuna.Study, partial: bool) -> tuple[RegimeEvidence | None, list[str]]:
    """The study's final runs, else its best trial's run; problems raised, or returned when ``partial``."""
    search = summarize_search(study)
    runs, lacks = _load_all(search.final_runs, study.study_name, partial)
    if runs:
        top, top_lacks = _load_all(records.top_runs(study), study.study_name, partial)
        return RegimeEvidence(search.regime, search, tuple(sorted(runs, key=lambda r: r.config.seed)), "final",
                              top=tuple(top)), lacks + top_lacks
    if not partial and not search.final_runs:
        raise NoFinalRuns(study.study_name)
    lacks.append(f"final runs of study {study.study_name} (its best trial's run stands in, so every table is on "
                 "VALIDATION images, which the search chose it on)")
    best = best_trial(study)
    if best is None or not records.run_dir(best):
        problem = (f"study {study.study_name} has no final runs and no complete trial with a run directory "
                   "(search it, then train its best configuration's final runs)")
        return _fail(problem, partial, lacks)
    try:
        run = load_run(records.run_dir(best))
    except RunError as exc:
        return _fail(f"study {study.study_name}, best trial {best.number}: {exc}", partial, lacks)
    return RegimeEvidence(search.regime, search, (run,), "trial", best.number), lacks


def _load_all(paths: Sequence[str], study_name: str, partial: bool) -> tuple[list[Run], list[str]]:
    runs, lacks = [], []
    for path in paths:
        try:
            runs.append(load_run(path))
        except RunError as exc:
            if not partial:
                raise ReportError(f"study {study_name}: {exc.raw}; fix or remove it, or pass «partial»") from None
            lacks.append(f"a final run of study {study_name} ({exc})")
    return runs, lacks


def load_run(path: str | Path) -> Run:
    """``Run.load`` plus the checks a report needs: a parseable file can still lack what the tables read."""
    run = Run.load(path)
    missing = [c for c in HISTORY_COLUMNS if c not in run.history.columns]
    if missing or not len(run.history):
        what = f"lacks the column(s) {', '.join(missing)}" if missing else "has no epochs"
        raise RunError(f"run file {run.path / 'history.csv'} is corrupt: it {what}")
    for split in ("val", "test"):
        _check_predictions(run, split)
    return run


def _check_predictions(run: Run, split: str) -> None:
    labels, probs = run.predictions.get(f"{split}_labels"), run.predictions.get(f"{split}_probs")
    if split == "val" and labels is None:
        raise RunError(f"run file {run.path / 'predictions.npz'} is corrupt: it has no val_labels")
    if labels is not None and (probs is None or probs.shape != (len(labels), len(CLASSES))):
        shape = "missing" if probs is None else "x".join(map(str, probs.shape))
        raise RunError(f"run file {run.path / 'predictions.npz'} is corrupt: {split}_probs is {shape}, expected "
                       f"{len(labels)}x{len(CLASSES)}")


def _fail(problem: str, partial: bool, lacks: list[str]) -> tuple[None, list[str]]:
    if not partial:
        raise ReportError(problem + "; pass «partial» to report without it")
    return None, [*lacks, problem]


# ---------------------------------------------------------------------------------------- search
def summarize_search(study: optuna.Study) -> SearchSummary:
    trials = study.get_trials(deepcopy=False)
    best = best_trial(study)
    importances, note = param_importances(study)
    return SearchSummary(
        name=study.study_name,
        regime=records.regime(study) or "?",
        backend=records.backend(study) or "?",
        objective=records.objective(study),
        direction=study.direction.name.lower(),
        counts={state.name: sum(t.state == state for t in trials) for state in TrialState},
        trials=trials_frame(study),
        axes=param_axes(trials),
        best_number=None if best is None else best.number,
        best_value=None if best is None else best.value,
        best_params=tuple(best_param_rows(study)),
        importances=importances,
        importance_note=note,
        final_runs=tuple(records.final_runs(study)),
        max_epochs=records.max_epochs(study),
    )


def param_axes(trials: Sequence[FrozenTrial]) -> tuple[ParamAxis, ...]:
    """Each parameter's distribution as first sampled (a study's space does not change)."""
    seen: dict[str, ParamAxis] = {}
    for trial in trials:
        for name, dist in trial.distributions.items():
            seen.setdefault(name, _axis(name, dist))
    return tuple(seen[name] for name in sorted(seen))


def _axis(name: str, dist: optuna.distributions.BaseDistribution) -> ParamAxis:
    if isinstance(dist, CategoricalDistribution):
        return ParamAxis(name, "categorical", choices=tuple(dist.choices))
    if isinstance(dist, (FloatDistribution, IntDistribution)):
        kind = "int" if isinstance(dist, IntDistribution) else "float"
        return ParamAxis(name, kind, dist.log, float(dist.low), float(dist.high))
    return ParamAxis(name, "categorical")


def param_importances(study: optuna.Study) -> tuple[dict[str, dict[str, float]] | None, str]:
    """Each evaluator's importances (``IMPORTANCE_EVALUATORS``: optuna 5's default PED-ANOVA first, then the
    seeded fANOVA it replaced), each ordered most important first; or None and a sentence saying why there
    are none."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 2:
        return None, (f"Hyperparameter importances need at least 2 complete trials; study {study.study_name} "
                      f"has {len(complete)}.")
    found: dict[str, dict[str, float]] = {}
    failed: list[str] = []
    cautions: list[str] = []
    for name, make in IMPORTANCE_EVALUATORS.items():
        with warnings.catch_warnings(record=True) as caught:  # said in the note, not on the console
            warnings.simplefilter("always")
            try:
                values = optuna.importance.get_param_importances(study, evaluator=make())
            except Exception as exc:  # optuna raises ValueError/RuntimeError for degenerate searches
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                failed.append(f"{name}: {first}")
                continue
        cautions += [f"{name}: {text}" for text in dict.fromkeys(str(w.message).strip() for w in caught)]
        found[name] = {k: float(v) for k, v in sorted(values.items(), key=lambda item: -item[1])}
    if not found:
        return None, (f"optuna could not compute hyperparameter importances for study {study.study_name}: "
                      + "; ".join(failed))
    note = (f"{' and '.join(found)} importances (optuna.importance: PED-ANOVA is its default; fANOVA's random forest "
            f"is seeded with {IMPORTANCE_SEED}) over the {len(complete)} complete trials. They describe how the "
            "objective varied within this search, not causal effects; with few trials they are noisy, and the two "
            "evaluators may disagree: weigh a parameter by both."
            + (f" optuna cautioned: {' '.join(cautions)}" if cautions else "")
            + (f" Not computed: {'; '.join(failed)}." if failed else ""))
    return found, note


# ------------------------------------------------------------------------------------------ data
def data_view(runs: Sequence[Run], split: str, regimes: Sequence[str]) -> DataView:
    """Re-read the runs' dataset for the card and the face grid, checking it is the same data."""
    first = runs[0]
    info = first.manifest.get("data", {})
    labels, _ = first.split(split)
    images, counts, problem = _reload(first, info, split, labels)
    if counts is None:
        counts = _counts_from_labels(first)
    return DataView(
        source=str(info.get("source", "?")), layout=str(info.get("layout", "?")),
        fingerprint=str(info.get("fingerprint", "?")), synthetic=bool(info.get("synthetic", False)),
        sizes={k: int(v) for k, v in info.get("sizes", {}).items()}, counts=counts, images=images,
        problem=problem, regimes=tuple(regimes), subset=float(info.get("subset", first.config.subset)),
    )


def _reload(run: Run, info: dict[str, Any], split: str, labels: np.ndarray):
    source = info.get("source")
    if not source:
        return None, None, f"run {run.path} records no data source"
    try:
        dataset = load_dataset(source, val_fraction=run.config.val_fraction, subset=run.config.subset)
    except UserError as exc:
        return None, None, f"the dataset at {source} cannot be read ({exc})"
    if dataset.fingerprint != info.get("fingerprint"):
        return None, None, (f"the dataset now at {source} (fingerprint {dataset.fingerprint}) is not the one the runs "
                            f"used ({info.get('fingerprint')})")
    split_data = getattr(dataset, split)
    if not np.array_equal(split_data.y, labels):
        return None, dataset.counts(), (f"the {split} split re-read from {source} does not match the runs' "
                                        f"stored {split} labels")
    return split_data.x, dataset.counts(), ""


def _counts_from_labels(run: Run) -> pd.DataFrame:
    """Class counts of the splits whose labels the run stored (train labels are never stored)."""
    columns = {name: np.bincount(run.predictions[f"{name}_labels"], minlength=len(CLASSES))
               for name in ("val", "test") if f"{name}_labels" in run.predictions}
    return pd.DataFrame(columns, index=pd.Index(CLASSES, name="class"))
