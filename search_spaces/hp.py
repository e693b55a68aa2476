"""The suggest protocol: a search space is a tuple of ``Choice``/``Int``/``Float``/``Fixed``.

A space only describes which values may be tried; it builds no data and fits nothing. Three
adapters read the same space, so a value means the same thing whoever proposes it:

* ``from_optuna(space, trial)``: ``trial.suggest_categorical/int/float`` (an ``optuna.Trial`` or a
  ``FixedTrial``);
* ``from_keras_tuner(space, hp)``: ``hp.Choice/Int/Float/Fixed`` with ``default`` = the paper's value;
* ``from_dict(space, values)``: a plain dict (a stored best trial, or ``{}`` for the paper's own
  configuration): missing keys take the paper's value, unknown keys and values outside the space
  are a ``ConfigError``.

A parameter may be conditional (``when=When("optimizer", ("sgd",))``): it is sampled only when an
earlier parameter of the space takes one of the given values (optuna's define-by-run; keras-tuner's
``conditional_scope``). Every adapter returns the *active* parameters only: an inactive one is left
out, so the run keeps ``TrainConfig``'s value for it, which it does not use (SGD's momentum under
Adam, the third Dense layer's width in a two-layer head).

Every parameter's default is the paper's value, read from ``study.config.field_default`` (the one
place that holds it) unless a regime passes its own; a default outside its range is a bug in the
space and fails when the space is defined.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Mapping, Union

from optuna import distributions as od

from study.config import field_default
from study.errors import ConfigError

_PAPER: Any = object()  # sentinel: "take the default from TrainConfig"


def _paper_default(param: Any, default: Any) -> None:
    """Fill ``default`` from the paper's config and refuse a space whose default it cannot hold."""
    value = field_default(param.name) if default is _PAPER else default
    object.__setattr__(param, "default", value)
    if not param.contains(value):
        raise ValueError(f"the default {value!r} of {param.name} lies outside {param.domain()}")


@dataclass(frozen=True)
class When:
    """Active only when the earlier parameter ``name`` takes one of ``values``."""

    name: str
    values: tuple[Any, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", tuple(self.values))

    def holds(self, values: Mapping[str, Any]) -> bool:
        return self.name in values and any(v == values[self.name] for v in self.values)

    def describe(self) -> str:
        return f"{self.name} in {', '.join(str(v) for v in self.values)}"


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


@dataclass(frozen=True)
class Choice:
    """One of a few values; bools and strings included (``unfreeze`` is "all" or a block count)."""

    name: str
    values: tuple[Any, ...]
    default: Any = _PAPER
    when: When | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", tuple(self.values))
        _paper_default(self, self.default)

    def match(self, value: Any) -> Any:
        """The space's own value equal to ``value`` (so 1 -> True, 2 -> "2"), else ``_PAPER``."""
        for v in self.values:
            if type(v) is type(value) and v == value:
                return v
        return next((v for v in self.values if v == value or str(v) == str(value)), _PAPER)

    def contains(self, value: Any) -> bool:
        return self.match(value) is not _PAPER

    def domain(self) -> str:
        return ", ".join(str(v) for v in self.values)

    def suggest_optuna(self, trial: Any) -> Any:
        return trial.suggest_categorical(self.name, list(self.values))

    def declare_keras(self, hp: Any) -> Any:
        return hp.Choice(self.name, list(self.values), default=self.default)

    def distribution(self) -> od.BaseDistribution | None:
        return od.CategoricalDistribution(list(self.values))


@dataclass(frozen=True)
class Int:
    """An integer in [low, high] on a ``step`` grid (or log-uniform, where step must be 1)."""

    name: str
    low: int
    high: int
    step: int = 1
    log: bool = False
    default: Any = _PAPER
    when: When | None = None

    def __post_init__(self) -> None:
        if self.log and self.step != 1:
            raise ValueError(f"{self.name}: a log-scaled Int needs step 1 (optuna and keras-tuner both say so)")
        _paper_default(self, self.default)

    def match(self, value: Any) -> Any:
        if not _is_number(value) or not float(value).is_integer():
            return _PAPER
        value = int(value)
        return value if self.low <= value <= self.high and (value - self.low) % self.step == 0 else _PAPER

    def contains(self, value: Any) -> bool:
        return self.match(value) is not _PAPER

    def domain(self) -> str:
        return f"{self.low} .. {self.high}" + (f" step {self.step}" if self.step != 1 else "")

    def suggest_optuna(self, trial: Any) -> int:
        return trial.suggest_int(self.name, self.low, self.high, step=self.step, log=self.log)

    def declare_keras(self, hp: Any) -> int:
        sampling = "log" if self.log else "linear"
        return hp.Int(self.name, self.low, self.high, step=self.step, sampling=sampling, default=self.default)

    def distribution(self) -> od.BaseDistribution | None:
        return od.IntDistribution(self.low, self.high, step=self.step, log=self.log)


@dataclass(frozen=True)
class Float:
    """A real number in [low, high], uniform or log-uniform (learning rates, L2 factors)."""

    name: str
    low: float
    high: float
    log: bool = False
    default: Any = _PAPER
    when: When | None = None

    def __post_init__(self) -> None:
        _paper_default(self, self.default)

    def match(self, value: Any) -> Any:
        if not _is_number(value) or not math.isfinite(value):
            return _PAPER
        return float(value) if self.low <= value <= self.high else _PAPER

    def contains(self, value: Any) -> bool:
        return self.match(value) is not _PAPER

    def domain(self) -> str:
        return f"{self.low:g} .. {self.high:g}"

    def suggest_optuna(self, trial: Any) -> float:
        return trial.suggest_float(self.name, self.low, self.high, log=self.log)

    def declare_keras(self, hp: Any) -> float:
        sampling = "log" if self.log else "linear"
        return hp.Float(self.name, self.low, self.high, sampling=sampling, default=self.default)

    def distribution(self) -> od.BaseDistribution | None:
        return od.FloatDistribution(self.low, self.high, log=self.log)


@dataclass(frozen=True)
class Fixed:
    """A value the search does not vary; optuna records no parameter for it."""

    name: str
    value: Any
    default: Any = field(init=False)
    when: When | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "default", self.value)

    def match(self, value: Any) -> Any:
        return self.value if value == self.value or str(value) == str(self.value) else _PAPER

    def contains(self, value: Any) -> bool:
        return self.match(value) is not _PAPER

    def domain(self) -> str:
        return str(self.value)

    def suggest_optuna(self, trial: Any) -> Any:
        return self.value

    def declare_keras(self, hp: Any) -> Any:
        return hp.Fixed(self.name, self.value)

    def distribution(self) -> od.BaseDistribution | None:
        return None


