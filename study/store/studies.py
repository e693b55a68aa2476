"""Studies in the store: what each searched, creating or resuming one, and reading them back.

Every trial, whichever backend ran it, is an optuna trial here. A study remembers what it searched
(regime, backend, objective, data fingerprint, base config) in its user attributes, so a second
``search`` with the same settings resumes it and one with different settings is refused.

The readers (``study_rows``, ``best_trial``, ``trial_records``, ``trials_frame``, ``best_param_rows``) are what the
command line, reports and prediction show; none of them writes.
"""
from __future__ import annotations

import dataclasses
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Mapping

import optuna
from optuna.trial import FrozenTrial, TrialState

from search_spaces import from_dict, space_for
from study.config import TrainConfig, default_source
from study.errors import ConfigError
from study.store import records
from study.store.connect import StorageError, open_storage
from study.store.records import StudyKey

if TYPE_CHECKING:
    import pandas as pd  # at run time imported where used: pandas alone takes ~0.4 s, and reads never need it

OBJECTIVES: dict[str, str] = {"accuracy": "maximize", "loss": "minimize", "macro_f1": "maximize"}
# What an edge search weighs the metric against (``study.latency``): the trained model's median
# single-face inference time in its TFLite form (ms), or that file's size (bytes); both minimized.
COSTS: dict[str, str] = {"latency": "minimize", "size": "minimize"}
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
# Study attributes that must match for a search to resume a study (the backend may differ).
_MUST_MATCH = (StudyKey.REGIME, StudyKey.OBJECTIVE, StudyKey.FINGERPRINT, StudyKey.BASE, StudyKey.MAX_EPOCHS,
               StudyKey.KERAS_BACKEND)


class NoStudy(StorageError):
    """No study of that name in the store; ``known`` lists the names there are."""

    def __init__(self, name: str, known: list[str]) -> None:
        listed = ", ".join(known) if known else "none yet"
        super().__init__(f"no study named {name!r} in this storage; studies: {listed}")
        self.name, self.known = name, known


class NoSingleBest(StorageError):
    """A multi-objective study has a Pareto front, not one best trial: a trial of it must be named."""

    def __init__(self, name: str, front: list[int]) -> None:
        listed = ", ".join(str(n) for n in front) or "none yet"
        super().__init__(f"study {name} weighs two objectives and has no single best trial; name one of its Pareto "
                         f"front with «trial» N (front: {listed}; show {name} lists them)")
        self.name, self.front = name, front


class NoCompleteTrial(StorageError):
    """A study has no complete trial, so it has no best configuration yet."""

    def __init__(self, name: str) -> None:
        super().__init__(f"study {name} has no complete trial yet")
        self.name = name


@dataclass(frozen=True)
class Objectives:
    """A search's «objective»: one validation metric, or a metric and a measured cost ("accuracy,latency"),
    which makes the study multi-objective (optuna's ``directions``; no single best trial, a Pareto front)."""

    metric: str
    cost: str | None = None

    @classmethod
    def parse(cls, text: str) -> "Objectives":
        parts = [p.strip() for p in str(text).split(",")]
        if len(parts) in (1, 2) and parts[0] in OBJECTIVES and (len(parts) == 1 or parts[1] in COSTS):
            return cls(parts[0], parts[1] if len(parts) == 2 else None)
        raise ConfigError(f"«objective» is a metric ({', '.join(OBJECTIVES)}), optionally followed by a cost to "
                          f"weigh it against ({', '.join(COSTS)}), e.g. accuracy,latency; got {text!r}")

    @property
    def multi(self) -> bool:
        return self.cost is not None

    @property
    def directions(self) -> list[str]:
        return [OBJECTIVES[self.metric], *([COSTS[self.cost]] if self.cost else [])]


def is_multi_objective(study: optuna.Study) -> bool:
    return len(study.directions) > 1


def is_edge_study(study: optuna.Study) -> bool:
    """A search of a metric against a measured cost (not a curve, whose trials are no search's)."""
    return records.regime(study) is not None and is_multi_objective(study)


