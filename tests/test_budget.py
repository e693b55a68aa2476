"""The expected best score by number of trials (reports.budget), checked against enumerating every set
of trials, and the line ``show`` prints."""
from __future__ import annotations

import itertools
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from reports.budget import (
    PRUNED_RULE,
    bootstrap_band,
    expected_best,
    expected_best_curve,
    study_budget,
    trials_to_come_close,
)
from tests.test_commands_feel import tiny_store

ROOT = Path(__file__).resolve().parents[1]
STUDIES = [
    [0.31, 0.44],
    [0.2, 0.5, 0.35, 0.41, 0.5, 0.1],  # a tie at the top
    list(np.random.default_rng(3).uniform(0.2, 0.6, 9)),
]


def brute_force(values, n, maximize):
    pick = max if maximize else min
    sets = list(itertools.combinations(values, n))
    return sum(pick(s) for s in sets) / len(sets)


@pytest.mark.parametrize("values", STUDIES)
@pytest.mark.parametrize("maximize", [True, False])
def test_the_estimator_is_the_mean_best_over_every_set_of_n_trials(values, maximize):
    for n in range(1, len(values) + 1):
        assert expected_best(values, n, maximize) == pytest.approx(brute_force(values, n, maximize), abs=1e-12)
    curve = expected_best_curve(values, maximize)
    assert curve[0] == pytest.approx(np.mean(values)) and curve[-1] == (max if maximize else min)(values)
    assert np.all(np.diff(curve) >= -1e-12) if maximize else np.all(np.diff(curve) <= 1e-12)


def test_the_band_holds_the_curve_and_narrows_to_the_best_of_resamples():
    values = STUDIES[2]
    low, high = bootstrap_band(values, draws=300)
    curve = expected_best_curve(values)
    assert np.all(low <= curve + 1e-9) and np.all(curve <= high + 1e-9) and np.all(high - low > 0)


def test_trials_to_come_close_is_the_first_budget_within_the_tolerance():
    assert trials_to_come_close(np.array([0.3, 0.45, 0.49, 0.5]), 0.5, 0.01) == 3
    assert trials_to_come_close(np.array([0.3, 0.5]), 0.5, 0.0) == 2


def test_pruned_trials_count_with_their_last_score_and_failed_ones_not_at_all():
    rows = [{"state": "COMPLETE", "value": 0.4, "last_value": 0.4},
            {"state": "PRUNED", "value": math.nan, "last_value": 0.2},
            {"state": "FAIL", "value": math.nan, "last_value": 0.9},
            {"state": "COMPLETE", "value": 0.5, "last_value": 0.5}]
    budget = study_budget(rows)
    assert sorted(budget.scores) == [0.2, 0.4, 0.5] and budget.pruned == 1 and budget.best == 0.5
    assert study_budget(rows[:1]) is None


def test_show_prints_the_expected_best_line(tmp_path):
    url = tiny_store(tmp_path)  # two complete trials: 0.31 and 0.44
    done = subprocess.run([sys.executable, "cli.py", "show", "tiny-scratch", "--storage", url], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())
    assert "expected best validation accuracy by number of trials" in text
    assert "1: 0.375, 2: 0.440" in text and "from 2 trial(s) on" in text and PRUNED_RULE[1:] in text


def test_the_regimes_sentence_says_whether_the_order_holds_or_flips():
    from reports.budget import regimes_sentence

    steady = {"scratch": study_budget(_rows([0.3, 0.4, 0.5])), "transfer": study_budget(_rows([0.5, 0.6, 0.7]))}
    assert "transfer is ahead (or tied) at every budget from 1 to 3 trials" in regimes_sentence(steady, "x")
    # scratch's mean is higher (better with one trial), transfer's best is higher (better with all three)
    flip = {"scratch": study_budget(_rows([0.5, 0.5, 0.5])), "transfer": study_budget(_rows([0.2, 0.3, 0.6]))}
    assert "The order flips: scratch leads at first, transfer from 3 trials on" in regimes_sentence(flip, "x")
    tied = {"scratch": study_budget(_rows([0.5, 0.5])), "transfer": study_budget(_rows([0.5, 0.5]))}
    assert "tied at every budget" in regimes_sentence(tied, "x")


def _rows(values):
    return [{"state": "COMPLETE", "value": v, "last_value": v} for v in values]
