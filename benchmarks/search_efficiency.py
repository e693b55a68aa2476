"""Search efficiency: the epochs TPE with median pruning spends to reach the best validation accuracy
that a 30-trial random search without pruning reaches, as a share of that random search's epochs.

Both searches are the real thing, ``study.tuning.search.run_search`` (scratch regime, mini_xception,
``--max-epochs`` capping every trial) on the generated sample (``study.sample``, 120 faces per
class). The random search's epochs are all of its trials' epochs. TPE runs in rounds of a few
trials (a rerun resumes the study) until a trial reaches the random search's best or it has run as
many trials; its epochs count every epoch it trained, pruned trials included, up to and including
the trial that reached the target. Neither search starts from the defaults (``--no-default-trial``),
so what is compared is the samplers alone.
"""
from __future__ import annotations

import io

import optuna
from optuna.trial import TrialState
from rich.console import Console

from benchmarks.common import Row, log, main, sample, scratch_dir
from study.tuning.request import SearchRequest
from study.tuning.search import run_search

GOAL = 0.5
ROUND = 3


def search(name: str, data: str, trials: int, max_epochs: int, sampler: str, pruner: str) -> optuna.Study:
    folder = scratch_dir() / "search"
    folder.mkdir(exist_ok=True)
    request = SearchRequest(regime="scratch", trials=trials, data=data, sampler=sampler, pruner=pruner,
                            max_epochs=max_epochs, base={"backbone": "mini_xception", "seed": 0},
                            storage=f"sqlite:///{folder}/{name}.db", study=name, runs_dir=str(folder / "runs"),
                            default_trial=False)  # the samplers' own picks: no shared trial 0
    return run_search(request, Console(file=io.StringIO()))


def epochs_of(trial: optuna.trial.FrozenTrial) -> int:
    """Epochs a trial trained: its record when it completed, its reported epochs when pruned."""
    if trial.state == TrialState.COMPLETE:
        return int(trial.user_attrs.get("epochs", len(trial.intermediate_values)))
    return len(trial.intermediate_values)


def epochs_to_reach(study: optuna.Study, target: float) -> int | None:
    """Epochs spent, in trial order, up to the first trial whose value reaches ``target``."""
    spent = 0
    for trial in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        spent += epochs_of(trial)
        if trial.state == TrialState.COMPLETE and trial.value is not None and trial.value >= target:
            return spent
    return None


def run(quick: bool) -> list[Row]:
    trials, max_epochs = (1, 1) if quick else (30, 3)
    data = str(sample(per_class=20 if quick else 120))
    log(f"search efficiency: random search, {trials} trials, no pruning")
    random = search("random", data, trials, max_epochs, "random", "none")
    target = random.best_value
    budget = sum(epochs_of(t) for t in random.get_trials(deepcopy=False))
    spent, ran = None, 0
    while spent is None and ran < trials:
        ran = min(ran + ROUND, trials)
        log(f"search efficiency: TPE + median pruning, up to trial {ran}")
        tpe = search("tpe", data, ran, max_epochs, "tpe", "median")
        spent = epochs_to_reach(tpe, target)
    share = (spent if spent is not None else sum(epochs_of(t) for t in tpe.get_trials(deepcopy=False))) / budget
    ours = (f"{spent} epochs ({len(tpe.trials)} trials)" if spent is not None
            else f"not reached in {len(tpe.trials)} trials ({share * budget:.0f} epochs)")
    return [Row(f"search: epochs to reach the random search's best val acc {target:.3f} (mini_xception, sample "
                f"{'20' if quick else '120'}/class, --max-epochs {max_epochs})",
                f"{budget} epochs ({trials} random trials)", ours, None, f"<= {GOAL} of random's",
                spent is not None and share <= GOAL, ratio_text=f"{share:.2f} of random's")]


if __name__ == "__main__":
    main(run)