@dataclass(frozen=True)
class StudySpec:
    """What a study searches; saved as its user attributes and checked on every resume."""

    name: str
    regime: str
    backend: str
    objective: str
    data: str
    fingerprint: str
    base: Mapping[str, Any] = field(default_factory=dict)  # TrainConfig keys not searched: backbone, weights, ...
    max_epochs: int | None = None  # the cap on each phase's epochs
    keras_backend: str = "tensorflow"  # the Keras backend its trials train on (study.backend); not the tuner

    @property
    def directions(self) -> list[str]:
        return Objectives.parse(self.objective).directions

    @property
    def direction(self) -> str:
        """What the study records: "maximize", or one direction per objective ("maximize,minimize")."""
        return ",".join(self.directions)

    def attrs(self) -> dict[str, Any]:
        return {
            StudyKey.REGIME: self.regime,
            StudyKey.BACKEND: self.backend,
            StudyKey.OBJECTIVE: self.objective,
            StudyKey.DIRECTION: self.direction,
            StudyKey.DATA: self.data,
            StudyKey.FINGERPRINT: self.fingerprint,
            StudyKey.BASE: dict(self.base),
            StudyKey.MAX_EPOCHS: self.max_epochs,
            StudyKey.KERAS_BACKEND: self.keras_backend,
        }


# ---------------------------------------------------------------------------------- writing
def open_study(spec: StudySpec, storage: optuna.storages.BaseStorage, **kwargs: Any) -> optuna.Study:
    """Create the study, or resume it when it searched the same thing (sampler/pruner in kwargs)."""
    study = optuna.create_study(
        storage=storage, study_name=spec.name, directions=spec.directions, load_if_exists=True, **kwargs
    )
    if records.regime(study) is None:
        # Two workers writing different searches at once: the last write wins and the check refuses the other.
        records.write_search(study, spec.attrs())
    check_compatible(study, spec)
    return study


def check_compatible(study: optuna.Study, spec: StudySpec) -> None:
    """Refuse to mix trials of different regimes, objectives, data or base settings in one study."""
    saved, wanted = records.search_attrs(study), spec.attrs()
    saved.setdefault("keras_backend", "tensorflow")  # a study from before backends were recorded ran on TensorFlow
    if isinstance(saved.get("base"), Mapping):  # a study from before a base key existed had its default
        saved["base"] = {**_base_defaults(wanted["base"]), **saved["base"]}
    for key in _MUST_MATCH:
        if _normal(saved.get(key)) != _normal(wanted[key]):
            raise StorageError(f"study {spec.name} was created with {_difference(key, saved.get(key), wanted[key])}: "
                               "rerun with the study's settings or choose another «study» NAME")


def _difference(key: str, saved: Any, wanted: Any) -> str:
    """"key=saved, this search has key=wanted", for a base config only the keys that differ."""
    if key == "base" and isinstance(saved, Mapping) and isinstance(wanted, Mapping):
        keys = [k for k in sorted({*saved, *wanted}) if _normal(saved.get(k)) != _normal(wanted.get(k))]
        saved, wanted = {k: saved.get(k) for k in keys}, {k: wanted.get(k) for k in keys}
        return (f"{', '.join(f'{k}={v!r}' for k, v in saved.items())}, this search has "
                f"{', '.join(f'{k}={v!r}' for k, v in wanted.items())}")
    return f"{key}={saved!r}, this search has {key}={wanted!r}"


def _base_defaults(keys: Iterable[str]) -> dict[str, Any]:
    """TrainConfig's regime-independent defaults for these base keys."""
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    return {k: defaults[k] for k in keys if k in defaults and k not in ("weights", "backbone")}


def _normal(value: Any) -> Any:
    """JSON round-trips turn tuples into lists; compare what was stored with what would be."""
    return {k: _normal(v) for k, v in value.items()} if isinstance(value, Mapping) else value


# ---------------------------------------------------------------------------------- reading
def study_names(storage: optuna.storages.BaseStorage) -> list[str]:
    return sorted(optuna.get_all_study_names(storage))


def load_existing(name: str, storage: str | optuna.storages.BaseStorage) -> optuna.Study:
    """A study that must exist; a typo lists the study names there are (``storage``: a URL, or opened)."""
    storage = open_storage(storage) if isinstance(storage, str) else storage
    names = study_names(storage)
    if name not in names:
        raise NoStudy(name, names)
    return records.load(name, storage)


