"""What was compared, per regime: model, input, transfer source, schedules and the budget each regime got.

The paper's numbers sit beside ours, so a reader must see what ours came from: which backbone at
which input size, where the transfer weights came from (ImageNet, or, here, a backbone pretrained
on other faces), the final runs' schedule and the searches' epoch cap. ``budget_differences`` names
every way the two regimes' budgets differ (search backend, trials, epochs, pretraining), so the
verdict can say what its comparison includes besides transfer itself.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from reports.collect import RegimeEvidence
from study.config import FACE_SIZE
from study.errors import UserError
from study.runs import Run
from study.tta import WORDS as TTA_WORDS

INPUT = "48x48 grayscale"  # study.model: every model takes one channel of raw 48x48 pixels


@dataclass(frozen=True)
class Pretraining:
    """The run whose model a transfer regime started from, as far as its record can be read."""

    path: str
    backbone: str = ""
    epochs: int | None = None
    images: int | None = None
    source: str = ""
    synthetic: bool = False
    problem: str = ""  # why the record could not be read


@dataclass(frozen=True)
class Setup:
    regime: str
    backbone: str
    weights: str  # "none", "imagenet", or a path
    pretraining: Pretraining | None  # when the weights are a previous run's model
    schedule: str  # the final runs' configured schedule, in words
    epochs_trained: tuple[int, ...]  # per run, all phases
    subset: float
    train_images: int | None  # what each run trained on (after the subset)
    backend: str
    trials: int  # finished (complete or pruned)
    search_epochs: int  # over all trials
    max_epochs: int | None  # the searches' cap, per phase
    input_size: int = FACE_SIZE  # the side the backbone sees (the model upsamples the 48x48 faces to it)
    tta: tuple[str, ...] = ("none",)  # the test-time augmentation of each final run (study.tta)


def regime_setup(evidence: RegimeEvidence) -> Setup:
    run = evidence.runs[0]
    config = run.config
    weights = config.weights or ("imagenet" if config.regime == "transfer" else "none")
    search = evidence.search
    trials = search.trials
    finished = int(search.counts.get("COMPLETE", 0) + search.counts.get("PRUNED", 0))
    sizes = run.manifest.get("data", {}).get("sizes", {})
    return Setup(
        regime=evidence.regime, backbone=config.backbone, weights=weights,
        pretraining=pretraining_of(weights) if weights not in ("none", "imagenet") else None,
        schedule=schedule_words(evidence), epochs_trained=tuple(int(len(r.history)) for r in evidence.runs),
        subset=float(config.subset), train_images=int(sizes["train"]) if "train" in sizes else None,
        backend=search.backend, trials=finished,
        search_epochs=int(trials["epochs"].sum()) if len(trials) else 0, max_epochs=search.max_epochs,
        input_size=int(config.input_size), tta=tuple(dict.fromkeys(r.config.tta for r in evidence.runs)),
    )


def pretraining_of(weights: str) -> Pretraining:
    path = Path(weights)
    run_dir = path if path.is_dir() else path.parent
    if path.suffix not in (".keras", "") and not path.is_dir():
        return Pretraining(weights, problem="a weights file, with no record of how it was trained")
    try:
        run = Run.load(run_dir)
    except UserError as exc:
        return Pretraining(weights, problem=f"no readable run record beside it ({exc})")
    data = run.manifest.get("data", {})
    train = data.get("sizes", {}).get("train")
    return Pretraining(weights, run.config.backbone, int(len(run.history)), int(train) if train is not None else None,
                       str(data.get("source", "?")), bool(data.get("synthetic", False)))


def schedule_words(evidence: RegimeEvidence) -> str:
    config = evidence.runs[0].config
    if config.regime == "transfer":
        return (f"backbone frozen for up to {config.frozen_epochs} epochs (early stopping, patience "
                f"{config.frozen_patience}), then fine-tuned for {config.epochs} epochs")
    return f"{config.epochs} epochs"


def weights_words(setup: Setup) -> str:
    if setup.weights == "none":
        return "random initialization (no pretrained weights)"
    if setup.weights == "imagenet":
        return "ImageNet weights (keras.applications), as in the paper"
    pre = setup.pretraining
    if pre is None or pre.problem:
        return f"weights from {setup.weights} ({pre.problem if pre else 'not described'})"
    data = "a SYNTHETIC sample" if pre.synthetic else "real faces"
    return (f"the backbone of a {pre.backbone} pretrained here for {pre.epochs} epochs on {_images(pre.images)} training "
            f"images of {pre.source} ({data}, not the data compared below), standing in for ImageNet, which cannot "
            f"be downloaded here ({setup.weights})")


def setup_sentence(setup: Setup) -> str:
    """One regime's model, input, source, schedule and search budget, for "What was evaluated"."""
    epochs = ", ".join(map(str, setup.epochs_trained))
    subset = (f"; each run trained on a stratified {setup.subset:.0%} subset of the training split"
              f" ({setup.train_images:,} images)" if setup.subset < 1 and setup.train_images else "")
    cap = f"each trial capped at {setup.max_epochs} epochs a phase" if setup.max_epochs else "no epoch cap"
    size = (f", upsampled to {setup.input_size}x{setup.input_size} inside the model" if setup.input_size != FACE_SIZE
            else "")
    evaluated = f" Evaluated with {tta_words(setup.tta)}." if setup.tta != ("none",) else ""
    return (f"{setup.regime}: backbone {setup.backbone} at {INPUT} input{size}; starting from {weights_words(setup)}. "
            f"Final runs: {setup.schedule} (epochs trained per run: {epochs}){subset}. Search: {setup.backend}, "
            f"{setup.trials} finished trials, {cap}, {setup.search_epochs} epochs in all.{evaluated}")


