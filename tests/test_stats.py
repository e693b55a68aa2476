"""The report's statistics against hand-worked cases and statsmodels; the verdict follows them.

McNemar, worked by hand: with b images right only for model A and c right only for model B, the
exact test is two-sided binomial on b + c trials at p = 0.5, and the chi-square test with continuity
correction has statistic (|b - c| - 1)^2 / (b + c) with one degree of freedom.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats
from sklearn.metrics import confusion_matrix
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests

from reports.paper import PaperValue
from reports.stats import (
    Bootstrap,
    Comparison,
    Estimate,
    McNemar,
    PairingError,
    SeedPair,
    bootstrap_difference,
    check_same_images,
    class_tests,
    compare,
    compare_classes,
    mcnemar_test,
    t_interval,
)
from reports.tables import Duration, Interval, PValue, Sig, Signed, format_value
from reports.verdict import verdict


def outcomes(both: int, only_a: int, only_b: int, neither: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels and two prediction vectors with exactly these counts of (A right, B right) images."""
    right_a = np.array([1] * both + [1] * only_a + [0] * only_b + [0] * neither, bool)
    right_b = np.array([1] * both + [0] * only_a + [1] * only_b + [0] * neither, bool)
    labels = np.arange(len(right_a)) % 7
    return labels, np.where(right_a, labels, (labels + 1) % 7), np.where(right_b, labels, (labels + 2) % 7)


# -------------------------------------------------------------------------------- t-interval
def test_t_interval_matches_scipy_and_a_hand_worked_case() -> None:
    estimate = t_interval([0.4, 0.5, 0.6])
    assert estimate.mean == pytest.approx(0.5) and estimate.n == 3
    assert estimate.half_width == pytest.approx(4.302652729911275 * 0.1 / math.sqrt(3))  # t(0.975, 2) * sd / sqrt 3
    low, high = scipy_stats.t.interval(0.95, 2, loc=0.5, scale=scipy_stats.sem([0.4, 0.5, 0.6]))
    assert (estimate.low, estimate.high) == (pytest.approx(low), pytest.approx(high))
    assert not estimate.clipped and estimate.spread == "t"


def test_two_seeds_give_their_range_and_an_interval_stops_at_natural_bounds() -> None:
    two = t_interval([0.52, 0.61])
    assert two.half_width is None and two.spread == "range" and (two.low, two.high) == (0.52, 0.61)
    assert format_value(two) == "0.5650 (range 0.5200–0.6100)"
    counts = t_interval([0.0, 3.0, 12.0], kind="count")  # t-interval 5 ± 15.6: a count cannot be negative
    assert counts.clipped and counts.low == 0.0 and counts.high == pytest.approx(5 + counts.half_width)
    assert format_value(counts) == f"5.0 [0.0, {5 + counts.half_width:.1f}]"
    share = t_interval([0.90, 0.99, 1.0])
    assert share.high == 1.0 and format_value(share).endswith(", 1.0000]")
    loss = t_interval([1.5, 2.5, 3.5], kind="loss")  # bounded below only
    assert loss.high == pytest.approx(2.5 + loss.half_width) and not loss.clipped


def test_one_seed_has_no_interval_and_missing_values_are_skipped() -> None:
    assert t_interval([0.7]) == Estimate(0.7, None, 1)
    assert t_interval([None, 0.5, math.nan, 0.7]).n == 2
    assert t_interval([None]) == Estimate(None, None, 0)
    assert t_interval([0.5, 0.5, 0.5]).half_width == 0.0


# ---------------------------------------------------------------------------------- McNemar
def test_mcnemar_exact_hand_worked() -> None:
    labels, a, b = outcomes(both=20, only_a=1, only_b=7, neither=5)
    result = mcnemar_test(labels, a, b)
    assert (result.only_a, result.only_b, result.exact) == (1, 7, True)
    assert result.pvalue == pytest.approx(2 * (1 + 8) / 2 ** 8)  # 2 * P(X <= 1), X ~ Binomial(8, 1/2)
    assert not result.significant()


