"""Each regime's final runs as one ensemble (``study.ensembles``: the mean of their probabilities), beside its
seeds: its own metrics and calibration, and the paired test of the two regimes' ensembles.

Computed for a regime with at least two runs; the ensemble is read from the runs' stored predictions, so it
needs no model and no training.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

from reports.collect import Evidence
from reports.stats import Bootstrap, McNemar, bootstrap_difference, mcnemar_test
from reports.tables import SPLIT_NAMES, ReportTable, Signed, metric_numbers
from study.calibration import BINS, calibration
from study.ensembles import Ensemble, ensemble
from study.evaluation import compute_metrics
from study.runs import Run

MIN_MEMBERS = 2


@dataclass(frozen=True)
class EnsembleResult:
    regime: str
    kind: str  # "seeds": the regime's final runs; "top": its top runs (train --from-study --top K)
    label: str  # its row: "scratch (seeds 0, 1, 2)", or "scratch: top 3 trials (7, 2, 9), 3 runs"
    members: Ensemble
    numbers: dict[str, Any]  # ``tables.metric_numbers`` and ``calibration``'s ece, brier, temperature, *_scaled
    member_accuracies: tuple[float, ...]

    @property
    def predictions(self) -> np.ndarray:
        return self.members.probs.argmax(axis=1)


@dataclass(frozen=True)
class EnsemblePair:
    """The two regimes' ensembles on the same faces: B minus A."""

    name_a: str
    name_b: str
    accuracy_a: float
    accuracy_b: float
    mcnemar: McNemar
    bootstrap: Bootstrap


def evaluate(evidence: Evidence, split: str) -> list[EnsembleResult]:
    """Per regime with at least ``MIN_MEMBERS`` final runs: their ensemble on ``split``; and with at least as many
    top runs (``train --from-study --top K``) evaluated on the same faces, theirs. Each calibrated with a
    temperature fitted on the ensemble's own validation predictions."""
    made = []
    for regime, e in evidence.regimes.items():
        if len(e.runs) >= MIN_MEMBERS:
            made.append(_result(regime, "seeds", f"{regime} (seeds {', '.join(str(r.config.seed) for r in e.runs)})",
                                e.runs, split))
        if len(e.top) >= MIN_MEMBERS and split in _splits(e.top):
            trials = list(dict.fromkeys(str(run.manifest.get("trial", "?")) for run in e.top))
            result = _result(regime, "top", f"{regime}: top {len(trials)} trials ({', '.join(trials)}), "
                             f"{len(e.top)} runs", e.top, split)
            if np.array_equal(result.members.labels, e.runs[0].split(split)[0]):
                made.append(result)
    return made


def _splits(runs: Sequence[Run]) -> set[str]:
    return {name for name in ("val", "test") if all(f"{name}_labels" in run.predictions for run in runs)}


def _result(regime: str, kind: str, label: str, runs: Sequence[Run], split: str) -> EnsembleResult:
    members, val = ensemble(runs, split), ensemble(runs, "val")
    numbers = metric_numbers(compute_metrics(members.labels, members.probs))
    numbers |= calibration(val.labels, val.probs, members.labels, members.probs)
    accuracies = tuple(float(np.mean(run.split(split)[1].argmax(axis=1) == members.labels)) for run in runs)
    return EnsembleResult(regime, kind, label, members, numbers, accuracies)


def pair(results: Sequence[EnsembleResult], regimes: Sequence[str]) -> EnsemblePair | None:
    """The paired tests of the first two regimes' ensembles of final runs, when both have one (the faces are
    checked to be the same by the regimes' own comparison first)."""
    seeds = {r.regime: r for r in results if r.kind == "seeds"}
    if len(regimes) < 2 or not all(r in seeds for r in regimes[:2]):
        return None
    a, b = (seeds[r] for r in regimes[:2])
    labels = a.members.labels
    return EnsemblePair(a.regime, b.regime, a.numbers["accuracy"], b.numbers["accuracy"],
                        mcnemar_test(labels, a.predictions, b.predictions),
                        bootstrap_difference(labels, a.predictions, b.predictions))


def table(results: Sequence[EnsembleResult], split: str) -> ReportTable:
    name = SPLIT_NAMES[split]
    rows = {}
    for result in results:
        n = result.numbers
        mean = float(np.mean(result.member_accuracies))
        rows[result.label] = [
            result.members.size, n["accuracy"], mean, Signed(n["accuracy"] - mean), n["macro_f1"], n["loss"], n["ece"],
            n["brier"], n["ece_scaled"], n["temperature"], "yes" if n["learned"] else "NO"]
    columns = ["runs", "accuracy", "runs' mean accuracy", "gain", "macro-F1", "cross-entropy", "ECE", "Brier",
               "ECE after T", "T", "learned"]
    body = pd.DataFrame.from_dict(rows, orient="index", columns=columns).astype(object)
    body.index.name = "ensemble"
    note = (f"An ensemble is its regime's final runs (one per seed, the same configuration) averaged face by face: "
            f"the mean of their class probabilities, its answer the most probable class (study.ensembles); a top-K "
            f"row averages the K best trials' configurations retrained (the study's top runs). It is evaluated "
            f"as a run is, on the same {name} images. Gain: the ensemble's accuracy minus the mean of its runs'. ECE "
            f"over {BINS} equal-width confidence bins; Brier summed over the 7 classes; T: one temperature fitted on "
            "the ensemble's own validation predictions (T > 1: overconfident), and the ECE after dividing by it. "
            "Learned: accuracy above the majority-class rate by more than chance allows (p < 0.01).")
    return ReportTable("ensembles", f"Each regime's runs as one ensemble ({name})", body, note)