Param = Union[Choice, Int, Float, Fixed]


@dataclass(frozen=True)
class Space:
    """The hyperparameters one regime searches, in display order."""

    regime: str
    params: tuple[Param, ...]

    def __post_init__(self) -> None:
        names = [p.name for p in self.params]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"the {self.regime} space names {', '.join(duplicates)} twice")
        for i, param in enumerate(self.params):
            if param.when is not None and param.when.name not in names[:i]:
                raise ValueError(f"{param.name} is conditional on {param.when.name}, which must come before it")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def __getitem__(self, name: str) -> Param:
        return {p.name: p for p in self.params}[name]

    def defaults(self) -> dict[str, Any]:
        """The default of every parameter that is active when all take their defaults."""
        everything = {p.name: p.default for p in self.params}
        return {name: everything[name] for name in active_names(self, everything)}


# ------------------------------------------------------------------------------------- adapters
def _active(param: Param, values: Mapping[str, Any]) -> bool:
    return param.when is None or param.when.holds(values)


def active_names(space: Space, values: Mapping[str, Any]) -> tuple[str, ...]:
    """The parameters an assignment ``values`` actually uses: those whose condition holds on the
    active parameters before them."""
    active: dict[str, Any] = {}
    for p in space.params:
        if p.name in values and _active(p, active):
            active[p.name] = values[p.name]
    return tuple(active)


def from_optuna(space: Space, trial: Any) -> dict[str, Any]:
    """Sample every active parameter through an ``optuna.Trial`` (or ``FixedTrial``)."""
    values: dict[str, Any] = {}
    for p in space.params:
        if _active(p, values):
            values[p.name] = p.suggest_optuna(trial)
    return values


def from_keras_tuner(space: Space, hp: Any) -> dict[str, Any]:
    """Declare (first call) or read (later calls) every parameter on a keras-tuner ``HyperParameters``,
    conditional ones inside ``hp.conditional_scope`` (keras-tuner returns None for an inactive one).

    keras-tuner stores a bool ``Choice`` as 0/1; ``from_dict`` maps it back to the space's own value.
    """
    declared: dict[str, Any] = {}
    by_name = {p.name: p for p in space.params}
    for p in space.params:
        if p.when is not None and _never_active(p, by_name[p.when.name]):
            continue  # keras-tuner would set a Fixed parent to a value outside it to activate the scope
        if p.when is None:
            declared[p.name] = p.declare_keras(hp)
            continue
        with hp.conditional_scope(p.when.name, list(p.when.values)):
            value = p.declare_keras(hp)
        if value is not None:
            declared[p.name] = value
    return from_dict(space, declared)


