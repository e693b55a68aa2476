"""What a search is asked to do: a ``TrainConfig`` base every trial shares, plus what only searching needs.

``SearchRequest.base`` holds TrainConfig keys (whatever ``--set``, ``--config`` or a shortcut option
gave); a key the search space also varies is pinned there (``search_spaces.pin``). Every other field
is the search's own: how many trials, which backend, sampler, pruner or tuner, where the study lives.
A request travels as JSON (``to_json``/``from_json``): that is how a local pool hands it to each of
its worker processes. ``validate`` checks all of it before any data is read or any study touched.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from search_spaces import edge_backbones, space_for
from study import config as config_mod
from study.config import DEFAULT_DATA, TrainConfig
from study.errors import ConfigError, NoDataset, UserError, setting
from study.model_files import check_weights_source
from study.store import DEFAULT_STORAGE, Objectives
from study.tracking import check_trackers
from study.tuning.backends import BACKENDS, DEFAULT_BACKEND, TunerBackend
from study.tuning.keras_tuner_backend import DEFAULT_TUNER, TUNERS
from study.tuning.kept_models import KEEP_MODELS
from study.tuning.optuna_backend import PRUNERS, SAMPLERS

DEFAULT_SAMPLER, DEFAULT_PRUNER = "tpe", "median"
# Where a search's defaults differ from a single run's. Transfer trials train phase 1 on
# frozen_feature_views cached augmented views (computed once per study) rather than on live augmentation
# through the backbone: on real faces the views matched live within the seeds' spread after the whole
# schedule, at 1.6x the speed of one run (README "Speed": python -m benchmarks.frozen_augmentation).
# «frozen_augmentation» live in the base restores the paper's schedule.
SEARCH_DEFAULTS = {"transfer": {"frozen_augmentation": "views"}}
# The base keys every study records (resolved), whether given or not; given keys are recorded too.
BASE_KEYS = ("backbone", "weights", "seed", "subset", "val_fraction", "precision", "jit", "frozen_augmentation",
             "frozen_feature_views")


@dataclass(frozen=True)
class SearchRequest:
    """A search; ``None`` means the default (sampler/pruner for optuna, tuner for keras-tuner)."""

    regime: str
    trials: int
    base: Mapping[str, Any] = field(default_factory=dict)  # TrainConfig keys every trial shares
    data: str | None = None
    backend: str = DEFAULT_BACKEND  # a key of study.tuning.backends.BACKENDS
    sampler: str | None = None  # optuna: a key of optuna_backend.SAMPLERS
    pruner: str | None = None  # optuna: a key of optuna_backend.PRUNERS
    tuner: str | None = None  # keras-tuner: a key of keras_tuner_backend.TUNERS
    objective: str = "accuracy"  # a metric, or "metric,cost" for an edge search (study.store.Objectives)
    timeout: float | None = None
    max_epochs: int | None = None  # the cap on each phase's epochs, for a cheap search
    keep_models: int | None = KEEP_MODELS  # the best K trials keep their model.keras; None: every trial
    storage: str = DEFAULT_STORAGE
    study: str | None = None
    runs_dir: str = "runs"
    heartbeat: int = 60  # optuna backend: seconds between a running trial's heartbeats
    grace: int = 180  # seconds without a heartbeat after which a trial's worker counts as dead
    default_trial: bool = True  # optuna backend: a new study's first trial is the defaults (the paper's config)
    max_failures: int = 3  # failed trials in a row after which the search stops short (failed ones never count)
    track: tuple[str, ...] = ()  # study.tracking.TRACKERS: every trial also to TensorBoard and/or MLflow

    @property
    def study_name(self) -> str:
        """«study», else regime-backend (and the cost an edge search weighs: scratch-optuna-latency)."""
        if self.study:
            return self.study
        cost = self.objectives.cost
        return "-".join([self.regime, self.backend, *([cost] if cost else [])])

    @property
    def tuner_backend(self) -> TunerBackend:
        return BACKENDS[self.backend]

    @property
    def dataset(self) -> str:
        return self.data or DEFAULT_DATA

    @property
    def config(self) -> TrainConfig:
        """The base as a TrainConfig of the regime (the search's defaults, then the paper's values, where
        the base is silent)."""
        return config_mod.from_dict({**SEARCH_DEFAULTS.get(self.regime, {}), **self.base, "regime": self.regime})

    @property
    def seed(self) -> int:
        """The training seed of every trial; it also seeds the sampler."""
        return self.config.seed

    @property
    def sampler_name(self) -> str:
        return self.sampler or DEFAULT_SAMPLER

    @property
    def objectives(self) -> Objectives:
        return Objectives.parse(self.objective)

    @property
    def varied_backbones(self) -> tuple[str, ...]:
        """The backbones an edge search weighs against each other (empty: the base's backbone alone). An edge
        search varies the backbone unless «backbone» pins it; transfer only over backbones with ImageNet
        weights, and only from them (a weights file fits one backbone)."""
        if not self.objectives.multi or "backbone" in self.base:
            return ()
        return edge_backbones(self.regime)

    @property
    def pruner_name(self) -> str:
        """The default prunes a single-objective search only (optuna cannot prune a multi-objective one)."""
        return self.pruner or ("none" if self.objectives.multi else DEFAULT_PRUNER)

    @property
    def tuner_name(self) -> str:
        return self.tuner or DEFAULT_TUNER


def request_default(name: str) -> Any:
    """A ``SearchRequest`` field's default: what the command line shows and passes when an option is not given."""
    return {f.name: f.default for f in dataclasses.fields(SearchRequest)}[name]


def validate(request: SearchRequest) -> None:
    """Every field checked (the base through TrainConfig) before any data is read or any study touched."""
    def check(ok: bool, message: str) -> None:
        if not ok:
            raise ConfigError(message)

    space_for(request.regime)
    if "regime" in request.base and request.base["regime"] != request.regime:
        raise ConfigError(f"the base config says regime={request.base['regime']!r}, the search «regime» "
                          f"{request.regime!r}")
    check(request.trials >= 1, f"«trials» must be at least 1, got {request.trials}")
    check(request.backend in BACKENDS, f"«backend» must be one of {', '.join(BACKENDS)}, got {request.backend!r}")
    objectives = request.objectives  # a ConfigError names the forms it takes
    check(request.timeout is None or request.timeout > 0, f"«timeout» must be positive, got {request.timeout}")
    check(request.max_epochs is None or request.max_epochs >= 1,
          f"«max_epochs» must be at least 1, got {request.max_epochs}")
    check(request.keep_models is None or request.keep_models >= 0,
          f"«keep_models» must be 0 or more, got {request.keep_models}")
    check(request.max_failures >= 1, f"«max_failures» must be at least 1, got {request.max_failures}")
    check(request.heartbeat >= 1, f"«heartbeat» must be at least 1 second, got {request.heartbeat}")
    check(request.grace > request.heartbeat,
          f"«grace» ({request.grace} s) must exceed «heartbeat» ({request.heartbeat} s), or live trials would be failed")
    for option, choices in (("sampler", SAMPLERS), ("pruner", PRUNERS), ("tuner", TUNERS)):
        value = getattr(request, option)
        check(value is None or value in choices, f"«{option}» must be one of {', '.join(choices)}, got {value!r}")
    for other in BACKENDS.values():
        if other.name != request.backend:
            theirs = [setting(o) for o in other.options if getattr(request, o) is not None]
            check(not theirs, f"{'/'.join(theirs)} {'applies' if len(theirs) == 1 else 'apply'} to «backend» "
                              f"{other.name} only")
    check_trackers(request.track)
    check_weights_source(request.config.weights)  # also the base's keys, types and ranges
    if objectives.multi:
        _check_edge(request, objectives)


def _check_edge(request: SearchRequest, objectives: Objectives) -> None:
    """What a multi-objective search (a metric against a measured cost) cannot do, refused before it starts."""
    def check(ok: bool, message: str) -> None:
        if not ok:
            raise ConfigError(message)

    wanted = f"«objective» {request.objective}"
    single = request.tuner_backend.single_objective
    check(single is None, f"{wanted} needs «backend» optuna: {single}")
    check(request.pruner in (None, "none"), f"optuna cannot prune a multi-objective study (Trial.report takes one "
                                            f"objective): drop «pruner» {request.pruner} for {wanted}")
    check(request.sampler != "cmaes", f"«sampler» cmaes optimises one objective: use tpe, nsga2, random or gp for "
                                      f"{wanted}")
    keras_backend = _keras_backend()
    check(keras_backend == "tensorflow", f"{wanted} measures each trial's TFLite export, which needs TensorFlow as "
                                         f"the Keras backend, and this process runs {keras_backend}: rerun with "
                                         "KERAS_BACKEND=tensorflow")
    weights = request.config.weights
    check(request.regime == "scratch" or "backbone" in request.base or weights == "imagenet",
          f"transfer from «weights» {weights} fits one backbone: name it with «backbone» (the search then weighs "
          "heads and input sizes against the cost), or transfer from imagenet to weigh backbones")


def _keras_backend() -> str:
    from study import backend  # deferred: Keras, only for an edge search

    return backend.name()


def check_data(request: SearchRequest, *, any_path: bool = False) -> None:
    """The default dataset is the generated sample, which must have been written first. ``any_path``:
    any dataset must exist now (a pool checks before it starts a worker; a search lets the loader say
    what is wrong with the path it was given)."""
    if (any_path or request.dataset == DEFAULT_DATA) and not Path(request.dataset).exists():
        raise NoDataset(request.dataset)


def base_config(request: SearchRequest) -> dict[str, Any]:
    """The TrainConfig keys the search does not vary, resolved: what the study records as its base (an edge
    search that varies the backbone records none)."""
    config = request.config
    given = (k for k in request.base if k not in BASE_KEYS and k != "regime")
    varied = ("backbone",) if request.varied_backbones else ()
    return {key: getattr(config, key) for key in (*BASE_KEYS, *given) if key not in varied}


class SearchIncomplete(UserError):
    """A search stopped before its study held «trials» finished trials: how many it holds, and why."""

    def __init__(self, study: str, finished: int, total: int, reason: str) -> None:
        super().__init__(f"search stopped short: study {study} holds {finished} of {total} finished trials "
                         f"({reason})")
        self.study, self.finished, self.total, self.reason = study, finished, total, reason


def to_json(request: SearchRequest) -> str:
    return json.dumps(dataclasses.asdict(request), sort_keys=True)


def from_json(text: str) -> SearchRequest:
    """A request written by ``to_json``; anything else is a one-line error."""
    try:
        values = json.loads(text)
        if isinstance(values, dict) and isinstance(values.get("track"), list):
            values["track"] = tuple(values["track"])  # JSON has no tuple
        return SearchRequest(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"not a search request ({exc})") from None
