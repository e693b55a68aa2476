"""Search efficiency: how many epochs each sampler spends to reach the best validation accuracy that a
random search without pruning reaches, and the best it finds within the random search's epochs, over
several seeds.

    python -m benchmarks.search_efficiency [--quick] [--write README.md]

Every search is the real thing, ``study.tuning.search.run_search``: scratch regime, mini_xception,
``--max-epochs`` capping every trial, on a stratified share of the real FER2013 training faces
(``../shared/fer2013``; validation whole), or the generated sample where they are absent. For each seed,
a random search of ``trials`` trials sets the target (its best) and the budget (all of its trials' epochs);
then TPE, TPE with median pruning and optuna's GP sampler each run the same number of trials with the
same seed. Epochs count every epoch a trial trained, pruned trials included, in trial order. Neither
search starts from the defaults (``default_trial=False``), so what is compared is the samplers alone.
The searches take hours on 2 cores: each is kept under ``$FER_STUDY_CACHE/bench-search_efficiency`` (per
sizes and data), so an interrupted run, started again, resumes where it stopped; a trial the interruption
cut short is failed and counts for nothing (neither its epochs nor its value), and the resumed sampler draws
on from the trials it has.

Rows: first, whether the random searches learned at all (their trials above the majority rate by more
than chance, and their best): a target at the majority rate is reached by any sampler, so the default's
goal counts only where every seed's random search learned. Then per sampler, the median over seeds of its epochs to reach random's best as a share of random's
epochs (a seed that never reached it counts as more than all of them), and the median of the best it
found within random's epochs against random's own best. ``DEFAULT`` (the search's default sampler and
pruner) has the goal: it reaches random's best in at most ``GOAL`` of random's epochs.
"""
from __future__ import annotations

import importlib.util
import statistics
from dataclasses import dataclass

import optuna
from optuna.trial import TrialState

from benchmarks.common import Row, faces, kept_searches, log, main
from study.data import load_dataset
from study.learning import baseline
from study.store import records
from study.tuning.request import DEFAULT_PRUNER, DEFAULT_SAMPLER, SearchRequest
from study.tuning.search import run_search

GOAL = 0.5
# (sampler, pruner) -> its label; random search without pruning is the baseline, the first
SAMPLERS = {("random", "none"): "random search", ("tpe", "none"): "TPE", ("tpe", "median"): "TPE + median pruning",
            ("gp", "none"): "GP (optuna's GPSampler)"}
DEFAULT = (DEFAULT_SAMPLER, DEFAULT_PRUNER)  # what a search uses when none is named
# At 10% of the faces and 3 epochs a trial (about 100-200 steps) no trial learned: none of the first 15 of
# seed 0's random search beat the majority rate by more than chance (best 0.254 against 0.251). 20% and 4 epochs
# give each trial 2.7x the steps.
FULL = {"trials": 20, "max_epochs": 4, "subset": 0.2, "seeds": (0, 1, 2)}
QUICK = {"trials": 2, "max_epochs": 1, "subset": 0.5, "seeds": (0,)}


@dataclass(frozen=True)
class Outcome:
    """One sampler's search at one seed, measured against that seed's random search."""

    epochs: int  # all the epochs it trained
    reached: int | None  # epochs spent up to the trial that reached random's best; None: never
    best_within: float | None  # its best value among the trials finished within random's epochs


def search(name: str, data: str, sizes: dict, sampler: str, pruner: str, seed: int) -> optuna.Study:
    """One sampler's search at one seed, kept (``kept_searches``): a rerun resumes or reads it back."""
    folder = kept_searches("search_efficiency", {**sizes, "data": load_dataset(data).fingerprint})
    request = SearchRequest(regime="scratch", trials=sizes["trials"], data=data, sampler=sampler, pruner=pruner,
                            max_epochs=sizes["max_epochs"],
                            base={"backbone": "mini_xception", "seed": seed, "subset": sizes["subset"]},
                            storage=f"sqlite:///{folder}/{name}.db", study=name, runs_dir=str(folder / "runs"),
                            default_trial=False)  # the samplers' own picks: no shared trial 0
    return run_search(request)


def epochs_of(trial: optuna.trial.FrozenTrial) -> int:
    """Epochs a trial trained: its record when it completed, its reported epochs when pruned."""
    if trial.state == TrialState.COMPLETE:
        return int(records.epochs(trial) or len(trial.intermediate_values))
    return len(trial.intermediate_values)


