"""The report's verdict, generated from the numbers: who wins, by how much, and how sure we can be.

Every sentence is chosen by a comparison of computed values, and claims no more than they support:
a winner is named only when McNemar's test (every seed pair, same direction) and the bootstrap
interval agree; otherwise the text says the evidence is mixed or shows no difference.
"""
from __future__ import annotations

from typing import Mapping, Sequence

from reports.stats import ALPHA, Comparison, Estimate
from reports.tables import SPLIT_NAMES, Interval, PValue, Signed, format_value

PAPER_CLAIM = "the paper's conclusion that transfer learning improves accuracy"


def verdict(comparison: Comparison, accuracy: Mapping[str, Estimate], synthetic: bool,
            learned: Mapping[str, tuple[int, int]] | None = None, majority: float | None = None,
            stratified: float | None = None, macro_f1: Mapping[str, Estimate] | None = None,
            majority_macro_f1: float | None = None, differences: Sequence[str] | None = None,
            pretraining: Sequence[str] = ()) -> list[str]:
    """Sentences for the report's verdict section, in order. ``learned``: per regime, (runs that beat the
    majority rate, runs); a regime with a run that did not is named for what it is, and no conclusion
    is drawn from the comparison. ``majority``/``stratified``: the split's baseline accuracies, and
    ``majority_macro_f1`` the majority answer's macro-F1, read beside every figure. ``differences``:
    how the regimes' budgets differ (``reports.setup.budget_differences``), named so that the
    difference is not credited to transfer alone; ``pretraining``: what the starting weights cost."""
    split = SPLIT_NAMES[comparison.split]
    budget = [] if differences is None else budget_sentences(differences, pretraining)  # None: budgets unknown
    failing = not_learned(learned or {}, majority, split)
    if failing:
        return [_capitalized(s) for s in failing + budget + caveats(comparison, accuracy, synthetic)]
    sentences = [
        _lead(comparison, accuracy, split),
        *_baselines(comparison, accuracy, macro_f1 or {}, majority, stratified, majority_macro_f1, split),
        _mcnemar(comparison, split),
        _bootstrap(comparison, split),
        _conclusion(comparison, split),
        *budget,
    ]
    return [_capitalized(s) for s in sentences + caveats(comparison, accuracy, synthetic)]


def _baselines(c: Comparison, accuracy: Mapping[str, Estimate], macro_f1: Mapping[str, Estimate],
               majority: float | None, stratified: float | None, majority_f1: float | None, split: str) -> list[str]:
    """The baselines beside the figures: what answering without looking scores on these images."""
    if majority is None:
        return []
    names = (c.name_a, c.name_b)
    above = ", ".join(f"{name} {format_value(Signed(accuracy[name].mean - majority))}" for name in names)
    text = (f"Answering the most common class for every face scores {format_value(majority)} on these {split} "
            f"images (the majority-class rate)")
    if stratified is not None:
        text += f" and answering at random in the class shares {format_value(stratified)}"
    text += f"; mean accuracy above the majority rate: {above}"
    if macro_f1 and majority_f1 is not None and all(name in macro_f1 for name in names):
        f1 = " and ".join(f"{format_value(macro_f1[name].mean)} ({name})" for name in names)
        text += f"; macro-F1 {f1} against {format_value(majority_f1)} for the majority answer"
    return [text + "."]


def budget_sentences(differences: Sequence[str], pretraining: Sequence[str]) -> list[str]:
    """How the regimes' budgets compare, so the gap is not credited to the starting weights alone, and
    what those weights cost (training the other regime did not get)."""
    if differences:
        sentences = ["Besides the starting weights, the regimes' budgets differ: " + "; ".join(differences)
                     + ". The measured difference includes all of these."]
    else:
        sentences = ["Both regimes had the same budget: the same search backend, trials and epochs a trial could "
                     "train, as many epochs searched and per final run, on the same training images."]
    if pretraining:
        sentences.append("The starting weights cost training of their own, which the comparison does not count: "
                         + "; ".join(pretraining) + ".")
    return sentences


def not_learned(learned: Mapping[str, tuple[int, int]], majority: float | None, split: str) -> list[str]:
    """The verdict when a regime's runs did not learn: say so, compare nothing."""
    bad = {regime: (ok, n) for regime, (ok, n) in learned.items() if ok < n}
    if not bad:
        return []
    rate = f" ({format_value(majority)}, answering the most common class for every face)" if majority is not None else ""
    named = "; ".join(f"{n - ok} of {n} {regime} run(s)" for regime, (ok, n) in bad.items())
    return [f"No verdict: {named} did not learn: their {split} accuracy is not above the majority-class rate{rate}. "
            "Comparing a model that has learned nothing with another says nothing about transfer learning, so this "
            "report draws no conclusion; docs/learning.md explains what stalls a run and how to fix it."]


