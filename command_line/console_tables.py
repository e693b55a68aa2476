"""Rich tables for the terminal: a dataset card, a run summary, and the paper's metrics."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from study.data import CLASSES

if TYPE_CHECKING:
    import pandas as pd  # at run time imported where used: pandas alone takes ~0.4 s, and reads never need it


def _num(value: Any, digits: int = 4) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}f}"


def dataset_card(dataset) -> Group:
    """Counts per class and split, with the source, fingerprint and what decoding converted or skipped."""
    counts = dataset.counts()
    lines = [Text(f"{dataset.source} ({dataset.layout} layout)", style="bold")]
    if dataset.synthetic:
        lines.append(Text("SYNTHETIC sample: drawn faces, not real data", style="bold yellow"))
    table = Table()
    table.add_column("class")
    for split in counts.columns:
        table.add_column(split, justify="right")
    for name, row in counts.iterrows():
        table.add_row(str(name), *(str(int(v)) for v in row))
    table.add_row("total", *(str(int(v)) for v in counts.sum()), style="bold")
    return Group(*lines, table, Text(_caption(dataset)))


def _caption(dataset) -> str:
    report = dataset.report
    return (f"fingerprint {dataset.fingerprint}; {report.files} files read, {report.converted} converted to "
            f"48x48 grayscale, {len(report.skipped)} skipped as unreadable")


def run_summary(metrics: dict[str, Any], history: pd.DataFrame, title: str) -> Table:
    """The paper's Table I for one run: last-epoch train metrics and the evaluated splits."""
    table = Table(title=f"{title}: {len(history)} epochs")
    table.add_column("metric")
    table.add_column("value", justify="right")
    last = history.iloc[-1]
    table.add_row("accuracy (last epoch, train)", _num(float(last["accuracy"])))
    table.add_row("cross-entropy (last epoch, train)", _num(float(last["cross_entropy"])))
    table.add_row("loss + L2 penalty (last epoch, train)", _num(float(last["loss"])))
    for split in ("val", "test"):
        if split in metrics:
            for key in ("accuracy", "loss", "macro_f1"):
                table.add_row(f"{split} {key}", _num(metrics[split][key]))
            table.add_row(*_baseline_row(split, metrics[split]))
    return table


def _baseline_row(split: str, metrics: dict[str, Any]) -> tuple[str, str]:
    """What always answering the most common class scores, and whether the run beat it."""
    base = metrics.get("baseline")
    if not base:
        return f"{split} majority-class rate", "n/a"
    verdict = "learned" if metrics.get("learned") else "NOT above it"
    return (f"{split} majority-class rate ({base['majority_class']})", f"{_num(base['majority_rate'])} ({verdict})")


def metrics_tables(metrics: dict[str, Any], title: str) -> list[Table]:
    overall = Table(title=title)
    overall.add_column("metric")
    overall.add_column("value", justify="right")
    for key in ("accuracy", "loss", "macro_f1"):
        overall.add_row(key, _num(metrics[key]))
    if "ece" in metrics:  # metrics.json of runs written before calibration was computed lack them
        overall.add_row("ECE (15 bins) / Brier (multi-class)", f"{_num(metrics['ece'])} / {_num(metrics['brier'])}")
    if "baseline" in metrics:
        overall.add_row(*_baseline_row("", metrics))
        overall.add_row("stratified-random rate", _num(metrics["baseline"]["stratified_rate"]))
        overall.add_row("share of the most common answer", _num(metrics["top_answer_share"]))
    overall.add_row("true positives (total)", str(metrics["true_positives"]["total"]))
    overall.add_row("ROC AUC micro / macro", f"{_num(metrics['roc_auc']['micro'])} / {_num(metrics['roc_auc']['macro'])}")
    overall.add_row("average precision micro", _num(metrics["average_precision"]["micro"]))
    per_class = Table(title="per class")
    for column in ("class", "support", "TP", "precision", "recall", "ROC AUC", "AP"):
        per_class.add_column(column, justify="left" if column == "class" else "right")
    for name in CLASSES:
        per_class.add_row(
            name,
            str(metrics["support"][name]),
            str(metrics["true_positives"][name]),
            _num(metrics["precision"][name], 3),
            _num(metrics["recall"][name], 3),
            _num(metrics["roc_auc"][name], 3),
            _num(metrics["average_precision"][name], 3),
        )
    return [overall, per_class]
