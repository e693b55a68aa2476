"""What the experiments are asked, light to import (no TensorFlow): the command line reads its options'
defaults here, so each default is written once.

``CurveRequest`` is a data-efficiency curve (``study.experiments.curve.plan_curve``); ``FINAL`` holds
the defaults of ``study.experiments.final.train_from_study`` (``train --from-study``).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from study.config import REGIMES

DEFAULT_FRACTIONS = (0.05, 0.1, 0.25, 0.5, 1.0)
# train_from_study: one final run (the study's seed), of the single best trial
FINAL: dict[str, Any] = {"seeds": 1, "top": 1}


@dataclass(frozen=True)
class CurveRequest:
    """What a curve is asked to train (``plan_curve`` turns it into the ``CurvePlan`` its study records)."""

    name: str
    data: str
    fractions: Sequence[float] = DEFAULT_FRACTIONS
    seeds: int = 3  # per regime and fraction: the configuration's seed, +1, ...
    regimes: Sequence[str] = REGIMES
    overrides: Mapping[str, Any] | None = None  # any TrainConfig key, over each regime's configuration
    from_studies: Sequence[str] = ()  # a study per regime: its best configuration, else the defaults
    storage: str | None = None  # where from_studies are
    pretrain_fraction: float = 0.0  # > 0: pretrain the transfer backbone on this share, set aside
    runs_dir: str | Path = "runs"
    regime_overrides: Mapping[str, Mapping[str, Any]] | None = None  # per regime, over ``overrides``


def curve_default(name: str) -> Any:
    """A ``CurveRequest`` field's default: what the command line shows and passes when an option is not given."""
    return {f.name: f.default for f in dataclasses.fields(CurveRequest)}[name]