def _capitalized(sentence: str) -> str:
    """Regime names are lower case; a sentence starting with one still starts with a capital."""
    return sentence[:1].upper() + sentence[1:]


def _lead(c: Comparison, accuracy: Mapping[str, Estimate], split: str) -> str:
    a, b = accuracy[c.name_a], accuracy[c.name_b]
    counts = f"mean over {a.n} {c.name_a} and {b.n} {c.name_b} run(s)"
    if a.mean == b.mean:
        return f"Both regimes have the same mean {split} accuracy, {format_value(a.mean)} ({counts})."
    winner, loser = (c.name_b, c.name_a) if b.mean > a.mean else (c.name_a, c.name_b)
    gap = abs(b.mean - a.mean)
    return (f"{winner} has the higher mean {split} accuracy: {format_value(accuracy[winner].mean)} against "
            f"{format_value(accuracy[loser].mean)} for {loser}, {gap * 100:.2f} percentage points more ({counts}, "
            f"on the same {c.n_images} images).")


def _mcnemar(c: Comparison, split: str) -> str:
    favour_b = sum(p.mcnemar.significant() and p.accuracy_b > p.accuracy_a for p in c.pairs)
    favour_a = sum(p.mcnemar.significant() and p.accuracy_a > p.accuracy_b for p in c.pairs)
    pvalues = ", ".join(format_value(PValue(p.mcnemar.pvalue)) for p in c.pairs)
    total = len(c.pairs)
    head = f"McNemar's test on the {split} images, per seed pair (p: {pvalues}),"
    if not favour_a and not favour_b:
        return f"{head} finds no significant difference at the {ALPHA} level in any of the {total} pair(s)."
    sides = " and ".join(f"{n} favouring {name}" for n, name in ((favour_b, c.name_b), (favour_a, c.name_a)) if n)
    found = favour_a + favour_b
    return f"{head} finds a significant difference at the {ALPHA} level in {found} of {total} pair(s): {sides}."


def _bootstrap(c: Comparison, split: str) -> str:
    pooled = c.pooled
    verdict = "excludes 0" if pooled.excludes_zero else "includes 0, so no difference is consistent with these images"
    interval, point = format_value(Interval(pooled.low, pooled.high)), format_value(Signed(pooled.difference))
    return (f"The paired bootstrap 95% interval of the accuracy difference ({c.name_b} − {c.name_a}, every seed "
            f"pooled) is {interval} around {point}; it {verdict}.")


def _conclusion(c: Comparison, split: str) -> str:
    direction = _agreed_direction(c)
    if direction is not None:
        winner, loser = (c.name_b, c.name_a) if direction > 0 else (c.name_a, c.name_b)
        relation = "agrees with" if winner == "transfer" else "contradicts" if winner == "scratch" else "bears on"
        return (f"Both tests agree: {winner} is more accurate than {loser} on these {split} images. "
                f"This {relation} {PAPER_CLAIM}.")
    if c.pooled.excludes_zero or any(p.mcnemar.significant() for p in c.pairs):
        return ("The evidence is mixed (the tests or the seed pairs disagree), so this report names no winner and "
                f"neither confirms nor contradicts {PAPER_CLAIM}.")
    return (f"Neither test finds a significant difference: these runs do not show that either regime is more accurate, "
            f"and neither confirm nor contradict {PAPER_CLAIM}.")


def _agreed_direction(c: Comparison) -> int | None:
    """+1 (B better) or -1 (A better) when every pair is significant that way and the CI agrees; else None."""
    if not c.pooled.excludes_zero or not c.pairs:
        return None
    sign = 1 if c.pooled.low > 0 else -1
    agree = all(p.mcnemar.significant() and (p.accuracy_b - p.accuracy_a) * sign > 0 for p in c.pairs)
    return sign if agree else None


def caveats(c: Comparison, accuracy: Mapping[str, Estimate], synthetic: bool) -> list[str]:
    notes = []
    if min(e.n for e in accuracy.values()) < 2:
        notes.append("With one run for a regime, these tests cover the sampling of images only, not the randomness "
                     "of training; final runs with more seeds (the best configuration retrained once per seed) "
                     "would cover both.")
    if c.split == "val":
        notes.append("No final runs with test predictions: these are validation images, which the search also used "
                     "to choose the hyperparameters, so they flatter both regimes.")
    if synthetic:
        notes.append("The data is a SYNTHETIC SAMPLE of drawn faces: nothing here speaks to real faces or to the "
                     "paper's results.")
    return notes


def no_verdict(lacks: list[str]) -> list[str]:
    return ["No verdict: comparing the regimes needs both of them, evaluated on the same images, and this report "
            f"lacks {'; '.join(lacks)}."]
