"""For the edge: accuracy against latency, an edge search on real faces, its Pareto front on test faces.

    python -m benchmarks.edge [--quick] [--write README.md]

The search is ``cli.py search --regime scratch --objective accuracy,latency``'s path (``run_search``): the
backbone varies over ``search_spaces.EDGE_BACKBONES`` (mini_xception to the paper's DenseNet169), each
backbone's defaults first (the paper's DenseNet169 is trial 0), then TPE's proposals; every trial trains at
most ``EPOCHS`` epochs on a stratified ``SUBSET`` of ``../shared/fer2013``'s training split (validation
stays whole), and its latency is measured on its TFLite export (``study.latency``: batch 1, one thread,
median of 50 single faces) on this machine. Each Pareto-optimal trial's model, and the paper's DenseNet169's
(trial 0), is then evaluated on the same test faces, and so is each trial kept off the front because its
model did not beat the majority rate on validation (``study.store.pareto_front``). The goals (issue 31): a
front of at least 4 points whose fastest point is at least 10x faster than DenseNet169 and within 0.05 of its
test accuracy. Every row says whether its model learned (above the majority rate). ``--quick``: the
generated sample, two trials of mini_xception (a smoke test: no conclusion). The search (hours on a slow
2-core machine) is kept under ``$FER_STUDY_CACHE/bench-edge`` per sizes and data: started again after an
interruption, the benchmark resumes it (a cut-short trial is failed and not counted) and then evaluates.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.common import Row, faces, kept_searches, log, main, trials_seconds
from study.data import Dataset, load_dataset
from study.evaluation import compute_metrics
from study.events import Events, SearchEvents
from study.latency import FPS
from study.store import off_front, pareto_front, records
from study.tuning.request import SearchRequest
from study.tuning.search import run_search

TRIALS, EPOCHS, SUBSET = 10, 5, 0.25
GOAL_POINTS, GOAL_SPEEDUP, GOAL_GAP = 4, 10.0, 0.05
PAPER = "densenet169"


class _Logged(Events):
    """The search's trials, one log line each (a benchmark prints its table alone on stdout)."""

    def search_started(self, study, total: int) -> SearchEvents:
        class Trials(SearchEvents):
            def trial_finished(self, study, trial) -> None:
                cost = records.cost(trial)
                log(f"edge: trial {trial.number} {trial.state.name.lower()} {trial.params.get('backbone', '')} "
                    f"values {trial.values} ({cost.get('tflite_ms', '?')} ms)")
        return Trials()


def run(quick: bool) -> list[Row]:
    data_path, note = faces(quick)
    trials, epochs = (2, 1) if quick else (TRIALS, EPOCHS)
    base = {"subset": SUBSET, **({"backbone": "mini_xception"} if quick else {})}
    folder = kept_searches("edge", {"trials": trials, "epochs": epochs, "base": base,
                                    "data": load_dataset(str(data_path)).fingerprint})
    request = SearchRequest(regime="scratch", trials=trials, base=base, data=str(data_path),
                            objective="accuracy,latency", max_epochs=epochs,
                            storage=f"sqlite:///{folder / 'edge.db'}", runs_dir=str(folder / "runs"))
    log(f"edge: {trials} trials, <= {epochs} epochs on {SUBSET:.0%} of the training faces of {data_path}")
    study = run_search(request, _Logged())
    minutes = trials_seconds(study) / 60
    data = load_dataset(str(data_path), subset=SUBSET)  # the test split is whole whatever the subset
    front, unlearned = pareto_front(study), off_front(study)
    paper = next((t for t in study.get_trials(deepcopy=False) if t.params.get("backbone") == PAPER
                  and records.is_default_config(t)), None)
    others = [t for t in unlearned if paper is None or t.number != paper.number]
    listed = [*front, *others, *([paper] if paper and paper not in front else [])]
    evaluated = {t.number: _test(t, data) for t in listed}
    source = f" ({note})" if note else ""
    what = (f"{trials} trials (each backbone's defaults, then TPE), <= {epochs} epochs on {SUBSET:.0%} of the "
            f"training faces{source}")
    rows = [Row(f"edge: the search's Pareto front, validation accuracy against TFLite latency; {what}",
                f"{len(study.trials)} trials", f"{len(front)} points on the front ({len(unlearned)} trial(s) below the "
                f"majority rate kept off it), trials {minutes:.1f} min", None,
                f">= {GOAL_POINTS} points", len(front) >= GOAL_POINTS)]
    reference = evaluated.get(paper.number) if paper else None
    pinned = str(records.base(study).get("backbone", "?"))
    for t in front:
        rows.append(_point_row(t, evaluated[t.number], paper, reference, pinned))
    for t in others:  # off the front whatever their speed: their test figures say whether that was right
        rows.append(_point_row(t, evaluated[t.number], paper, reference, pinned, on_front=False))
    if paper is not None and paper not in front:
        rows.append(_point_row(paper, reference, paper, reference, pinned, on_front=False))
    if front and paper is not None:
        rows.append(_goal_row(front, evaluated, paper, reference))
    real_time = [t.number for t in front if records.cost(t)["tflite_ms"] <= 1000.0 / FPS]
    rows.append(Row(f"edge: front points at {FPS:g} frames a second or more on this CPU (TFLite, one thread)",
                    f"{len(front)} points", f"trials {', '.join(map(str, real_time)) or 'none'}", None))
    return rows