def test_mcnemar_chi_square_hand_worked_and_equal_to_statsmodels() -> None:
    labels, a, b = outcomes(both=40, only_a=10, only_b=25, neither=12)
    result = mcnemar_test(labels, a, b)
    assert result.exact is False and result.discordant == 35
    assert result.statistic == pytest.approx((abs(10 - 25) - 1) ** 2 / 35)
    assert result.pvalue == pytest.approx(scipy_stats.chi2.sf(5.6, 1))
    reference = mcnemar([[40, 10], [25, 12]], exact=False, correction=True)
    assert result.pvalue == pytest.approx(reference.pvalue) and result.significant()


def test_mcnemar_without_discordant_images_finds_nothing() -> None:
    labels, a, _ = outcomes(both=10, only_a=0, only_b=0, neither=3)
    result = mcnemar_test(labels, a, a)
    assert result.pvalue == 1.0 and result.discordant == 0


# -------------------------------------------------------------------------------- bootstrap
def test_identical_predictions_give_zero_and_a_zero_interval() -> None:
    labels, a, _ = outcomes(both=30, only_a=5, only_b=0, neither=10)
    result = bootstrap_difference(labels, a, a)
    assert (result.difference, result.low, result.high) == (0.0, 0.0, 0.0)
    assert not result.excludes_zero


def test_bootstrap_is_the_percentile_interval_of_paired_resamples_and_deterministic() -> None:
    labels, a, b = outcomes(both=30, only_a=4, only_b=12, neither=9)
    result = bootstrap_difference(labels, a, b, resamples=500, seed=7)
    gain = (b == labels).astype(float) - (a == labels)
    means = gain[np.random.default_rng(7).integers(0, len(gain), size=(500, len(gain)))].mean(axis=1)
    assert result.difference == pytest.approx((12 - 4) / len(labels))
    assert (result.low, result.high) == (pytest.approx(np.quantile(means, 0.025)), pytest.approx(np.quantile(means, 0.975)))
    assert bootstrap_difference(labels, a, b, resamples=500, seed=7) == result
    assert bootstrap_difference(labels, a, b, resamples=500, seed=8) != result


def test_bootstrap_chunks_large_sets_and_always_right_minus_always_wrong_is_one() -> None:
    labels = np.arange(9000) % 7
    wrong = (labels + 1) % 7
    result = bootstrap_difference(labels, wrong, labels, resamples=300)
    assert (result.difference, result.low, result.high, result.excludes_zero) == (1.0, 1.0, 1.0, True)


def test_pooled_bootstrap_averages_each_image_over_the_seeds() -> None:
    labels, a0, b0 = outcomes(both=20, only_a=2, only_b=8, neither=6)
    _, a1, b1 = outcomes(both=22, only_a=4, only_b=4, neither=6)
    pooled = bootstrap_difference(labels, np.stack([a0, a1]), np.stack([b0, b1]))
    expected = (np.mean([np.mean(b0 == labels), np.mean(b1 == labels)])
                - np.mean([np.mean(a0 == labels), np.mean(a1 == labels)]))
    assert pooled.difference == pytest.approx(expected)


# ------------------------------------------------------------------------------- comparison
def test_compare_pairs_equal_seeds_and_falls_back_to_seed_order() -> None:
    labels, a, b = outcomes(both=30, only_a=3, only_b=9, neither=8)
    same = compare(labels, {0: a, 1: a}, {0: b, 1: b}, "scratch", "transfer", "test", resamples=200)
    assert [(p.seed_a, p.seed_b) for p in same.pairs] == [(0, 0), (1, 1)]
    assert not same.by_rank and same.unpaired == ()
    assert same.pairs[0].mcnemar == mcnemar_test(labels, a, b)
    shifted = compare(labels, {0: a, 1: a}, {5: b, 6: b, 7: b}, "scratch", "transfer", "test", resamples=200)
    assert [(p.seed_a, p.seed_b) for p in shifted.pairs] == [(0, 5), (1, 6)]
    assert shifted.by_rank and shifted.unpaired == ("transfer seed 7",)


def test_runs_on_different_images_are_refused_with_the_reason() -> None:
    labels = np.arange(10) % 7
    with pytest.raises(PairingError, match="scratch seed 0 was evaluated on data aaaa and transfer seed 0 on data bbbb"):
        check_same_images({"scratch seed 0": labels, "transfer seed 0": labels},
                          {"scratch seed 0": "aaaa", "transfer seed 0": "bbbb"}, "test")
    same = {"scratch seed 0": "aaaa", "transfer seed 0": "aaaa"}
    with pytest.raises(PairingError, match="scratch seed 0 has 10 test labels and transfer seed 0 has 9"):
        check_same_images({"scratch seed 0": labels, "transfer seed 0": labels[:9]}, same, "test")
    with pytest.raises(PairingError, match="labels of scratch seed 0 and transfer seed 0 differ at 1 of 10 images"):
        check_same_images({"scratch seed 0": labels, "transfer seed 0": np.r_[labels[:9], 6]}, same, "test")
    assert np.array_equal(check_same_images({"scratch seed 0": labels, "transfer seed 0": labels.copy()}, same, "test"),
                          labels)


