"""What a report shows, computed: the hand-off from ``reports.build`` (compute) to ``reports.compose`` (layout)."""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from reports.collect import DataView, Evidence
from reports.setup import Setup
from reports.stats import Comparison
from reports.tables import ReportTable


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
