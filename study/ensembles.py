"""An ensemble of finished runs: the mean of their class probabilities, face by face.

What the FER2013 records do (several networks averaged), made from what ``train --from-study --seeds N``
already trains: N runs of one configuration on the same faces. Nothing is trained here; the runs'
stored predictions are read (``Run.split``), so an ensemble is evaluated exactly as its members are.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from study.runs import Run, RunError


@dataclass(frozen=True)
class Ensemble:
    """The members' seeds and the mean of their probabilities on one split."""

    seeds: tuple[int, ...]
    labels: np.ndarray
    probs: np.ndarray

    @property
    def size(self) -> int:
        return len(self.seeds)


def ensemble(runs: Sequence[Run], split: str) -> Ensemble:
    """The mean of ``runs``' probabilities on ``split``; ``RunError`` when they were not evaluated on the same
    faces (different labels, or different counts)."""
    if not runs:
        raise ValueError("an ensemble needs at least one run")
    labels, _ = runs[0].split(split)
    stacked = []
    for run in runs:
        theirs, probs = run.split(split)
        if len(theirs) != len(labels) or not np.array_equal(theirs, labels):
            raise RunError(f"runs {runs[0].path} and {run.path} were not evaluated on the same {split} faces: "
                           "an ensemble averages each face's predictions, so its members must share them")
        stacked.append(np.asarray(probs, dtype=np.float64))
    return Ensemble(tuple(run.config.seed for run in runs), np.asarray(labels), np.mean(stacked, axis=0))
