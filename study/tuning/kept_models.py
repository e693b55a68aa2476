"""A search keeps every trial's files, but the model itself only for its best few trials.

A trial's model.keras is most of its disk (about 50 MB for DenseNet169, 30 trials 1.5 GB) and its
saving most of the time after its last step, yet nothing reads it but a user who wants that very
trial: reports read predictions and metrics, final training retrains the best configuration. So with
``keep_models=K`` a trial that finishes outside the study's best K (by the search's objective, ties
to the earlier trial) writes no model, and a trial that enters the best K removes the model of the
one it pushed out. The ranking only ever improves, so a model once removed is never wanted back.
Every trial's manifest says whether its model was kept, and why not (``study.runs.drop_model``).

Workers of one study each rank against the store, so K holds across workers up to the trials that
finish at the same moment (each may then keep its model: more is kept, never less).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.study import StudyDirection
from optuna.trial import TrialState

from study import runs
from study.errors import WriteFailed
from study.store import records

KEEP_MODELS = 3  # the default: the best trials' models, for a look at them; final runs keep theirs always


@dataclass(frozen=True)
class ModelKeeping:
    """The best ``keep`` trials of ``study`` keep their model.keras; ``metric`` is the objective's key
    of a run's validation metrics."""

    study: optuna.Study
    name: str  # the study's name, as the user gave it
    keep: int
    metric: str

    @classmethod
    def of(cls, trial: optuna.trial.BaseTrial, name: str, keep: int | None, metric: str) -> "ModelKeeping | None":
        """None (every model kept) without a limit, or for a trial outside a study (a FixedTrial)."""
        if keep is None or not isinstance(trial, optuna.Trial):
            return None
        return cls(trial.study, name, keep, metric)

    @property
    def reason(self) -> str:
        return (f"not among the best {self.keep} trials of study {self.name} when it finished "
                f"(«keep_models» {self.keep}); training its config.json again gives it back")

    def dropped(self, number: int, metrics: dict[str, Any]) -> str | None:
        """Why trial ``number``, with these metrics, writes no model (None: it is among the best)."""
        value = float(metrics["val"][self.metric])
        better = [n for n, v, _ in self._finished() if n != number and self._key(n, v) < self._key(number, value)]
        return self.reason if len(better) >= self.keep else None

    def prune(self, number: int, value: float, run_dir: str | Path) -> list[int]:
        """Remove the models of finished trials outside the best ``keep``, counting trial ``number``
        (in ``run_dir``, not yet told to the study); returns their numbers."""
        finished = [(n, v, d) for n, v, d in self._finished() if n != number] + [(number, value, str(run_dir))]
        ranked = sorted(finished, key=lambda t: self._key(t[0], t[1]))
        removed = []
        for n, _, run_dir in ranked[self.keep:]:
            if run_dir is None or not (Path(run_dir) / runs.MODEL).is_file():
                continue
            try:
                runs.drop_model(run_dir, self.reason)
            except (OSError, WriteFailed):
                continue  # its model stays; the search goes on (a disk that fails here fails the next trial)
            removed.append(n)
        return removed

    def _finished(self) -> list[tuple[int, float, str | None]]:
        trials = self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        return [(t.number, float(t.value), records.run_dir(t)) for t in trials if t.value is not None]

    def _key(self, number: int, value: float) -> tuple[float, int]:
        """Sort key, best first: the objective's direction, NaN last, ties to the earlier trial."""
        if math.isnan(value):
            return (math.inf, number)
        return (-value if self.study.direction == StudyDirection.MAXIMIZE else value, number)
