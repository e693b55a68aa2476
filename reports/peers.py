"""Off-the-shelf models in the report (``report --baseline fer``): computed on the very faces the runs were
evaluated on, shown as a column of the recall table and in a table of paired differences against each regime.

The peer is ``study.peers``' (its model file fetched once from its wheel). Its faces are the evaluated split
re-read from the runs' dataset (``collect.data_view``); a report whose dataset cannot be re-read, or whose
re-read faces are not the runs' faces, cannot show a peer and says why.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

from reports.collect import DataView, Evidence
from reports.errors import ReportError
from reports.stats import Bootstrap, McNemar, bootstrap_difference, mcnemar_test
from reports.tables import SPLIT_NAMES, Interval, PValue, ReportTable, Signed, metric_numbers
from study import peers as peers_mod
from study.evaluation import compute_metrics


@dataclass(frozen=True)
class PeerResult:
    """One off-the-shelf model on the evaluated faces, and how it compares with each regime on them."""

    peer: peers_mod.Peer
    numbers: dict[str, Any]  # ``tables.metric_numbers``
    against: dict[str, tuple[Bootstrap, McNemar, int]]  # regime -> (peer minus regime, McNemar, the regime's seed)

    @property
    def title(self) -> str:
        return f"{self.peer.name} (off the shelf)"


def evaluate(names: Sequence[str], evidence: Evidence, views: Sequence[DataView], split: str) -> list[PeerResult]:
    """Each named peer's predictions on the runs' ``split`` faces; ``ReportError`` when those faces are not
    at hand."""
    if not names:
        return []
    labels = next(iter(evidence.regimes.values())).runs[0].split(split)[0]
    faces = _faces(views, labels, split)
    predictions = {regime: np.stack([run.split(split)[1].argmax(axis=1) for run in e.runs])
                   for regime, e in evidence.regimes.items()}
    results = []
    for name in dict.fromkeys(names):
        peer = peers_mod.PEERS[name]
        probs = peers_mod.predict(peers_mod.load(peer), peer, faces)
        mine = probs.argmax(axis=1)
        against = {regime: (bootstrap_difference(labels, preds, mine), mcnemar_test(labels, preds[0], mine),
                            e.runs[0].config.seed)
                   for (regime, preds), e in zip(predictions.items(), evidence.regimes.values())}
        results.append(PeerResult(peer, metric_numbers(compute_metrics(labels, probs)), against))
    return results


def _faces(views: Sequence[DataView], labels: np.ndarray, split: str) -> np.ndarray:
    """The evaluated faces, from the one dataset every regime used."""
    if len(views) != 1:
        raise ReportError(f"an off-the-shelf model is compared on the faces the runs share, and the regimes used "
                          f"{len(views)} datasets")
    view = views[0]
    if view.images is None:
        raise ReportError(f"an off-the-shelf model needs the runs' {SPLIT_NAMES[split]} faces, and {view.problem}")
    if len(view.images) != len(labels):
        raise ReportError(f"the {SPLIT_NAMES[split]} faces re-read from {view.source} are not the runs' "
                          f"({len(view.images)} against {len(labels)})")
    return view.images


def table(results: Sequence[PeerResult], split: str) -> ReportTable:
    """Peer minus regime, per peer and regime: the accuracies, the paired bootstrap difference (the regime's
    seeds averaged per face) and McNemar's test against the regime's first seed."""
    rows = {}
    for result in results:
        for regime, (interval, test, seed) in result.against.items():
            regime_accuracy = result.numbers["accuracy"] - interval.difference
            rows[f"{result.peer.name} vs {regime}"] = [
                result.numbers["accuracy"], regime_accuracy, Signed(interval.difference),
                Interval(interval.low, interval.high), f"seed {seed}", test.only_a, test.only_b, PValue(test.pvalue)]
    columns = ["off-the-shelf accuracy", "regime accuracy (mean over seeds)", "difference (off the shelf − regime)",
               "95% bootstrap CI", "McNemar against", "only the regime right", "only off the shelf right",
               "McNemar p"]
    body = pd.DataFrame.from_dict(rows, orient="index", columns=columns).astype(object)
    body.index.name = "models"
    caveats = " ".join(f"{r.peer.name}: {r.peer.caveat}." for r in results)
    note = (f"Each off-the-shelf model reads the same {SPLIT_NAMES[split]} faces as the runs, resized and scaled as "
            "it expects (study.peers), its labels mapped to ours; it was not trained here. The bootstrap averages "
            "each face's correctness over the regime's seeds; McNemar pairs it with the regime's first seed. "
            f"{caveats}")
    return ReportTable("peers", f"Off-the-shelf models against the regimes ({SPLIT_NAMES[split]})", body, note)
