"""Evaluation numbers against a case worked by hand and against scikit-learn called independently."""
import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from study.data import CLASSES
from study.evaluation import compute_metrics, curves


def _probs(predicted: list[int], confidence: float = 0.7) -> np.ndarray:
    k = len(CLASSES)
    probs = np.full((len(predicted), k), (1 - confidence) / (k - 1))
    probs[np.arange(len(predicted)), predicted] = confidence
    return probs


def test_hand_checked_case():
    # 6 images: angry x2, happy x3, sad x1; one happy predicted as sad, the sad predicted as angry.
    happy, angry, sad = CLASSES.index("happy"), CLASSES.index("angry"), CLASSES.index("sad")
    labels = np.array([angry, angry, happy, happy, happy, sad])
    predicted = [angry, angry, happy, happy, sad, angry]
    m = compute_metrics(labels, _probs(predicted))
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["true_positives"] == {**{c: 0 for c in CLASSES}, "angry": 2, "happy": 2, "total": 4}
    assert m["precision"]["angry"] == pytest.approx(2 / 3)  # 2 of 3 "angry" predictions are right
    assert m["recall"]["happy"] == pytest.approx(2 / 3)
    assert m["recall"]["sad"] == 0.0
    assert m["confusion_matrix"][sad][angry] == 1
    # loss: mean of -log p(true): four right at 0.7, two wrong at 0.05
    assert m["loss"] == pytest.approx(-(4 * np.log(0.7) + 2 * np.log(0.05)) / 6)
    # macro F1 over 7 labels: angry 0.8, happy 0.8, sad 0, the 4 absent classes 0
    assert m["macro_f1"] == pytest.approx((0.8 + 0.8) / 7)
    # calibration: every confidence is 0.7, one bin, accuracy 4/6 -> ECE |4/6 - 0.7| = 1/30
    assert m["ece"] == pytest.approx(1 / 30)
    # Brier, summed over 7 classes: right 0.3^2 + 6 * 0.05^2 = 0.105, wrong 0.7^2 + 0.95^2 + 5 * 0.05^2 = 1.405
    assert m["brier"] == pytest.approx((4 * 0.105 + 2 * 1.405) / 6)
    # classes absent from the labels have no ROC AUC / AP (undefined), not a flattering number
    assert m["roc_auc"]["disgust"] is None and m["average_precision"]["fear"] is None


def test_matches_sklearn_on_random_predictions():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 7, 500)
    logits = rng.normal(size=(500, 7)) + 2.0 * np.eye(7)[labels]
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    m = compute_metrics(labels, probs)
    onehot = np.eye(7)[labels]
    for i, name in enumerate(CLASSES):
        assert m["roc_auc"][name] == pytest.approx(roc_auc_score(onehot[:, i], probs[:, i]))
        assert m["average_precision"][name] == pytest.approx(average_precision_score(onehot[:, i], probs[:, i]))
    assert m["roc_auc"]["micro"] == pytest.approx(roc_auc_score(onehot.ravel(), probs.ravel()))
    assert m["roc_auc"]["macro"] == pytest.approx(roc_auc_score(onehot, probs, average="macro"))
    assert m["average_precision"]["micro"] == pytest.approx(average_precision_score(onehot, probs, average="micro"))
    assert m["true_positives"]["total"] == int((probs.argmax(1) == labels).sum())
    lines = curves(labels, probs)
    assert set(lines["roc"]) == set(CLASSES) | {"micro"}