def _never_active(param: Param, parent: Param) -> bool:
    return isinstance(parent, Fixed) and not any(parent.match(v) is not _PAPER for v in param.when.values)


def from_dict(space: Space, values: Mapping[str, Any]) -> dict[str, Any]:
    """Validate ``values`` against the space and fill what is missing with the paper's values; the
    result holds the active parameters (a given value for an inactive one is checked, then dropped)."""
    unknown = sorted(set(values) - set(space.names))
    if unknown:
        raise ConfigError(
            f"unknown {space.regime} search parameter(s) {', '.join(unknown)}; valid: {', '.join(space.names)}"
        )
    checked = {p.name: _checked(p, values[p.name]) if p.name in values else p.default for p in space.params}
    return {name: checked[name] for name in active_names(space, checked)}


def _checked(param: Param, value: Any) -> Any:
    matched = param.match(value)
    if matched is _PAPER:
        raise ConfigError(f"{param.name}={value!r} lies outside the search space ({param.domain()})")
    return matched


def distributions(space: Space, values: Mapping[str, Any] | None = None) -> dict[str, od.BaseDistribution]:
    """Optuna distributions of the searched parameters (``Fixed`` ones have none); given a full
    assignment ``values``, of its active parameters only."""
    active = set(active_names(space, values)) if values is not None else set(space.names)
    return {p.name: d for p in space.params if p.name in active and (d := p.distribution()) is not None}


# ---------------------------------------------------------------------------- derived spaces
def grid_space(space: Space) -> Space:
    """The documented grid discretization: ``Choice`` values are enumerated, ``Int`` and ``Float``
    parameters stay at the paper's values (as ``Fixed``).

    A grid over continuous ranges would need an arbitrary number of points per range and grows as a
    product of them (3 points for each of our 17 parameters is 1.3e8 runs); the categorical part
    alone is a few hundred to a few thousand configurations, a grid one can actually enumerate.
    """
    pinned = (p if isinstance(p, (Choice, Fixed)) else Fixed(p.name, p.default, when=p.when) for p in space.params)
    return Space(space.regime, tuple(pinned))


def pin(space: Space, values: Mapping[str, Any]) -> Space:
    """``space`` with the parameters named in ``values`` fixed at those values: a search told a
    setting (``--set optimizer=adam``) does not vary it, and its trials record no parameter for it."""
    pinned = (Fixed(p.name, values[p.name], when=p.when) if p.name in values else p for p in space.params)
    return Space(space.regime, tuple(pinned))


def grid_values(space: Space) -> dict[str, list[Any]]:
    """The search space of optuna's ``GridSampler`` for a space whose params are all Choice/Fixed."""
    numeric = [p.name for p in space.params if not isinstance(p, (Choice, Fixed))]
    if numeric:
        raise ConfigError(f"a grid needs Choice/Fixed parameters only; {', '.join(numeric)} are ranges")
    return {p.name: list(p.values) for p in space.params if isinstance(p, Choice)}


def cap_epochs(values: Mapping[str, Any], max_epochs: int | None) -> dict[str, Any]:
    """A search's epoch cap N: each phase trains at most N epochs (``epochs`` and ``frozen_epochs``).

    Applied to the sampled values just before they become a config, so a trial records what was
    sampled (its params) while training the capped schedule; the cap itself is saved with the
    study, and ``from_dict`` + ``cap_epochs`` rebuilds exactly what a trial trained.
    """
    if max_epochs is None:
        return dict(values)
    if max_epochs < 1:
        raise ConfigError(f"«max_epochs» must be at least 1, got {max_epochs}")
    capped = {k: min(v, max_epochs) for k in ("epochs", "frozen_epochs") if (v := values.get(k)) is not None}
    return {**values, **capped}


# ------------------------------------------------------------------------------------- display
def describe(space: Space) -> list[dict[str, Any]]:
    """One plain row per parameter (name, kind, range or choices, log, paper default) for tables."""
    return [_row(p) for p in space.params]


def _row(param: Param) -> dict[str, Any]:
    return {
        "name": param.name,
        "kind": type(param).__name__.lower(),
        "range": param.domain(),
        "log": bool(getattr(param, "log", False)),
        "default": param.default,
        "when": param.when.describe() if param.when else "",
    }
