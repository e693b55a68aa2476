"""What a report shows, computed: the hand-off from ``reports.build`` (compute) to ``reports.compose`` (layout)."""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from reports.collect import DataView, Evidence
from reports.curve import CurveSummary
from reports.edge import EdgeSummary
from reports.setup import Setup
from reports.stats import ClassComparison, Comparison
from reports.tables import ReportTable
from study.calibration import Reliability


@dataclass(frozen=True, eq=False)
class ReportContent:
    """Everything a report shows; rendering adds nothing but layout."""

    evidence: Evidence
    split: str  # "test", or "val" when some regime has no test predictions
    frame: pd.DataFrame  # one row per run (tables.runs_frame)
    tables: dict[str, ReportTable]
    comparison: Comparison | None
    verdict: list[str]
    data: list[DataView]
    lacks: tuple[str, ...]  # what a partial report lacks; empty for a complete one
    setups: dict[str, Setup]  # per regime: what was compared (model, source, schedule, budget)
    classes: ClassComparison | None = None  # per-class recall tests and the confusion difference (with a comparison)
    calibration: dict[str, RunCalibration] | None = None  # per regime: its first run's reliability bins
    curves: tuple[CurveSummary, ...] = ()  # the store's data-efficiency curves (cli.py curve)
    edges: tuple[EdgeSummary, ...] = ()  # the store's edge searches (a metric against latency or size)


@dataclass(frozen=True)
class RunCalibration:
    """One run's reliability bins on the evaluated split, before and after scaling by ``temperature``
    (fitted on that run's validation predictions)."""

    seed: int
    temperature: float
    before: Reliability
    after: Reliability
