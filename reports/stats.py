"""Statistics of the comparison: t-intervals over seeds, McNemar's test, a paired bootstrap.

Two sources of randomness, two kinds of evidence. A t-interval over seeds says how much a metric
moves when training is repeated. McNemar's test and the bootstrap say whether two models differ on
*these* test images: both read the same images for both regimes (paired), which is far more
sensitive than comparing two accuracies as if they came from different samples. Neither kind stands
in for the other, so a report shows both.

Bootstrap design: images are resampled with replacement, the same indices for both regimes (paired);
each regime's per-image correctness is averaged over its seeds first, so one CI covers all seeds
(``pooled``) while each seed pair also gets its own CI and McNemar test. The CI is the percentile
interval of ``RESAMPLES`` resamples drawn from ``numpy.random.default_rng(BOOTSTRAP_SEED)``, so a
report is reproducible to the last digit.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import fmean, stdev
from typing import Mapping, Sequence

import numpy as np
from scipy import stats as scipy_stats
from sklearn.metrics import confusion_matrix
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests

from study.errors import UserError

ALPHA = 0.05
CONFIDENCE = 1.0 - ALPHA
RESAMPLES = 2000
BOOTSTRAP_SEED = 0
EXACT_BELOW = 25  # discordant pairs: below this, McNemar's exact binomial test, else chi-square
_CHUNK_CELLS = 2_000_000  # resample indices held in memory at once (a 7k-image test set x 2000 is 14M)


class PairingError(UserError):
    """Two regimes cannot be compared image by image: they were not evaluated on the same images."""


# ------------------------------------------------------------------------------------ over seeds
MIN_T_SEEDS = 3  # below this, the seeds' range instead of a t-interval (with 2 seeds t is 12.7: ±9 sd wide)
NATURAL_BOUNDS = {"metric": (0.0, 1.0), "count": (0.0, None), "loss": (0.0, None)}


@dataclass(frozen=True)
class Estimate:
    """Mean over seeds and its spread: the half-width of a 95% t-interval from ``MIN_T_SEEDS`` values
    on, the seeds' range (``minimum``..``maximum``) with two, nothing with one.

    ``kind`` says what the values are and so where an interval must stop: "metric" (a fraction in
    [0, 1]), "loss" (at least 0) or "count" (true positives, at least 0). ``low``/``high`` are cut at
    those bounds; a t-interval reaching past them says only that the seeds are too few.
    """

    mean: float | None
    half_width: float | None
    n: int
    kind: str = "metric"
    minimum: float | None = None
    maximum: float | None = None

    @property
    def spread(self) -> str:
        """"t" (a t-interval), "range" (two seeds) or "" (none)."""
        if self.half_width is not None:
            return "t"
        return "range" if self.minimum is not None and self.n >= 2 else ""

    @property
    def low(self) -> float | None:
        if self.mean is None:
            return None
        if self.spread == "range":
            return self.minimum
        return None if self.half_width is None else self._clip(self.mean - self.half_width)

    @property
    def high(self) -> float | None:
        if self.mean is None:
            return None
        if self.spread == "range":
            return self.maximum
        return None if self.half_width is None else self._clip(self.mean + self.half_width)

    @property
    def clipped(self) -> bool:
        """The t-interval reaches past a natural bound (a count below 0, a fraction above 1)."""
        if self.half_width is None or self.mean is None:
            return False
        return self._clip(self.mean - self.half_width) != self.mean - self.half_width or \
            self._clip(self.mean + self.half_width) != self.mean + self.half_width

    def _clip(self, value: float) -> float:
        low, high = NATURAL_BOUNDS.get(self.kind, (None, None))
        value = value if low is None else max(low, value)
        return value if high is None else min(high, value)


def t_interval(values: Sequence[float | None], kind: str = "metric", confidence: float = CONFIDENCE) -> Estimate:
    """Student-t interval of the mean (from ``MIN_T_SEEDS`` values; the range with two); missing values
    (a class absent from the labels) are skipped."""
    clean = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    if not clean:
        return Estimate(None, None, 0, kind)
    if len(clean) < 2:
        return Estimate(clean[0], None, 1, kind)
    if len(clean) < MIN_T_SEEDS:
        return Estimate(fmean(clean), None, len(clean), kind, min(clean), max(clean))
    quantile = scipy_stats.t.ppf((1.0 + confidence) / 2.0, len(clean) - 1)
    return Estimate(fmean(clean), float(quantile * stdev(clean) / math.sqrt(len(clean))), len(clean), kind,
                    min(clean), max(clean))


# ----------------------------------------------------------------------------------- one pair
@dataclass(frozen=True)
class McNemar:
    """McNemar's test on one pair of models: only the images exactly one of them got right count."""

    only_a: int  # images model A classified correctly and model B did not
    only_b: int
    statistic: float
    pvalue: float
    exact: bool  # exact binomial test (few discordant images) rather than chi-square with correction

    @property
    def discordant(self) -> int:
        return self.only_a + self.only_b

    def significant(self, alpha: float = ALPHA) -> bool:
        return self.pvalue < alpha