# -------------------------------------------------------------------------------- per class
CLASS_NAMES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def per_class_case() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """40 images per class. A and B agree everywhere except: happy, recalled 10 times by A and 38 by B
    (28 discordant: chi-square, p ~ 3e-7), and fear, 6 images recalled by B only (exact p = 2/2^6 = 0.031,
    significant alone, not after Holm: its adjusted p is 6 x 0.031)."""
    labels = np.repeat(np.arange(7), 40)
    a = labels.copy()
    a[::3] = (labels[::3] + 1) % 7  # both models miss every third image of every class
    b = a.copy()
    happy, fear = np.flatnonzero(labels == 3), np.flatnonzero(labels == 2)
    a[happy] = np.where(np.arange(40) < 10, 3, 0)
    b[happy] = np.where(np.arange(40) < 38, 3, 0)
    missed_by_a = fear[a[fear] != 2][:6]  # six of the images both missed: B now gets them
    b[missed_by_a] = 2
    return labels, a, b


def test_per_class_mcnemar_names_the_class_that_changed_after_holm() -> None:
    labels, a, b = per_class_case()
    tests = class_tests(labels, a, b, CLASS_NAMES)
    by_name = {t.name: t for t in tests}
    happy, fear = by_name["happy"], by_name["fear"]
    assert (happy.recall_a, happy.recall_b, happy.difference) == (0.25, 0.95, pytest.approx(0.70))
    assert (happy.mcnemar.only_a, happy.mcnemar.only_b, happy.mcnemar.exact) == (0, 28, False)
    assert happy.significant and happy.p_adjusted == pytest.approx(7 * scipy_stats.chi2.sf(27 ** 2 / 28, 1))
    assert fear.mcnemar.pvalue == pytest.approx(2 / 2 ** 6) and fear.mcnemar.pvalue < 0.05
    assert not fear.significant and fear.p_adjusted == pytest.approx(6 * 2 / 2 ** 6)  # Holm's second step
    raw = [t.mcnemar.pvalue for t in tests]
    reject, adjusted, _, _ = multipletests(raw, alpha=0.05, method="holm")
    assert [t.significant for t in tests] == list(reject)
    assert [t.p_adjusted for t in tests] == pytest.approx(list(adjusted))
    assert [t.name for t in tests if t.significant] == ["happy"]
    unchanged = [t for t in tests if t.name not in ("happy", "fear")]
    assert all(t.difference == 0 and t.p_adjusted == 1.0 for t in unchanged)


def test_a_class_without_images_is_not_tested_and_not_counted_by_holm() -> None:
    labels, a, b = per_class_case()
    keep = labels != 6  # no neutral images
    tests = class_tests(labels[keep], a[keep], b[keep], CLASS_NAMES)
    neutral = tests[6]
    assert (neutral.n, neutral.recall_a, neutral.mcnemar, neutral.p_adjusted) == (0, None, None, None)
    assert tests[3].p_adjusted == pytest.approx(6 * tests[3].mcnemar.pvalue)  # six tests now, not seven


def test_compare_classes_pairs_seeds_like_compare_and_differences_the_normalized_confusion() -> None:
    labels, a, b = per_class_case()
    result = compare_classes(labels, {0: a, 1: a}, {3: b, 4: labels}, "scratch", "transfer", "test", CLASS_NAMES)
    assert [(p.seed_a, p.seed_b) for p in result.pairs] == [(0, 3), (1, 4)]  # by seed order, as compare
    assert result.pairs[0].classes == class_tests(labels, a, b, CLASS_NAMES)
    assert result.significant_in("happy") == 2 and result.significant_in("angry") == 1  # B seed 4 is always right
    assert result.changed() == list(CLASS_NAMES)
    assert result.recall("transfer", "happy") == pytest.approx((0.95 + 1.0) / 2)
    expected = np.mean([confusion_matrix(labels, p, normalize="true") for p in (b, labels)], axis=0) - \
        confusion_matrix(labels, a, normalize="true")
    assert np.allclose(result.confusion_difference, expected)
    assert result.confusion_difference[3, 3] == pytest.approx((0.95 + 1.0) / 2 - 0.25)  # the change in happy's recall
    assert np.allclose(result.confusion_difference.sum(axis=1), 0.0)  # rows of shares: what one gains another loses


