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
on from the trials it has, with a fresh generator: its next random draws are not those an uninterrupted
search would have made.

The same seed makes the comparison paired: TPE and GP draw their first ``shared_startup()`` trials at random
from the seed the random search has, so those are the random search's own first trials, trained to the same
values (pruning may cut them short). They part after those, where their models take over.

Rows: first, whether the random searches learned at all (their trials above the majority rate by more
than chance) and at which trial each found its best. Then per sampler, the median over seeds of its epochs
to reach random's best as a share of random's epochs (a seed that never reached it counts as more than all of
them), and the median of the best it found within random's epochs against random's own best. ``DEFAULT``
(the search's default sampler and pruner) has the goal: it reaches random's best in at most ``GOAL`` of
random's epochs. A seed where random learned nothing fails the goal (any sampler reaches the majority rate);
a seed where random's best came within the shared first trials is marked and left out of it (every sampler
reaches it when random does: the epochs say when random drew it, not how fast a sampler finds it).
"""
from __future__ import annotations

import importlib.util
import inspect
import statistics
from dataclasses import dataclass, replace

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


def shared_startup() -> int:
    """How many first trials TPE and GP draw at random before their models have a say (optuna's defaults, which
    the search keeps). They draw them from the seed the random search has, so at one seed they are the random
    search's own first trials: the same configurations, trained to the same values (pruning aside)."""
    return min(inspect.signature(sampler).parameters["n_startup_trials"].default
               for sampler in (optuna.samplers.TPESampler, optuna.samplers.GPSampler))


@dataclass(frozen=True)
class Target:
    """One seed's random search: what the other samplers are measured against."""

    best: float  # its best validation accuracy
    epochs: int  # all the epochs it trained: the budget
    best_trial: int  # the trial (in order, from 0) that first reached its best
    learned: int  # its complete trials that learned (above the majority rate by more than chance)
    complete: int  # its complete trials


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


def target_of(random: optuna.Study) -> Target:
    """A seed's random search as the target and the budget of the others."""
    trials = _in_order(random)
    best = random.best_value
    first = next(i for i, t in enumerate(trials) if t.state == TrialState.COMPLETE and t.value == best)
    return Target(best, sum(epochs_of(t) for t in trials), first, *learned_counts(random))


def summary_rows(targets: list[Target], found: dict[tuple[str, str], list[Outcome]], where: str, sizes: dict,
                 majority: float, startup: int) -> list[Row]:
    """The table: first whether the random searches learned at all, and at which trial each found its best;
    then a row per sampler for epochs to reach random's best, one for the best within random's epochs.

    Two kinds of seed cannot judge the default's goal. Where a random search learned nothing, reaching its best
    (the majority rate) is no feat: the goal is then not met, whatever the epochs. Where its best came within
    the first ``startup`` trials, which TPE and GP draw from the same seed (the same configurations), every
    sampler reaches it when random does, and the epochs measure random's draws, not the sampler: such seeds are
    marked and left out of the goal, which is not judged where no seed is left."""
    seeds = len(targets)
    random_best = statistics.median(t.best for t in targets)
    random_epochs = statistics.median(t.epochs for t in targets)
    all_learned = bool(targets) and all(t.learned > 0 for t in targets)
    shared = [t.best_trial < startup for t in targets]
    rows = [Row(
        f"search: random search: trials that learned (val acc above the majority rate {majority:.3f} by more than "
        f"chance), each of {seeds} seed(s): " + ", ".join(f"{t.learned}/{t.complete}" for t in targets)
        + "; best val acc each: " + ", ".join(f"{t.best:.3f} (trial {t.best_trial})" for t in targets) + f"; {where}",
        f"{majority:.3f} (majority rate)", f"{random_best:.3f} (median best)",
        random_best / majority if majority else None, "some trial learns in every seed", all_learned)]
    mark = (f"; * random's best among its first {startup} trials, which TPE and GP draw from the same seed: "
            "every sampler reaches it when random does, unless pruning cuts it") if any(shared) else ""
    for key, outcomes in found.items():
        label = SAMPLERS[key]
        if not outcomes:
            rows.append(Row(f"search: {label}: skipped (--sampler gp needs PyTorch: pip install -e .[gp])", "-", "-",
                            None))
            continue
        shares = [share(o, t.epochs) for o, t in zip(outcomes, targets)]
        median = statistics.median(shares)
        each = ", ".join(("not reached" if s == float("inf") else f"{s:.2f}") + ("*" if mark and d else "")
                         for s, d in zip(shares, shared))
        row = Row(
            f"search: {label}{' (the default)' if key == DEFAULT else ''}: epochs to reach the random search's best "
            f"val acc, median of {seeds} seed(s) (each: "
            f"{each}{mark}); {where}",
            f"{random_epochs:.0f} epochs (random, {sizes['trials']} trials)",
            "not reached" if median == float("inf") else f"{median * random_epochs:.0f} epochs",
            None, ratio_text="not reached" if median == float("inf") else f"{median:.2f} of random's")
        if key == DEFAULT:
            row = judged(row, [s for s, d in zip(shares, shared) if not d], seeds, all_learned, startup)
        rows.append(row)
        bests = [o.best_within for o in outcomes]
        known = [b for b in bests if b is not None]
        rows.append(Row(
            f"search: {label}: best val acc within the random search's epochs, median of {seeds} seed(s) (each: "
            + ", ".join("none" if b is None else f"{b:.3f}" for b in bests) + "; epochs it trained each: "
            + ", ".join(str(o.epochs) for o in outcomes) + " against random's " + ", ".join(str(t.epochs) for t in targets)
            + ")",
            f"{random_best:.3f} (random's best)", f"{statistics.median(known):.3f}" if known else "none",
            statistics.median(known) / random_best if known and random_best else None))
    return rows


def judged(row: Row, shares: list[float], seeds: int, all_learned: bool, startup: int) -> Row:
    """The default's row with its goal: the median share over the seeds that can judge it (``shares``, of
    ``seeds``)."""
    goal = f"<= {GOAL} of random's"
    if not all_learned:
        return replace(row, goal=goal, met=False)
    if not shares:
        return replace(row, goal=f"{goal}; not judged: random's best within the first {startup} "
                       "trials in every seed")
    median = statistics.median(shares)
    return replace(row, goal=goal if len(shares) == seeds else
                   f"{goal} (over the {len(shares)} seed(s) where random's best came later)", met=median <= GOAL)


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
    targets = []
    for seed in sizes["seeds"]:
        log(f"search efficiency: seed {seed}: random search, {sizes['trials']} trials, no pruning")
        target = target_of(search(f"random-{seed}", str(data), sizes, "random", "none", seed))
        targets.append(target)
        for sampler, pruner in others:
            if sampler == "gp" and not has_torch:
                continue
            log(f"search efficiency: seed {seed}: {SAMPLERS[(sampler, pruner)]}, {sizes['trials']} trials")
            study = search(f"{sampler}-{pruner}-{seed}", str(data), sizes, sampler, pruner, seed)
            found[(sampler, pruner)].append(outcome(study, target.best, target.epochs))
    return summary_rows(targets, found, where, sizes, majority, shared_startup())


if __name__ == "__main__":
    main(run)