def _test(trial, data: Dataset) -> dict:
    """The trial's model on the test faces: accuracy, macro-F1, the majority rate, whether it learned."""
    import keras  # deferred: the backend

    import study.model  # noqa: F401  deferred (Keras): registers the layers model.keras files reference

    model = keras.models.load_model(Path(records.run_dir(trial)) / "model.keras", compile=False)
    x = data.test.x.astype(np.float32).reshape(-1, *model.inputs[0].shape[1:])
    metrics = compute_metrics(data.test.y, model.predict(x, batch_size=256, verbose=0))
    keras.backend.clear_session()
    return metrics


def _describe(metrics: dict) -> str:
    learned = "yes" if metrics["learned"] else "NO"
    return f"test accuracy {metrics['accuracy']:.3f}, macro-F1 {metrics['macro_f1']:.3f} (learned: {learned})"


def _point_row(trial, metrics: dict, paper, reference: dict | None, pinned: str, on_front: bool = True) -> Row:
    cost = records.cost(trial)
    backbone = trial.params.get("backbone", pinned)
    where = ("on the front" if on_front else
             "off the front: did not learn on validation" if records.learned(trial) is False else "not on the front")
    baseline = (f"{PAPER} (trial {paper.number}) {records.cost(paper)['tflite_ms']:.2f} ms, test accuracy "
                f"{reference['accuracy']:.3f}" if paper is not None and reference is not None else "-")
    speedup = records.cost(paper)["tflite_ms"] / cost["tflite_ms"] if paper is not None else None
    val = records.val_metrics(trial).get("accuracy", float("nan"))
    return Row(f"edge: trial {trial.number} ({backbone}, {where})", baseline,
               f"{_describe(metrics)}; val accuracy {val:.3f}; {cost['tflite_ms']:.2f} ms ({1000 / cost['tflite_ms']:,.0f} "
               f"faces/s), TFLite {cost['tflite_bytes'] / 1e6:.1f} MB", speedup,
               ratio_text=None if speedup is None else f"{speedup:.1f}x faster")


def _goal_row(front, evaluated: dict, paper, reference: dict) -> Row:
    fastest = min(front, key=lambda t: records.cost(t)["tflite_ms"])
    mine = evaluated[fastest.number]
    speedup = records.cost(paper)["tflite_ms"] / records.cost(fastest)["tflite_ms"]
    gap = mine["accuracy"] - reference["accuracy"]
    met = speedup >= GOAL_SPEEDUP and gap >= -GOAL_GAP and mine["learned"]
    return Row("edge: the front's fastest point against the paper's DenseNet169 on the same test faces (the same "
               "search budget)",
               f"{PAPER} test accuracy {reference['accuracy']:.3f}",
               f"trial {fastest.number} ({fastest.params.get('backbone', '?')}): test accuracy {mine['accuracy']:.3f} "
               f"({gap:+.3f}), {speedup:.1f}x faster", speedup,
               f">= {GOAL_SPEEDUP:g}x faster, within {GOAL_GAP:g}, learned", met, ratio_text=f"{speedup:.1f}x faster")


if __name__ == "__main__":
    main(run)