# --------------------------------------------------------------------------------- verdict
def comparison(pvalues: list[float], low: float, high: float, acc_a: float = 0.60, acc_b: float = 0.64) -> Comparison:
    pairs = tuple(SeedPair(s, s, acc_a, acc_b, McNemar(10, 20, 3.0, p, False), Bootstrap(acc_b - acc_a, low, high, 2000, 0, 0.95))
                  for s, p in enumerate(pvalues))
    return Comparison("scratch", "transfer", "test", 1000, pairs, Bootstrap(acc_b - acc_a, low, high, 2000, 0, 0.95),
                      False, ())


def accuracies(n: int, acc_a: float = 0.60, acc_b: float = 0.64) -> dict[str, Estimate]:
    return {"scratch": Estimate(acc_a, 0.01 if n > 1 else None, n), "transfer": Estimate(acc_b, 0.01 if n > 1 else None, n)}


def test_verdict_names_a_winner_only_when_both_tests_agree() -> None:
    text = verdict(comparison([0.001, 0.004, 0.02], 0.01, 0.07), accuracies(3), synthetic=False)
    assert text[0].startswith("Transfer has the higher mean test accuracy: 0.6400 against 0.6000 for scratch, 4.00 "
                              "percentage points more")
    assert "in 3 of 3 pair(s): 3 favouring transfer" in text[1]
    assert "[+0.0100, +0.0700] around +0.0400; it excludes 0" in text[2]
    assert text[3] == ("Both tests agree: transfer is more accurate than scratch on these test images. This agrees with "
                       "the paper's conclusion that transfer learning improves accuracy.")
    assert len(text) == 4


def test_verdict_says_mixed_or_no_difference_when_the_numbers_do() -> None:
    mixed = verdict(comparison([0.001, 0.3], 0.005, 0.07), accuracies(2), synthetic=False)
    assert mixed[3].startswith("The evidence is mixed") and "names no winner" in mixed[3]
    null = verdict(comparison([0.4], -0.02, 0.09), accuracies(1), synthetic=True)
    assert "no significant difference at the 0.05 level in any of the 1 pair(s)" in null[1]
    assert "includes 0" in null[2]
    assert null[3].startswith("Neither test finds a significant difference")
    assert any("one run for a regime" in s for s in null) and any("SYNTHETIC SAMPLE" in s for s in null)


def test_verdict_says_when_scratch_wins_against_the_paper() -> None:
    text = verdict(comparison([0.001], -0.08, -0.01, acc_a=0.66, acc_b=0.62), accuracies(1, 0.66, 0.62), synthetic=False)
    assert text[0].startswith("Scratch has the higher mean test accuracy")
    assert "1 favouring scratch" in text[1]
    assert "contradicts the paper's conclusion" in text[3]


# ------------------------------------------------------------------------------ formatting
@pytest.mark.parametrize(("value", "text"), [
    (Estimate(0.61234, 0.01234, 3), "0.6123 ± 0.0123"),
    (Estimate(0.61234, None, 1), "0.6123"),
    (Estimate(561.333, 4.25, 3, "count"), "561.3 ± 4.2"),
    (Estimate(561.0, None, 1, "count"), "561"),
    (Estimate(None, None, 0), "n/a"),
    (PaperValue(0.72), "≈0.72"),
    (PaperValue(4608, approx=False), "4608"),
    (Signed(0.0335), "+0.0335"),
    (Interval(-0.0021, 0.0458), "[-0.0021, +0.0458]"),
    (PValue(0.00001), "<0.0001"),
    (Sig(0.000123456), "0.0001235"),
    (Duration(3723.4), "1:02:03"),
    (True, "yes"),
    (np.int64(7), "7"),
    (math.nan, "n/a"),
    (None, "n/a"),
])
def test_format_value(value, text: str) -> None:
    assert format_value(value) == text