def mcnemar_test(labels: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray) -> McNemar:
    """statsmodels' McNemar: exact when fewer than ``EXACT_BELOW`` discordant images, else corrected chi-square."""
    right_a, right_b = _correct(pred_a, labels), _correct(pred_b, labels)
    both, only_a = int(np.sum(right_a & right_b)), int(np.sum(right_a & ~right_b))
    only_b, neither = int(np.sum(~right_a & right_b)), int(np.sum(~right_a & ~right_b))
    exact = only_a + only_b < EXACT_BELOW
    result = mcnemar([[both, only_a], [only_b, neither]], exact=exact, correction=True)
    return McNemar(only_a, only_b, float(result.statistic), float(result.pvalue), exact)


@dataclass(frozen=True)
class Bootstrap:
    """Accuracy of B minus accuracy of A, with its paired percentile bootstrap interval."""

    difference: float
    low: float
    high: float
    resamples: int
    seed: int
    confidence: float

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0.0 or self.high < 0.0


def bootstrap_difference(labels: np.ndarray, preds_a: np.ndarray, preds_b: np.ndarray, resamples: int = RESAMPLES,
                         seed: int = BOOTSTRAP_SEED, confidence: float = CONFIDENCE) -> Bootstrap:
    """Paired bootstrap of accuracy(B) - accuracy(A); ``preds_*`` are (n,) or (runs, n) predicted labels.

    With several runs per side, each image's correctness is averaged over that side's runs first.
    """
    gain = _correctness(preds_b, labels) - _correctness(preds_a, labels)
    means = _resampled_means(gain, resamples, seed)
    low, high = np.quantile(means, [(1.0 - confidence) / 2.0, (1.0 + confidence) / 2.0])
    return Bootstrap(float(gain.mean()), float(low), float(high), resamples, seed, confidence)