def count_finished(study: optuna.Study) -> int:
    """COMPLETE and PRUNED trials: what counts toward a search's trials; FAIL ones do not."""
    return len(study.get_trials(deepcopy=False, states=FINISHED))


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    """The best COMPLETE trial, or None (``study.best_trial`` raises when there is none); a multi-objective
    study has none (``pareto_front``)."""
    if is_multi_objective(study):
        return None
    try:
        return study.best_trial
    except ValueError:
        return None


def required_best(study: optuna.Study) -> FrozenTrial:
    """The best trial of a study that must have one (final training, prediction by study name)."""
    if is_multi_objective(study):
        raise NoSingleBest(study.study_name, [t.number for t in pareto_front(study)])
    best = best_trial(study)
    if best is None:
        raise NoCompleteTrial(study.study_name)
    return best


def pareto_front(study: optuna.Study) -> list[FrozenTrial]:
    """A multi-objective study's Pareto-optimal complete trials among those that learned, cheapest (lowest
    cost) first; a single-objective study's best trial alone.

    A trial whose model did not beat the majority rate on validation (``records.learned``) is no trade-off
    of accuracy against cost, whatever its cost: a model that answers "happy" to every face is the fastest
    of all. Such trials stay off the front (``off_front`` lists them), and so they cannot hide a slower
    model that learned. A trial that recorded nothing about it counts as learned."""
    if not is_multi_objective(study):
        best = best_trial(study)
        return [] if best is None else [best]
    signs = [1.0 if d == optuna.study.StudyDirection.MAXIMIZE else -1.0 for d in study.directions]
    learned = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
               if t.values is not None and records.learned(t) is not False]
    scored = [(t, [s * v for s, v in zip(signs, t.values)]) for t in learned]

    def dominated(mine: list[float]) -> bool:
        return any(all(o >= m for o, m in zip(other, mine)) and other != mine for _, other in scored)

    return sorted((t for t, mine in scored if not dominated(mine)), key=lambda t: (t.values[1], t.number))


def off_front(study: optuna.Study) -> list[FrozenTrial]:
    """A multi-objective study's complete trials that did not learn (kept off ``pareto_front``), by number."""
    if not is_multi_objective(study):
        return []
    return [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if records.learned(t) is False]


def named_trial(study: optuna.Study, number: int) -> FrozenTrial:
    """Trial ``number`` of the study, which must be complete (``train --from-study S --trial N``)."""
    trials = study.get_trials(deepcopy=False)
    if not 0 <= number < len(trials):
        raise ConfigError(f"study {study.study_name} has no trial {number} (trials 0-{len(trials) - 1})")
    trial = trials[number]
    if trial.state != TrialState.COMPLETE:
        raise ConfigError(f"trial {number} of study {study.study_name} is {trial.state.name}, not COMPLETE: "
                          "only a complete trial's configuration is known to train")
    return trial


def trial_value(trial: FrozenTrial) -> float | None:
    """A complete trial's metric (its first objective's value, in a multi-objective study too); else None."""
    if trial.state != TrialState.COMPLETE or trial.values is None:
        return None
    return float(trial.values[0])


def trial_cost(trial: FrozenTrial) -> float | None:
    """A complete multi-objective trial's cost (its second objective's value); else None."""
    if trial.state != TrialState.COMPLETE or trial.values is None or len(trial.values) < 2:
        return None
    return float(trial.values[1])


def study_rows(storage: optuna.storages.BaseStorage) -> list[dict[str, Any]]:
    """One row per study: what it searched, how many trials ended how, and its best value."""
    return [study_row(records.load(name, storage)) for name in study_names(storage)]


def study_row(study: optuna.Study) -> dict[str, Any]:
    states = Counter(t.state for t in study.get_trials(deepcopy=False))
    best, curve = best_trial(study), records.is_curve(study)
    multi = is_multi_objective(study)
    return {
        "name": study.study_name,
        "regime": records.CURVE_KIND if curve else (records.regime(study) or "?"),  # a curve has no regime
        "backend": records.backend(study) or "?",
        "objective": "?" if curve else records.objective(study),
        "complete": states[TrialState.COMPLETE],
        "pruned": states[TrialState.PRUNED],
        "failed": states[TrialState.FAIL],
        "running": states[TrialState.RUNNING],
        "best": None if best is None else best.value,
        "front": len(pareto_front(study)) if multi else None,  # a multi-objective study's Pareto-optimal trials
        "final_runs": len(records.curve_runs(study) if curve else records.final_runs(study)),
    }


