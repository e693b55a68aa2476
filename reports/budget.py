"""How many trials are enough: a study's expected best score as a function of its number of trials.

Given the N scores a search found, the expected best of n trials (n = 1..N) is the mean, over every
set of n of those trials, of the best score in the set: what a search of n trials would have found,
had it been any n of these. Dodge et al. (EMNLP 2019, "Show Your Work") drew the n with replacement;
Tang et al. (2020, "Showing Your Work Doesn't Always Work") showed that estimate biased and gave the
unbiased one, without replacement, used here: with the scores sorted worst to best, ``v_1 .. v_N``,

    E[best of n] = sum over i = n..N of  v_i * C(i-1, n-1) / C(N, n)

(the i-th score is the best of a random n-set exactly when the set holds it and n-1 of the i-1 worse
ones). The band is a percentile bootstrap: the curve recomputed on the scores resampled with
replacement. ``tests/test_budget.py`` checks the estimator against enumerating every n-set.

Which trials count: complete trials with their score; **pruned trials with the last score they
reported** (the pruner stopped them below the others: that partial score is what their share of the
budget bought, and leaving them out would pretend the search never drew them); failed and running
trials not at all. Every caller says so.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

TOLERANCE = 0.01  # "close to the best": within this much of the study's best score
PRUNED_RULE = "pruned trials count with the last score they reported; failed ones not at all"


def expected_best(values: Sequence[float], n: int, maximize: bool = True) -> float:
    """The expected best of ``n`` of ``values`` drawn without replacement (Tang et al.'s estimator)."""
    v = np.sort(np.asarray(values, dtype=float))
    if not maximize:
        v = v[::-1]
    count = len(v)
    if not 1 <= n <= count:
        raise ValueError(f"n must be in 1..{count}, got {n}")
    total = math.comb(count, n)
    weights = np.array([math.comb(i - 1, n - 1) / total for i in range(n, count + 1)])
    return float(np.dot(weights, v[n - 1:]))


def expected_best_curve(values: Sequence[float], maximize: bool = True) -> np.ndarray:
    """``expected_best`` for n = 1..N."""
    return np.array([expected_best(values, n, maximize) for n in range(1, len(values) + 1)])


def bootstrap_band(values: Sequence[float], maximize: bool = True, level: float = 0.95, draws: int = 400,
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A percentile bootstrap band around ``expected_best_curve``: the curve of ``draws`` resamples."""
    v = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    curves = np.array([expected_best_curve(rng.choice(v, len(v)), maximize) for _ in range(draws)])
    tail = (1.0 - level) / 2 * 100
    return np.percentile(curves, tail, axis=0), np.percentile(curves, 100 - tail, axis=0)


def trials_to_come_close(curve: np.ndarray, best: float, tolerance: float = TOLERANCE) -> int:
    """The fewest trials whose expected best is within ``tolerance`` of ``best``."""
    close = np.flatnonzero(np.abs(best - np.asarray(curve)) <= tolerance + 1e-12)
    return int(close[0]) + 1 if len(close) else len(curve)


@dataclass(frozen=True)
class Budget:
    """A study's expected best by trials: its scores (complete, then pruned), the curve and band, and
    how many trials came within ``TOLERANCE`` of its best."""

    scores: np.ndarray
    pruned: int
    maximize: bool
    curve: np.ndarray
    low: np.ndarray
    high: np.ndarray

    @property
    def best(self) -> float:
        return float(self.scores.max() if self.maximize else self.scores.min())

    @property
    def close_at(self) -> int:
        return trials_to_come_close(self.curve, self.best)


def study_budget(records: Sequence[Mapping], maximize: bool = True) -> Budget | None:
    """From ``store.trial_records`` rows; None with fewer than two scored trials."""
    complete = [r["value"] for r in records if r["state"] == "COMPLETE" and not math.isnan(r["value"])]
    pruned = [r["last_value"] for r in records if r["state"] == "PRUNED" and not math.isnan(r["last_value"])]
    scores = np.array(complete + pruned, dtype=float)
    if len(scores) < 2:
        return None
    low, high = bootstrap_band(scores, maximize)
    return Budget(scores, len(pruned), maximize, expected_best_curve(scores, maximize), low, high)


def budget_line(budget: Budget, metric: str = "validation accuracy") -> str:
    """One sentence for ``show``: the expected best at a few budgets and where it came within TOLERANCE."""
    count = len(budget.curve)
    marks = sorted({n for n in (1, 2, 5, 10, 20, 50, 100) if n < count} | {count})
    points = ", ".join(f"{n}: {budget.curve[n - 1]:.3f}" for n in marks)
    pruned = f" ({budget.pruned} of them pruned)" if budget.pruned else ""
    return (f"expected best {metric} by number of trials (Tang et al.'s estimator over these {count} trials"
            f"{pruned}): {points}; within {TOLERANCE} of the best ({budget.best:.3f}) from {budget.close_at} "
            f"trial(s) on. {PRUNED_RULE[0].upper()}{PRUNED_RULE[1:]}.")


# ------------------------------------------------------------------------------------ regimes compared
def search_budget(trials, direction: str) -> Budget | None:
    """``study_budget`` of a report's trials frame (``store.trials_frame``)."""
    return study_budget(trials.to_dict("records"), maximize=direction == "maximize")


def regime_budgets(regimes: Mapping) -> dict[str, Budget]:
    """Each regime's budget (a report's ``evidence.regimes``), where its study scored two trials or more."""
    found = {}
    for regime, evidence in regimes.items():
        b = search_budget(evidence.search.trials, evidence.search.direction)
        if b is not None:
            found[regime] = b
    return found


def mean_trial_seconds(trials) -> float:
    """Mean wall time of the scored (complete and pruned) trials: the compute one more trial costs."""
    scored = trials[trials["state"].isin(["COMPLETE", "PRUNED"])]["seconds"]
    return float(scored.mean()) if len(scored) else math.nan


def regimes_sentence(budgets: Mapping[str, Budget], metric: str) -> str:
    """At how many trials each regime came within TOLERANCE of its best, and whether the regimes' order
    holds at every budget both studies reached or flips."""
    parts = [f"{regime} came within {TOLERANCE} of its best ({b.best:.3f}) from {b.close_at} of its {len(b.curve)} "
             f"trials on" for regime, b in budgets.items()]
    sentence = "Expected best " + metric + ": " + "; ".join(parts) + "."
    if len(budgets) == 2:
        (a, ba), (b, bb) = budgets.items()
        common = min(len(ba.curve), len(bb.curve))
        sign = np.sign(ba.curve[:common] - bb.curve[:common]) * (1 if ba.maximize else -1)
        if np.all(sign == 0):
            sentence += f" The two are tied at every budget from 1 to {common} trials."
        elif np.all(sign >= 0) or np.all(sign <= 0):
            ahead = a if np.any(sign > 0) else b
            sentence += f" {ahead} is ahead (or tied) at every budget from 1 to {common} trials."
        else:
            lead = sign[np.flatnonzero(sign)[0]]
            first = int(np.flatnonzero(sign == -lead)[0]) + 1
            sentence += (f" The order flips: {a if lead > 0 else b} leads at first, {b if lead > 0 else a} from {first} "
                         "trials on; which regime wins depends on the budget.")
    return sentence + f" {PRUNED_RULE[0].upper()}{PRUNED_RULE[1:]}."