def _resampled_means(values: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """Means of ``resamples`` with-replacement resamples, drawn in chunks to bound memory."""
    rng = np.random.default_rng(seed)
    n = len(values)
    per_chunk = max(1, _CHUNK_CELLS // max(n, 1))
    sizes = [min(per_chunk, resamples - start) for start in range(0, resamples, per_chunk)]
    return np.concatenate([values[rng.integers(0, n, size=(size, n))].mean(axis=1) for size in sizes])


def _correct(pred: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return np.asarray(pred) == np.asarray(labels)


def _correctness(preds: np.ndarray, labels: np.ndarray) -> np.ndarray:
    preds = np.atleast_2d(np.asarray(preds))
    return (preds == np.asarray(labels)[None, :]).mean(axis=0)


# ------------------------------------------------------------------------------- two regimes
@dataclass(frozen=True)
class SeedPair:
    """One model of each regime, compared on the same images."""

    seed_a: int
    seed_b: int
    accuracy_a: float
    accuracy_b: float
    mcnemar: McNemar
    bootstrap: Bootstrap


@dataclass(frozen=True)
class Comparison:
    """Regime B against regime A (difference = B - A) on ``n_images`` shared images of ``split``."""

    name_a: str
    name_b: str
    split: str
    n_images: int
    pairs: tuple[SeedPair, ...]
    pooled: Bootstrap
    by_rank: bool  # the seeds differ between regimes, so runs were paired by seed order
    unpaired: tuple[str, ...]  # runs left without a partner (unequal seed counts)


def compare(labels: np.ndarray, preds_a: Mapping[int, np.ndarray], preds_b: Mapping[int, np.ndarray],
            name_a: str, name_b: str, split: str, resamples: int = RESAMPLES, seed: int = BOOTSTRAP_SEED) -> Comparison:
    """Pair runs by seed (or by seed order when the seeds differ), test each pair, and pool all seeds."""
    seeds_a, seeds_b = sorted(preds_a), sorted(preds_b)
    by_rank = seeds_a != seeds_b
    pairs = tuple(
        SeedPair(sa, sb, float(_correct(preds_a[sa], labels).mean()), float(_correct(preds_b[sb], labels).mean()),
                 mcnemar_test(labels, preds_a[sa], preds_b[sb]),
                 bootstrap_difference(labels, preds_a[sa], preds_b[sb], resamples, seed))
        for sa, sb in seed_pairs(preds_a, preds_b)
    )
    unpaired = tuple(f"{name_a} seed {s}" for s in seeds_a[len(pairs):]) + tuple(
        f"{name_b} seed {s}" for s in seeds_b[len(pairs):])
    pooled = bootstrap_difference(labels, np.stack([preds_a[s] for s in seeds_a]),
                                  np.stack([preds_b[s] for s in seeds_b]), resamples, seed)
    return Comparison(name_a, name_b, split, int(len(labels)), pairs, pooled, by_rank, unpaired)


def check_same_images(labels: Mapping[str, np.ndarray], fingerprints: Mapping[str, str], split: str) -> np.ndarray:
    """The labels every run shares, or a ``PairingError`` naming two runs that were not on the same images.

    Keys name runs ("scratch seed 0"). Different data fingerprints are reported first: that is the
    usual cause, and the fix (train both regimes on the same data) is clearer than a label mismatch.
    """
    names = list(labels)
    first = names[0]
    for other in names[1:]:
        if fingerprints[other] != fingerprints[first]:
            raise PairingError(
                f"cannot pair the regimes: {first} was evaluated on data {fingerprints[first]} and {other} on "
                f"data {fingerprints[other]} (different {split} images); train both regimes on the same dataset"
            )
        _check_labels(labels[first], labels[other], first, other, split)
    return np.asarray(labels[first])


def _check_labels(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str, split: str) -> None:
    if len(a) != len(b):
        raise PairingError(f"cannot pair the regimes: {name_a} has {len(a)} {split} labels and {name_b} has "
                           f"{len(b)}; they were not evaluated on the same images")
    differ = int(np.sum(np.asarray(a) != np.asarray(b)))
    if differ:
        raise PairingError(f"cannot pair the regimes: the {split} labels of {name_a} and {name_b} differ at {differ} "
                           f"of {len(a)} images; they were not evaluated on the same images")


def seed_pairs(preds_a: Mapping[int, np.ndarray], preds_b: Mapping[int, np.ndarray]) -> list[tuple[int, int]]:
    """The seed pairs every paired test uses: equal seeds, or seeds in sorted order when they differ."""
    return list(zip(sorted(preds_a), sorted(preds_b)))


# ------------------------------------------------------------------------------------ per class
@dataclass(frozen=True)
class ClassTest:
    """One class in one seed pair: recall of A and B on that class's images, McNemar on those images,
    its p-value after Holm's correction across the classes of the pair."""

    name: str
    n: int  # images of this class
    recall_a: float | None  # None for a class without images
    recall_b: float | None
    mcnemar: McNemar | None
    p_adjusted: float | None
    significant: bool

    @property
    def difference(self) -> float | None:
        """recall B - recall A."""
        return None if self.recall_a is None or self.recall_b is None else self.recall_b - self.recall_a


@dataclass(frozen=True)
class ClassPair:
    seed_a: int
    seed_b: int
    classes: tuple[ClassTest, ...]


@dataclass(frozen=True)
class ClassComparison:
    """Per-class recall of B against A (difference = B - A), tested per seed pair, and the difference of
    the row-normalized confusion matrices (B minus A, each the mean over its regime's seeds)."""

    name_a: str
    name_b: str
    split: str
    classes: tuple[str, ...]
    pairs: tuple[ClassPair, ...]
    confusion_difference: np.ndarray  # (k, k): rows true class, columns predicted, B - A

    def recall(self, regime: str, name: str) -> float | None:
        """Mean over the pairs' runs of ``regime``'s recall on class ``name``."""
        values = [getattr(t, "recall_a" if regime == self.name_a else "recall_b")
                  for p in self.pairs for t in p.classes if t.name == name]
        values = [v for v in values if v is not None]
        return float(np.mean(values)) if values else None

    def significant_in(self, name: str) -> int:
        """In how many seed pairs the class's recall changed significantly (after Holm)."""
        return sum(t.significant for p in self.pairs for t in p.classes if t.name == name)

    def changed(self) -> list[str]:
        """Classes whose recall changed significantly in at least one seed pair, in class order."""
        return [name for name in self.classes if self.significant_in(name)]


def class_tests(labels: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray, classes: Sequence[str],
                alpha: float = ALPHA) -> tuple[ClassTest, ...]:
    """McNemar per class on the images of that class (correct = recalled), with Holm's correction
    across the classes that have images (statsmodels' ``multipletests``)."""
    labels, pred_a, pred_b = np.asarray(labels), np.asarray(pred_a), np.asarray(pred_b)
    tests: list[McNemar | None] = []
    for c in range(len(classes)):
        mine = labels == c
        tests.append(mcnemar_test(labels[mine], pred_a[mine], pred_b[mine]) if mine.any() else None)
    tested = [i for i, t in enumerate(tests) if t is not None]
    adjusted: dict[int, tuple[bool, float]] = {}
    if tested:
        reject, corrected, _, _ = multipletests([tests[i].pvalue for i in tested], alpha=alpha, method="holm")
        adjusted = {i: (bool(r), float(p)) for i, r, p in zip(tested, reject, corrected)}
    out = []
    for c, name in enumerate(classes):
        mine = labels == c
        n = int(mine.sum())
        recall_a = float(np.mean(pred_a[mine] == c)) if n else None
        recall_b = float(np.mean(pred_b[mine] == c)) if n else None
        significant, p = adjusted.get(c, (False, None))
        out.append(ClassTest(name, n, recall_a, recall_b, tests[c], p, significant))
    return tuple(out)


def compare_classes(labels: np.ndarray, preds_a: Mapping[int, np.ndarray], preds_b: Mapping[int, np.ndarray],
                    name_a: str, name_b: str, split: str, classes: Sequence[str],
                    alpha: float = ALPHA) -> ClassComparison:
    """Per-class McNemar with Holm for each seed pair (paired as ``compare`` pairs them), and the
    confusion-matrix difference: mean row-normalized matrix of B's seeds minus that of A's."""
    k = len(classes)
    pairs = tuple(ClassPair(sa, sb, class_tests(labels, preds_a[sa], preds_b[sb], classes, alpha))
                  for sa, sb in seed_pairs(preds_a, preds_b))

    def mean_normalized(preds: Mapping[int, np.ndarray]) -> np.ndarray:
        return np.mean([confusion_matrix(labels, p, labels=list(range(k)), normalize="true") for p in preds.values()],
                       axis=0)

    return ClassComparison(name_a, name_b, split, tuple(classes), pairs,
                           mean_normalized(preds_b) - mean_normalized(preds_a))