def tta_words(modes: Sequence[str]) -> str:
    """The test-time augmentation of a set of runs, in words (each mode once)."""
    return "; ".join(TTA_WORDS[m] for m in modes)


def tta_note(setups: Mapping[str, Setup]) -> str:
    """For every table read from the final runs' predictions: which used test-time augmentation ("" when none did)."""
    if all(s.tta == ("none",) for s in setups.values()):
        return ""
    return "Predictions: " + "; ".join(f"{regime}: {tta_words(s.tta)}" for regime, s in setups.items()) + "."


def trial_epochs(setup: Setup) -> int | None:
    """The most epochs one search trial could train, both phases for transfer (None: no cap)."""
    if setup.max_epochs is None:
        return None
    return setup.max_epochs * (2 if setup.regime == "transfer" else 1)


def budget_differences(setups: Mapping[str, Setup]) -> list[str]:
    """Each way the regimes' budgets differ, as a phrase; empty when they match (or only one regime).
    The starting weights are what is compared, so their cost is ``pretraining_notes``, not here."""
    if len(setups) < 2:
        return []
    items = list(setups.values())
    differences: list[str] = []

    def differ(values: Sequence[object]) -> bool:
        return len(set(values)) > 1

    if differ([s.backend for s in items]):
        differences.append("search backend (" + ", ".join(f"{s.regime} {s.backend}" for s in items) + ")")
    if differ([s.tta for s in items]):
        differences.append("test-time augmentation (" + ", ".join(f"{s.regime} {'+'.join(s.tta)}" for s in items) + ")")
    if differ([s.input_size for s in items]):
        differences.append("input size (" + ", ".join(f"{s.regime} {s.input_size}px" for s in items) + ")")
    if differ([s.trials for s in items]):
        differences.append("finished search trials (" + ", ".join(f"{s.regime} {s.trials}" for s in items) + ")")
    caps = [trial_epochs(s) for s in items]
    if differ(caps):
        differences.append("most epochs a search trial could train (" + ", ".join(
            f"{s.regime} {cap or 'no cap'}" for s, cap in zip(items, caps)) + ")")
    if differ([s.search_epochs for s in items]):
        differences.append("epochs trained by the search (" + ", ".join(f"{s.regime} {s.search_epochs}" for s in items)
                           + ")")
    means = [sum(s.epochs_trained) / max(len(s.epochs_trained), 1) for s in items]
    if differ([round(m, 1) for m in means]):
        differences.append("epochs per final run (" + ", ".join(f"{s.regime} {m:g}" for s, m in zip(items, means))
                           + ")")
    if differ([s.subset for s in items]):
        differences.append("training subset (" + ", ".join(f"{s.regime} {s.subset:.0%}" for s in items) + ")")
    if differ([s.backbone for s in items]):
        differences.append("backbone (" + ", ".join(f"{s.regime} {s.backbone}" for s in items) + ")")
    return differences


def pretraining_notes(setups: Mapping[str, Setup]) -> list[str]:
    """What each regime's starting weights cost in training of their own, as a phrase."""
    notes = []
    for s in setups.values():
        pre = s.pretraining
        if pre is not None and not pre.problem:
            notes.append(f"{s.regime}'s {pre.epochs} epochs of pretraining on {_images(pre.images)} other images")
        elif s.weights == "imagenet":
            notes.append(f"{s.regime}'s ImageNet pretraining")
        elif pre is not None:
            notes.append(f"{s.regime}'s pretrained weights ({s.weights})")
    return notes


def _images(n: int | None) -> str:
    return "an unrecorded number of" if n is None else f"{n:,}"