def _in_order(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    done = (TrialState.COMPLETE, TrialState.PRUNED)
    return sorted(study.get_trials(deepcopy=False, states=done), key=lambda t: t.number)


def epochs_to_reach(study: optuna.Study, target: float) -> int | None:
    """Epochs spent, in trial order, up to and including the first complete trial whose value reaches ``target``."""
    spent = 0
    for trial in _in_order(study):
        spent += epochs_of(trial)
        if trial.state == TrialState.COMPLETE and trial.value is not None and trial.value >= target:
            return spent
    return None


def best_within(study: optuna.Study, budget: int) -> float | None:
    """The best complete trial's value among the trials that finished within ``budget`` epochs."""
    spent, best = 0, None
    for trial in _in_order(study):
        spent += epochs_of(trial)
        if spent > budget:
            break
        if trial.state == TrialState.COMPLETE and trial.value is not None:
            best = trial.value if best is None else max(best, trial.value)
    return best


def outcome(study: optuna.Study, target: float, budget: int) -> Outcome:
    return Outcome(sum(epochs_of(t) for t in _in_order(study)), epochs_to_reach(study, target),
                   best_within(study, budget))


def share(o: Outcome, budget: int) -> float:
    """Epochs to reach random's best as a share of random's epochs; never reached counts as infinite."""
    return o.reached / budget if o.reached is not None else float("inf")


def learned_counts(study: optuna.Study) -> tuple[int, int]:
    """(trials that learned, complete trials): learned as each trial recorded it (``study.learning``: above
    the majority rate by more than chance allows)."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return sum(bool(records.learned(t)) for t in complete), len(complete)


def summary_rows(targets: list[float], budgets: list[int], found: dict[tuple[str, str], list[Outcome]], where: str,
                 sizes: dict, majority: float, learned: list[tuple[int, int]]) -> list[Row]:
    """The table: first whether the random searches learned at all (``learned``: per seed, its trials that
    learned and its complete trials); then a row per sampler for epochs to reach random's best, one for the
    best within random's epochs. Where a random search learned nothing, reaching its best is no feat: the
    default's goal is then not met, whatever its epochs."""
    seeds = len(targets)
    random_best = statistics.median(targets)
    random_epochs = statistics.median(budgets)
    all_learned = bool(learned) and all(k > 0 for k, _ in learned)
    rows = [Row(
        f"search: random search: trials that learned (val acc above the majority rate {majority:.3f} by more than "
        f"chance), each of {seeds} seed(s): " + ", ".join(f"{k}/{n}" for k, n in learned)
        + "; best val acc each: " + ", ".join(f"{t:.3f}" for t in targets) + f"; {where}",
        f"{majority:.3f} (majority rate)", f"{random_best:.3f} (median best)",
        random_best / majority if majority else None, "some trial learns in every seed", all_learned)]
    for key, outcomes in found.items():
        label = SAMPLERS[key]
        if not outcomes:
            rows.append(Row(f"search: {label}: skipped (--sampler gp needs PyTorch: pip install -e .[gp])", "-", "-",
                            None))
            continue
        shares = [share(o, b) for o, b in zip(outcomes, budgets)]
        median = statistics.median(shares)
        each = ", ".join("not reached" if s == float("inf") else f"{s:.2f}" for s in shares)
        is_default = key == DEFAULT
        rows.append(Row(
            f"search: {label}{' (the default)' if is_default else ''}: epochs to reach the random search's best val "
            f"acc, median of {seeds} seed(s) (each: {each}); {where}",
            f"{random_epochs:.0f} epochs (random, {sizes['trials']} trials)",
            "not reached" if median == float("inf") else f"{median * random_epochs:.0f} epochs",
            None, f"<= {GOAL} of random's" if is_default else "-", (median <= GOAL and all_learned) if is_default else None,
            ratio_text="not reached" if median == float("inf") else f"{median:.2f} of random's"))
        bests = [o.best_within for o in outcomes]
        known = [b for b in bests if b is not None]
        rows.append(Row(
            f"search: {label}: best val acc within the random search's epochs, median of {seeds} seed(s) (each: "
            + ", ".join("none" if b is None else f"{b:.3f}" for b in bests) + ")",
            f"{random_best:.3f} (random's best)", f"{statistics.median(known):.3f}" if known else "none",
            statistics.median(known) / random_best if known and random_best else None))
    return rows


def run(quick: bool) -> list[Row]:
    sizes = QUICK if quick else FULL
    data, note = faces(quick)
    majority = baseline(load_dataset(data).val.y).majority_rate  # what a model that learned nothing scores
    where = (f"mini_xception, scratch, {sizes['subset']:.0%} of "
             f"{note or 'the real FER2013 training faces'} (validation whole: majority rate {majority:.3f}), "
             f"--max-epochs {sizes['max_epochs']}")
    others = [key for key in SAMPLERS if key != ("random", "none")]
    has_torch = importlib.util.find_spec("torch") is not None
    found: dict[tuple[str, str], list[Outcome]] = {key: [] for key in others}
    targets, budgets, learned = [], [], []
    for seed in sizes["seeds"]:
        log(f"search efficiency: seed {seed}: random search, {sizes['trials']} trials, no pruning")
        random = search(f"random-{seed}", str(data), sizes, "random", "none", seed)
        target = random.best_value
        budget = sum(epochs_of(t) for t in _in_order(random))
        targets.append(target)
        budgets.append(budget)
        learned.append(learned_counts(random))
        for sampler, pruner in others:
            if sampler == "gp" and not has_torch:
                continue
            log(f"search efficiency: seed {seed}: {SAMPLERS[(sampler, pruner)]}, {sizes['trials']} trials")
            study = search(f"{sampler}-{pruner}-{seed}", str(data), sizes, sampler, pruner, seed)
            found[(sampler, pruner)].append(outcome(study, target, budget))
    return summary_rows(targets, budgets, found, where, sizes, majority, learned)


if __name__ == "__main__":
    main(run)
