"""Predictions -> every metric the paper reports, computed by scikit-learn from stored probabilities."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from sklearn import metrics as skm
from sklearn.preprocessing import label_binarize

from study.calibration import brier, ece
from study.data import CLASSES
from study.learning import LEARNED_ALPHA, baseline, learned_pvalue, top_answer_share


def compute_metrics(labels: np.ndarray, probs: np.ndarray, classes: tuple[str, ...] = CLASSES) -> dict[str, Any]:
    """Accuracy, loss, F1, per-class precision/recall, confusion matrix, ROC AUC and AP, and what
    they are read against: the split's majority-class and stratified-random rates, the share of faces
    given the most common answer, and whether accuracy beats the majority rate (``learned``: one-sided
    binomial test at ``LEARNED_ALPHA``; a model that answers one class never does), and calibration:
    the expected calibration error (``ece``) and the multi-class Brier score (``brier``).

    Per-class ROC AUC and AP are NaN (stored as null) for a class absent from ``labels``: the curve
    is undefined there, and pretending otherwise would flatter the model.
    """
    labels = np.asarray(labels, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    probs = probs / probs.sum(axis=1, keepdims=True)  # float32 softmax sums drift from 1 by ~1e-7
    k = len(classes)
    pred = probs.argmax(axis=1)
    onehot = label_binarize(labels, classes=list(range(k)))
    cm = skm.confusion_matrix(labels, pred, labels=list(range(k)))
    precision, recall, _, support = skm.precision_recall_fscore_support(
        labels, pred, labels=list(range(k)), zero_division=0
    )
    present = onehot.sum(axis=0) > 0
    base = baseline(labels, classes)
    pvalue = learned_pvalue(int(np.sum(pred == labels)), len(labels), base.majority_rate)
    return {
        "n": int(len(labels)),
        "accuracy": float(skm.accuracy_score(labels, pred)),
        "baseline": base.to_dict(),
        "top_answer_share": top_answer_share(pred, k),
        "learned": bool(pvalue < LEARNED_ALPHA),
        "learned_pvalue": pvalue,
        "loss": float(skm.log_loss(labels, probs, labels=list(range(k)))),
        "macro_f1": float(skm.f1_score(labels, pred, labels=list(range(k)), average="macro", zero_division=0)),
        "ece": ece(labels, probs),  # 15 equal-width confidence bins (study.calibration)
        "brier": brier(labels, probs),  # multi-class, summed over classes: in [0, 2]
        "precision": _per_class(classes, precision),
        "recall": _per_class(classes, recall),
        "support": _per_class(classes, support),
        "confusion_matrix": cm.tolist(),
        "true_positives": {**_per_class(classes, np.diag(cm)), "total": int(np.trace(cm))},
        "roc_auc": {
            **_per_class(classes, _per_class_score(skm.roc_auc_score, onehot, probs, present)),
            "micro": _safe(skm.roc_auc_score, onehot, probs, average="micro"),
            "macro": _safe(skm.roc_auc_score, onehot[:, present], probs[:, present], average="macro"),
        },
        "average_precision": {
            **_per_class(classes, _per_class_score(skm.average_precision_score, onehot, probs, present)),
            "micro": _safe(skm.average_precision_score, onehot, probs, average="micro"),
        },
    }


def curves(labels: np.ndarray, probs: np.ndarray, classes: tuple[str, ...] = CLASSES) -> dict[str, dict]:
    """Per-class and micro-average ROC and precision-recall curves, as plain arrays for plotting."""
    onehot = label_binarize(np.asarray(labels), classes=list(range(len(classes))))
    out: dict[str, dict] = {"roc": {}, "pr": {}}
    columns = [(name, onehot[:, i], probs[:, i]) for i, name in enumerate(classes) if onehot[:, i].any()]
    columns.append(("micro", onehot.ravel(), np.asarray(probs).ravel()))
    for name, truth, score in columns:
        fpr, tpr, _ = skm.roc_curve(truth, score)
        precision, recall, _ = skm.precision_recall_curve(truth, score)
        out["roc"][name] = (fpr, tpr)
        out["pr"][name] = (recall, precision)
    return out


def _per_class(classes: tuple[str, ...], values: np.ndarray) -> dict[str, Any]:
    return {name: _number(v) for name, v in zip(classes, values)}


def _per_class_score(score, onehot: np.ndarray, probs: np.ndarray, present: np.ndarray) -> list[float]:
    return [score(onehot[:, i], probs[:, i]) if present[i] else math.nan for i in range(onehot.shape[1])]


def _safe(score, truth: np.ndarray, probs: np.ndarray, **kwargs) -> float | None:
    try:
        return float(score(truth, probs, **kwargs))
    except ValueError:  # a single class present: the curve is undefined
        return None


def _number(value: Any) -> Any:
    if isinstance(value, (np.integer, int)):
        return int(value)
    value = float(value)
    return None if math.isnan(value) else value