TRIAL_COLUMNS = ("number", "state", "value", "cost", "last_value", "epochs", "seconds", "run_dir", "error")


def trial_records(study: optuna.Study) -> list[dict[str, Any]]:
    """One plain row per trial: number, state, value (complete trials only, else NaN; a multi-objective study's
    metric), cost (a multi-objective study's second value, else NaN), last_value (a
    pruned or failed trial's last reported epoch), epochs (falling back to the epochs it reported),
    seconds, run_dir, error, and a ``param.<name>`` entry per parameter it sampled. No pandas: ``show``
    reads these directly, and a command that only reads answers within a second."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        rows.append({
            "number": t.number, "state": t.state.name,
            "value": _or_nan(trial_value(t)), "cost": _or_nan(trial_cost(t)),
            "last_value": _last_reported(t),
            "epochs": records.epochs(t) or len(t.intermediate_values),
            "seconds": t.duration.total_seconds() if t.duration is not None else math.nan,
            "run_dir": records.run_dir(t) or "", "error": failure_reason(study, t),
            **{f"param.{name}": value for name, value in sorted(t.params.items())},
        })
    return rows


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    """``trial_records`` as a DataFrame (the report's tables and figures read it); a parameter a
    trial did not sample is NaN."""
    import pandas as pd  # deferred: pandas

    records = trial_records(study)
    params = sorted({k for r in records for k in r if k.startswith("param.")})
    return pd.DataFrame(records, columns=[*TRIAL_COLUMNS, *params])


def _or_nan(value: float | None) -> float:
    return math.nan if value is None else value


def _last_reported(trial: FrozenTrial) -> float:
    if trial.state == TrialState.COMPLETE:
        return _or_nan(trial_value(trial))
    steps = trial.intermediate_values
    return float(steps[max(steps)]) if steps else math.nan


def trial_params(row: Mapping[str, Any]) -> dict[str, Any]:
    """A ``trial_records`` row's (or ``trials_frame`` row's) parameters (the ones its trial sampled), by name."""
    return {k.removeprefix("param."): v for k, v in row.items()
            if k.startswith("param.") and not (isinstance(v, float) and math.isnan(v))}


def best_param_rows(study: optuna.Study) -> list[dict[str, Any]]:
    """The best trial's value of every searched parameter beside the default (``None``: the best
    configuration does not use it, e.g. momentum under Adam). ``trained`` is what the trial trained:
    the sampled value unless the study's epoch cap (``cap``) cut an epoch count."""
    best = best_trial(study)
    if best is None:
        return []
    space = space_for(records.regime(study) or "scratch")
    used = from_dict(space, {k: v for k, v in best.params.items() if k in space.names})
    cap = epoch_cap(study, best)
    rows = []
    for p in space.params:
        value = used.get(p.name)
        trained = min(value, cap) if cap is not None and p.name in EPOCH_PARAMS and value is not None else value
        rows.append({"name": p.name, "best": value, "trained": trained, "cap": cap if p.name in EPOCH_PARAMS else None,
                     "paper": p.default, "source": default_source(p.name)})
    return rows


EPOCH_PARAMS = ("epochs", "frozen_epochs")  # what a search's epoch cap cuts (``search_spaces.hp.cap_epochs``)


def epoch_cap(study: optuna.Study, trial: FrozenTrial) -> int | None:
    """The most epochs a phase of ``trial`` trained: the study's cap and, for keras-tuner's Hyperband,
    the trial's budget (the smaller); None when neither capped it."""
    caps = [c for c in (records.max_epochs(study), records.keras_tuner_budget(trial).get("tuner/epochs")) if c]
    return min(caps, default=None)


def last_failure(study: optuna.Study) -> str:
    """The reason recorded on the study's last failed trial."""
    failed = study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
    return (failure_reason(study, failed[-1]) or "no reason recorded") if failed else "no trial failed"


def failure_reason(study: optuna.Study, trial: FrozenTrial) -> str:
    """Why ``trial`` failed: its own record, else the study's (a heartbeat failure); "" when not failed."""
    if trial.state != TrialState.FAIL:
        return ""
    return records.error(trial) or records.study_failure(study, trial.number)
