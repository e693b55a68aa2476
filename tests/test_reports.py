"""The report: tables equal scikit-learn's numbers, Markdown and PDF agree, bad input is named.

Fixtures write run directories file by file in the documented format (no training, no TensorFlow)
and an optuna SQLite study whose user attributes point at them, the way ``search`` and
``train --from-study`` leave them.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterator

import numpy as np
import optuna
import pandas as pd
import pytest
from click.testing import CliRunner
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState
from pypdf import PdfReader
from sklearn.metrics import average_precision_score, confusion_matrix, f1_score, roc_auc_score
from sklearn.preprocessing import label_binarize

from reports import paper
from reports.build import build_report, compute, face_indices
from reports.collect import ReportError, gather, load_run
from reports.compose import classes_sentence, partial_line
from reports.stats import PairingError, compare_classes
from reports.tables import cells, format_value
from study import config as config_mod
from study.calibration import brier, ece, fit_temperature
from study.config import TrainConfig
from study.data import CLASSES, Dataset, load_dataset
from study.errors import UserError
from study.evaluation import compute_metrics
from study.runs import write_json, write_npz
from study.store import records

K = len(CLASSES)


# ----------------------------------------------------------------------------- writing fixtures
def fake_probs(labels: np.ndarray, accuracy: float, seed: int) -> np.ndarray:
    """Probabilities whose argmax is the true label for about ``accuracy`` of the images."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 1.0, (len(labels), K))
    wrong = (labels + rng.integers(1, K, len(labels))) % K
    target = np.where(rng.random(len(labels)) < accuracy, labels, wrong)
    logits[np.arange(len(labels)), target] += 3.0
    exp = np.exp(logits)
    return (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)


def history(regime: str, seed: int) -> pd.DataFrame:
    phases = ["frozen"] * 2 + ["finetune"] * 3 if regime == "transfer" else ["scratch"] * 4
    rng = np.random.default_rng(100 + seed)
    n = len(phases)
    return pd.DataFrame({
        "epoch": np.arange(1, n + 1), "phase": phases,
        "loss": np.linspace(2.9, 2.1, n), "cross_entropy": np.linspace(1.9, 1.1, n), "accuracy": np.round(np.linspace(0.3, 0.6, n) + rng.uniform(0, 0.05, n), 4),
        "val_loss": np.linspace(2.95, 2.2, n), "val_cross_entropy": np.linspace(1.95, 1.2, n), "val_accuracy": np.linspace(0.25, 0.55, n),
        "learning_rate": [0.01 if p == "frozen" else 0.001 for p in phases], "seconds": np.full(n, 1.5),
    })


def one_answer(labels: np.ndarray) -> np.ndarray:
    """A model that learned nothing: the most common class for every image."""
    probs = np.full((len(labels), K), 0.05, dtype=np.float32)
    probs[:, np.bincount(labels, minlength=K).argmax()] = 0.7
    return probs


def write_run(run_dir: Path, regime: str, seed: int, data: Dataset, accuracy: float | None, *, with_test: bool = True,
              source: str | None = None, fingerprint: str | None = None, study: str = "", weights: str = "",
              subset: float = 1.0, epochs: int = 20) -> Path:
    """A run directory as study.training writes it (model.keras empty: the report never loads it);
    ``accuracy=None`` writes a run that answers one class."""
    run_dir.mkdir(parents=True)
    config = TrainConfig(regime=regime, seed=seed, backbone="mini_xception", weights=weights, subset=subset,
                         epochs=epochs)
    splits = {"val": data.val.y, **({"test": data.test.y} if with_test else {})}
    probs = {name: one_answer(y) if accuracy is None else
             fake_probs(y, accuracy, seed * 10 + len(name) + (0 if regime == "scratch" else 5))
             for name, y in splits.items()}
    metrics = {name: compute_metrics(y, probs[name]) for name, y in splits.items()}
    write_json(run_dir / "config.json", config_mod.to_dict(config))
    history(regime, seed).to_csv(run_dir / "history.csv", index=False)
    write_json(run_dir / "metrics.json", {**metrics, "summary": {"epochs": 4}})
    arrays = {"class_names": np.array(CLASSES)}
    for name, y in splits.items():
        arrays[f"{name}_labels"], arrays[f"{name}_probs"] = y, probs[name]
    write_npz(run_dir / "predictions.npz", **arrays)
    (run_dir / "model.keras").write_bytes(b"")
    write_json(run_dir / "manifest.json", {
        "versions": {"python": "3.11.9", "tensorflow": "2.18.0", "keras": "3.6.0", "numpy": "2.0.2",
                     "scikit_learn": "1.5.2"},
        "device": "CPU (x86_64)", "precision": "float32", "seed": seed,
        "data": {"source": source or data.source, "layout": data.layout, "fingerprint": fingerprint or data.fingerprint,
                 "synthetic": data.synthetic, "subset": subset,
                 "sizes": {name: int(len(getattr(data, name).y) * (subset if name == "train" else 1))
                           for name in ("train", "val", "test")}},
        "timings_seconds": {"total": 12.5 + seed}, "created": "2025-01-01T00:00:00", "study": study,
    })
    return run_dir


def make_study(url: str, name: str, regime: str, data: Dataset, runs_dir: Path, *, seeds: tuple[int, ...] = (0, 1),
               accuracy: float = 0.5, trials: int = 4, backend: str = "optuna", max_epochs: int | None = 2,
               trial_epochs: int = 4, **run_options) -> optuna.Study:
    """A finished search (complete, pruned and failed trials) and, per seed, a final run."""
    study = optuna.create_study(storage=url, study_name=name, direction="maximize")
    for key, value in {"regime": regime, "backend": backend, "objective": "accuracy", "direction": "maximize",
                       "data": data.source, "fingerprint": data.fingerprint, "base": {},
                       "max_epochs": max_epochs}.items():
        study.set_user_attr(key, value)
    distributions = {"learning_rate": FloatDistribution(1e-4, 1e-1, log=True),
                     "batch_size": CategoricalDistribution((32, 64, 128)), "momentum": FloatDistribution(0.0, 0.95)}
    for number in range(trials):
        value = None if accuracy is None else accuracy - 0.05 * number
        trial_dir = write_run(runs_dir / name / f"trial-{number}", regime, 0, data, value, with_test=False, study=name,
                              **run_options)
        params = {"learning_rate": 10 ** (-3 + number * 0.4), "batch_size": (32, 64, 128)[number % 3],
                  "momentum": 0.2 * number}
        study.add_trial(optuna.trial.create_trial(
            params=params, distributions=distributions, value=0.25 if value is None else value,
            user_attrs={"run_dir": str(trial_dir), "epochs": trial_epochs, "seconds": 3.0}))
    study.add_trial(optuna.trial.create_trial(state=TrialState.PRUNED, params=params, distributions=distributions,
                                              intermediate_values={0: 0.2, 1: 0.25}))
    study.add_trial(optuna.trial.create_trial(state=TrialState.FAIL, params=params, distributions=distributions,
                                              user_attrs={"error": "the training loss became nan"}))
    finals = [str(write_run(runs_dir / name / f"final-seed{s}", regime, s, data, accuracy, study=name, **run_options))
              for s in seeds]
    if finals:
        study.set_user_attr("final_runs", finals)
    return study


def storage(tmp: Path) -> str:
    return f"sqlite:///{tmp / 'studies.db'}"


@pytest.fixture(scope="module")
def data(sample_dir: Path) -> Dataset:
    return load_dataset(sample_dir)


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory, data: Dataset) -> Iterator[dict]:
    """Both regimes, two seeds each, built once: the report every content test reads."""
    tmp = tmp_path_factory.mktemp("full")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FER_STUDY_CACHE", str(tmp / "cache"))
        make_study(storage(tmp), "scratch-optuna", "scratch", data, tmp / "runs", accuracy=0.6)
        make_study(storage(tmp), "transfer-optuna", "transfer", data, tmp / "runs", accuracy=0.85)
        built = build_report(storage(tmp), out=tmp / "out")
        content = compute(gather(storage(tmp)))
        yield {"tmp": tmp, "built": built, "content": content, "md": (tmp / "out" / "report.md").read_text(),
               "pdf": PdfReader(tmp / "out" / "report.pdf")}


def predictions(run_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    arrays = np.load(run_dir / "predictions.npz")
    return arrays["test_labels"], arrays["test_probs"]


def final_dirs(tmp: Path, regime: str) -> list[Path]:
    return [tmp / "runs" / f"{regime}-optuna" / f"final-seed{s}" for s in (0, 1)]


def cell(table, row: str, column: str):
    return table.frame.loc[row, column]


# ----------------------------------------------------------------------------- the paper's values
def test_paper_table_ii_totals_are_the_sum_of_its_classes() -> None:
    for regime in ("transfer", "scratch"):
        classes = sum(paper.TABLE_II[c][regime].value for c in CLASSES)
        assert classes == paper.TABLE_II["total"][regime].value


def test_paper_values_are_labelled_and_copied_faithfully(full: dict) -> None:
    table = full["content"].tables["table1"]
    assert format_value(cell(table, "val accuracy (evaluated model)", "scratch: paper")) == "≈0.98"
    assert format_value(cell(table, "accuracy (train, last epoch)", "transfer: paper")) == "≈0.72"
    assert format_value(cell(full["content"].tables["table2"], "total", "transfer: paper")) == "4608"
    assert "contradicts itself" in table.note
    assert "| metric | scratch: ours | scratch: paper | transfer: ours | transfer: paper |" in full["md"]


# ------------------------------------------------------------------------ tables equal sklearn
@pytest.mark.parametrize("regime", ["scratch", "transfer"])
def test_tables_equal_scikit_learn_on_the_stored_predictions(full: dict, regime: str) -> None:
    tables = full["content"].tables
    per_seed = [predictions(d) for d in final_dirs(full["tmp"], regime)]
    onehots = [label_binarize(y, classes=list(range(K))) for y, _ in per_seed]
    tp = np.mean([np.diag(confusion_matrix(y, p.argmax(1), labels=list(range(K)))) for y, p in per_seed], axis=0)
    for i, name in enumerate(CLASSES):
        assert cell(tables["table2"], name, f"{regime}: ours").mean == pytest.approx(tp[i])
        auc = np.mean([roc_auc_score(o[:, i], p[:, i]) for o, (_, p) in zip(onehots, per_seed)])
        assert cell(tables["table3"], name, f"{regime}: ours").mean == pytest.approx(auc)
        ap = np.mean([average_precision_score(o[:, i], p[:, i]) for o, (_, p) in zip(onehots, per_seed)])
        assert cell(tables["table4"], name, f"{regime}: ours").mean == pytest.approx(ap)
    assert cell(tables["table2"], "total", f"{regime}: ours").mean == pytest.approx(tp.sum())
    micro = np.mean([roc_auc_score(o.ravel(), p.ravel()) for o, (_, p) in zip(onehots, per_seed)])
    assert cell(tables["table3"], "micro-average", f"{regime}: ours").mean == pytest.approx(micro)
    micro_ap = np.mean([average_precision_score(o, p, average="micro") for o, (_, p) in zip(onehots, per_seed)])
    assert cell(tables["table4"], "micro-average", f"{regime}: ours").mean == pytest.approx(micro_ap)
    f1 = np.mean([f1_score(y, p.argmax(1), average="macro") for y, p in per_seed])
    assert cell(tables["recall"], "macro-F1", regime).mean == pytest.approx(f1)


def test_table_i_reads_the_last_epoch_and_the_evaluated_model(full: dict) -> None:
    table = full["content"].tables["table1"]
    runs = final_dirs(full["tmp"], "transfer")
    last = [pd.read_csv(d / "history.csv").iloc[-1] for d in runs]
    assert cell(table, "accuracy (train, last epoch)", "transfer: ours").mean == pytest.approx(
        np.mean([row["accuracy"] for row in last]))
    # two losses, named apart: the cross-entropy alone, and Keras's loss with the L2 penalty, which the paper's is
    assert cell(table, "cross-entropy (train, last epoch)", "transfer: ours").mean == pytest.approx(
        np.mean([row["cross_entropy"] for row in last]))
    assert cell(table, "loss incl. L2 (train, last epoch, Keras)", "transfer: ours").mean == pytest.approx(
        np.mean([row["loss"] for row in last]))
    assert cell(table, "val loss incl. L2 (last epoch, Keras)", "transfer: ours").mean == pytest.approx(
        np.mean([row["val_loss"] for row in last]))
    assert format_value(cell(table, "loss incl. L2 (train, last epoch, Keras)", "transfer: paper")) == "≈1.02"
    assert cell(table, "cross-entropy (train, last epoch)", "transfer: paper") is None
    assert "Two losses, never mixed" in table.note
    test_accuracy = [np.mean(y == p.argmax(1)) for y, p in map(predictions, runs)]
    estimate = cell(table, "test accuracy", "transfer: ours")
    assert estimate.mean == pytest.approx(np.mean(test_accuracy)) and estimate.n == 2
    # two seeds: their range, not a t-interval 12.7 standard errors wide
    assert estimate.half_width is None and (estimate.low, estimate.high) == pytest.approx(
        (min(test_accuracy), max(test_accuracy)))
    assert format_value(estimate) == (f"{np.mean(test_accuracy):.4f} (range {min(test_accuracy):.4f}–"
                                      f"{max(test_accuracy):.4f})")
    assert "with 2 seeds the range of the two, not an interval" in table.note
    labels = predictions(runs[0])[0]
    majority = np.bincount(labels, minlength=K).max() / len(labels)
    assert cell(table, "test majority-class rate (baseline)", "transfer: ours") == pytest.approx(majority)


def test_markdown_shows_the_formatted_cells(full: dict) -> None:
    for table in full["content"].tables.values():
        header, rows = cells(table)
        assert "| " + " | ".join(header) + " |" in full["md"]
        for row in rows:
            assert "| " + " | ".join(v.replace("|", "\\|") for v in row) + " |" in full["md"]


def test_pdf_carries_the_same_table_values_as_the_markdown(full: dict) -> None:
    text = " ".join(page.extract_text() for page in full["pdf"].pages)
    for table in full["content"].tables.values():
        header, rows = cells(table)
        for value in [v for row in rows for v in row[1:]]:
            assert _squash(value) in _squash(text), f"{table.title}: {value!r} not in the PDF"
    numbers = set(re.findall(r"[-+≈]?\d+\.\d+", full["md"]))
    assert numbers and numbers <= set(re.findall(r"[-+≈]?\d+\.\d+", text))


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def test_pdf_is_a_document_with_page_numbers_and_figures(full: dict) -> None:
    reader = full["pdf"]
    assert len(reader.pages) > 3
    assert "page 2" in reader.pages[1].extract_text()
    assert reader.metadata.title.startswith("Scratch vs transfer")
    images = sum(len(page.images) for page in reader.pages)
    assert images == len(full["built"].figures)


def test_every_figure_is_written_and_referenced(full: dict) -> None:
    out = full["tmp"] / "out"
    expected = {"seeds", "data:" + full["content"].data[0].fingerprint}
    expected |= {f"{kind}:{r}" for kind in ("training", "confusion", "roc", "pr", "faces") for r in ("scratch", "transfer")}
    expected |= {f"parallel:{r}-optuna" for r in ("scratch", "transfer")}
    expected |= {"confusion-difference"} | {f"reliability:{r}" for r in ("scratch", "transfer")}  # calibration, classes
    expected |= {"budget", "histories", "importances"}  # both searches side by side: expected best, histories, importances
    assert set(full["built"].figures) == expected
    for figure in full["built"].figures.values():
        assert (out / figure.path).stat().st_size > 5000
        assert f"]({figure.path.as_posix()})" in full["md"]


def test_dataset_card_counts_and_synthetic_banner(full: dict, data: Dataset) -> None:
    card = full["content"].tables[f"data-{data.fingerprint}"]
    for split in ("train", "val", "test"):
        assert list(card.frame[split].iloc[:-1]) == list(data.counts()[split])
    assert full["md"].count("SYNTHETIC SAMPLE") >= 2
    assert full["md"].splitlines()[0] == "# Scratch vs transfer learning for facial emotion recognition"


def test_face_grid_shows_the_same_faces_for_both_regimes() -> None:
    picked = face_indices(55)
    assert len(picked) == 9 and len(set(picked)) == 9
    assert np.array_equal(picked, face_indices(55))
    assert len(face_indices(4)) == 4


def test_comparison_and_verdict_follow_the_numbers(full: dict) -> None:
    content = full["content"]
    comparison = content.comparison
    assert [(p.seed_a, p.seed_b) for p in comparison.pairs] == [(0, 0), (1, 1)]
    y, _ = predictions(final_dirs(full["tmp"], "scratch")[0])
    accuracy = {r: np.mean([np.mean(yy == p.argmax(1)) for yy, p in map(predictions, final_dirs(full["tmp"], r))])
                for r in ("scratch", "transfer")}
    assert comparison.pooled.difference == pytest.approx(accuracy["transfer"] - accuracy["scratch"])
    text = " ".join(content.verdict)
    assert text.startswith("Transfer has the higher mean test accuracy")
    assert ("excludes 0" in text) == comparison.pooled.excludes_zero
    assert "SYNTHETIC SAMPLE" in text


def test_a_regime_that_did_not_learn_gets_no_verdict_and_is_named_in_the_runs_table(tmp_path: Path,
                                                                                    data: Dataset) -> None:
    make_study(storage(tmp_path), "scratch-optuna", "scratch", data, tmp_path / "runs", accuracy=None)
    make_study(storage(tmp_path), "transfer-optuna", "transfer", data, tmp_path / "runs", accuracy=0.85)
    content = compute(gather(storage(tmp_path)))
    text = " ".join(content.verdict)
    assert text.startswith("No verdict: 2 of 2 scratch run(s) did not learn") and "majority-class rate" in text
    assert "more accurate" not in text and "McNemar" not in text
    header, rows = cells(content.tables["seeds"])
    learned = {row[0]: row[header.index("learned")] for row in rows}
    assert learned["scratch seed 0"].startswith("NO") and learned["transfer seed 0"] == "yes"
    assert "majority-class rate" in " ".join(header)


def test_search_summary_counts_trials_and_params(full: dict) -> None:
    table = full["content"].tables["search"]
    assert cell(table, "trials complete", "scratch-optuna") == 4
    assert cell(table, "trials pruned", "scratch-optuna") == 1
    assert cell(table, "trials failed", "scratch-optuna") == 1
    assert cell(table, "best trial", "scratch-optuna") == 0
    assert cell(table, "epochs trained (all trials)", "scratch-optuna") == 4 * 4 + 2
    importances = full["content"].tables["importance-transfer-optuna"].frame
    assert list(importances.columns) == ["PED-ANOVA", "fANOVA"]  # optuna 5's default first, the seeded fANOVA beside
    assert all(sum(importances[c]) == pytest.approx(1.0) for c in importances.columns)
    assert importances["PED-ANOVA"].tolist() == sorted(importances["PED-ANOVA"], reverse=True)
    assert (full["tmp"] / "out" / "figures" / "search_histories.png").is_file()
    assert (full["tmp"] / "out" / "figures" / "search_importances.png").is_file()
    assert "transfer-optuna" in full["md"]


# ------------------------------------------------------------------------------ choosing studies
def test_default_study_is_the_one_with_most_final_runs_and_study_overrides(tmp_path: Path, data: Dataset) -> None:
    url = storage(tmp_path)
    make_study(url, "scratch-a", "scratch", data, tmp_path / "runs", seeds=(0, 1))
    make_study(url, "scratch-b", "scratch", data, tmp_path / "runs", seeds=(0,))
    make_study(url, "transfer-a", "transfer", data, tmp_path / "runs", seeds=(0,))
    assert gather(url).regimes["scratch"].search.name == "scratch-a"
    assert gather(url, ["scratch-b"]).regimes["scratch"].search.name == "scratch-b"
    with pytest.raises(ReportError, match="both scratch studies: pass one study per regime"):
        gather(url, ["scratch-a", "scratch-b"])
    with pytest.raises(ReportError, match="no study named 'nope'.*studies: scratch-a, scratch-b, transfer-a"):
        gather(url, ["nope"])


def test_without_final_runs_a_report_is_refused_unless_partial_and_then_says_validation_at_the_top(
        tmp_path: Path, data: Dataset) -> None:
    url = storage(tmp_path)
    make_study(url, "scratch-s", "scratch", data, tmp_path / "runs", seeds=())
    make_study(url, "transfer-s", "transfer", data, tmp_path / "runs", seeds=(0,), accuracy=0.9)
    with pytest.raises(ReportError, match="study scratch-s has no final runs, so the report would show its best "
                                          "trial's run on validation images"):
        gather(url)
    assert re.search(r"scratch-s has no final runs.*pass --partial .*\(`python cli.py train --from-study scratch-s "
                     r"--seeds 3` trains them\)", report_error(url, tmp_path / "out"))
    assert not (tmp_path / "out").exists()
    evidence = gather(url, partial=True)
    assert evidence.regimes["scratch"].source == "trial" and evidence.regimes["scratch"].trial_number == 0
    assert evidence.lacks == ("final runs of study scratch-s (its best trial's run stands in, so every table is on "
                              "VALIDATION images, which the search chose it on)",)
    content = compute(evidence)
    assert content.split == "val" and content.comparison.split == "val"
    assert content.tables["table2"].title == "Table II: true positives per class (validation)"
    assert "These are validation values" in content.tables["table3"].note
    assert format_value(cell(content.tables["table1"], "test accuracy", "transfer: ours")) == "n/a"
    assert any("validation images" in s for s in content.verdict)
    first = partial_line(content.lacks)  # what report.md and report.pdf open with (test_one_regime_... reads them)
    assert first.startswith("PARTIAL REPORT: it lacks final runs of study scratch-s") and "VALIDATION" in first


# ------------------------------------------------------------------------------------ bad input
def report_error(url: str, out: Path, *args: str) -> str:
    """What ``report`` prints for a store it cannot report on (the command line words the next step)."""
    from cli import cli

    result = CliRunner().invoke(cli, ["report", "--storage", url, "--out", str(out), *args])
    assert result.exit_code == 2, result.output
    return result.output


def test_no_store_and_an_empty_store_are_one_clear_error_each(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match=r"no study store at .*studies.db \(sqlite:///.*\)"):
        build_report(storage(tmp_path), out=tmp_path / "out")
    assert re.search(r"no study store at .*studies.db \(sqlite:///.*\): run `python cli.py search",
                     report_error(storage(tmp_path), tmp_path / "out"))
    assert not (tmp_path / "studies.db").exists()
    optuna.storages.RDBStorage(storage(tmp_path))
    with pytest.raises(ReportError, match=r"no studies in sqlite:///"):
        build_report(storage(tmp_path), out=tmp_path / "out")
    assert re.search(r"no studies in sqlite:///.*: run `python cli.py search", report_error(storage(tmp_path),
                                                                                          tmp_path / "out"))


def test_a_report_opens_the_store_once(tmp_path: Path, data: Dataset, monkeypatch) -> None:
    import reports.collect
    import reports.curve

    url = storage(tmp_path)
    make_study(url, "scratch-only", "scratch", data, tmp_path / "runs", seeds=(0,), trials=2)
    opened: list[str] = []
    for module in (reports.collect, reports.curve):
        real = module.open_storage
        monkeypatch.setattr(module, "open_storage", lambda *args, real=real, **kwargs: opened.append(args[0])
                            or real(*args, **kwargs))
    build_report(url, out=tmp_path / "out", formats="md", partial=True)
    assert opened == [url]


def test_one_regime_is_an_error_unless_partial_and_then_the_first_line_says_so(tmp_path: Path, data: Dataset) -> None:
    url = storage(tmp_path)
    make_study(url, "scratch-only", "scratch", data, tmp_path / "runs", seeds=(0,), trials=2)
    with pytest.raises(ReportError, match="no transfer study in "):
        build_report(url, out=tmp_path / "out")
    assert re.search("no transfer study in .*--regime transfer.*--partial", report_error(url, tmp_path / "out"))
    assert not (tmp_path / "out").exists()
    built = build_report(url, out=tmp_path / "out", formats="md,pdf", partial=True)
    first = (tmp_path / "out" / "report.md").read_text().splitlines()[0]
    assert first.startswith("**PARTIAL REPORT: it lacks a transfer study")
    pdf_first = PdfReader(built.documents["pdf"]).pages[0].extract_text().splitlines()[0]
    assert pdf_first.startswith("PARTIAL REPORT: it lacks a transfer study")


def test_a_corrupt_run_file_is_named(tmp_path: Path, data: Dataset) -> None:
    url = storage(tmp_path)
    make_study(url, "scratch-c", "scratch", data, tmp_path / "runs", trials=2)
    make_study(url, "transfer-c", "transfer", data, tmp_path / "runs", trials=2)
    bad = tmp_path / "runs" / "transfer-c" / "final-seed1" / "metrics.json"
    bad.write_text("{not json")
    with pytest.raises(ReportError, match=f"study transfer-c: run file {re.escape(str(bad))} is corrupt"):
        gather(url)
    evidence = gather(url, partial=True)
    assert evidence.regimes["transfer"].seeds == [0]
    assert evidence.lacks[0].startswith("a final run of study transfer-c (run file") and str(bad) in evidence.lacks[0]


def test_a_missing_run_file_is_named(tmp_path: Path, data: Dataset) -> None:
    url = storage(tmp_path)
    make_study(url, "scratch-m", "scratch", data, tmp_path / "runs", seeds=(0,), trials=2)
    make_study(url, "transfer-m", "transfer", data, tmp_path / "runs", seeds=(0,), trials=2)
    (tmp_path / "runs" / "scratch-m" / "final-seed0" / "predictions.npz").unlink()
    with pytest.raises(ReportError, match="final-seed0 is incomplete: missing predictions.npz"):
        gather(url)


@pytest.mark.parametrize(("file", "content", "message"), [
    ("history.csv", "garbage\n1\n", "history.csv is corrupt: it lacks the column(s) epoch, phase"),
    ("history.csv", "epoch,phase,loss,accuracy,val_loss,val_accuracy\n", "history.csv is corrupt: it has no epochs"),
])
def test_a_run_file_that_parses_but_lacks_what_the_report_reads_is_named(tmp_path: Path, data: Dataset, file: str,
                                                                          content: str, message: str) -> None:
    run_dir = write_run(tmp_path / "run", "scratch", 0, data, 0.5)
    (run_dir / file).write_text(content)
    with pytest.raises(UserError, match=re.escape(message)):
        load_run(run_dir)


def test_predictions_of_the_wrong_shape_are_named(tmp_path: Path, data: Dataset) -> None:
    run_dir = write_run(tmp_path / "run", "scratch", 0, data, 0.5)
    arrays = dict(np.load(run_dir / "predictions.npz"))
    write_npz(run_dir / "predictions.npz", **{**arrays, "test_probs": arrays["test_probs"][:, :3]})
    with pytest.raises(UserError, match=f"predictions.npz is corrupt: test_probs is {len(data.test.y)}x3, expected "
                                        f"{len(data.test.y)}x7"):
        load_run(run_dir)


def test_regimes_on_different_data_are_not_paired(tmp_path: Path, data: Dataset) -> None:
    url = storage(tmp_path)
    make_study(url, "scratch-d", "scratch", data, tmp_path / "runs", seeds=(0,), trials=2)
    make_study(url, "transfer-d", "transfer", data, tmp_path / "runs", seeds=(0,), trials=2, fingerprint="0123abcd")
    with pytest.raises(PairingError, match="scratch seed 0 was evaluated on data .* and transfer seed 0 on data "
                                           "0123abcd .*train both regimes on the same dataset"):
        compute(gather(url))
    content = compute(gather(url), partial=True)
    assert content.comparison is None and content.lacks[0].startswith("the paired comparison of the regimes")
    assert content.verdict[0].startswith("No verdict")


def test_unavailable_data_skips_the_face_grid_with_a_sentence(tmp_path: Path, data: Dataset) -> None:
    url = storage(tmp_path)
    gone = str(tmp_path / "moved-away")
    make_study(url, "scratch-u", "scratch", data, tmp_path / "runs", seeds=(0,), trials=1, source=gone)
    make_study(url, "transfer-u", "transfer", data, tmp_path / "runs", seeds=(0,), trials=1, source=gone)
    built = build_report(url, out=tmp_path / "out", formats="md")
    text = built.documents["md"].read_text()
    assert not any(key.startswith("faces:") for key in built.figures)
    assert f"No face grid for scratch: the dataset at {gone} cannot be read" in text
    assert "Train counts are unknown" in text
    assert "No parallel-coordinate plot: it needs at least 2 complete trials" in text
    assert "Hyperparameter importances need at least 2 complete trials" in text
    assert "pdf" not in built.documents and not (tmp_path / "out" / "report.pdf").exists()


def test_bad_format_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="format takes a comma-separated list of md, pdf, got 'md,docx'"):
        build_report(storage(tmp_path), out=tmp_path / "out", formats="md,docx")
    assert "--format takes a comma-separated list of md, pdf, got 'md,docx'" in report_error(
        storage(tmp_path), tmp_path / "out", "--format", "md,docx")


def test_cli_prints_one_line_and_exits_2(tmp_path: Path) -> None:
    from cli import cli

    result = CliRunner().invoke(cli, ["report", "--storage", storage(tmp_path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: no study store at ")


# ------------------------------------------------------------------------------ end to end (slow)
@pytest.mark.slow
def test_report_of_a_tiny_real_search_and_final_training(tmp_path: Path, sample_dir: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """search (both regimes) -> train --from-study (2 seeds each) -> report, all through the real code."""
    from cli import cli
    from study.experiments.final import train_from_study

    url, runs = storage(tmp_path), tmp_path / "runs"
    fast = ["--trials", "2", "--data", str(sample_dir), "--storage", url, "--runs-dir", str(runs), "--max-epochs", "1",
            "--backbone", "mini_xception"]
    runner = CliRunner()
    assert runner.invoke(cli, ["search", "--regime", "scratch", *fast], catch_exceptions=False).exit_code == 0
    weights = runs / "scratch-optuna" / "trial-0" / "model.keras"
    transfer = ["search", "--regime", "transfer", *fast, "--weights", str(weights), "--pruner", "none"]
    assert runner.invoke(cli, transfer, catch_exceptions=False).exit_code == 0
    monkeypatch.chdir(tmp_path)  # train --from-study writes its runs under ./runs
    final = runner.invoke(cli, ["train", "--from-study", "scratch-optuna", "--seeds", "2", "--storage", url],
                          catch_exceptions=False)
    assert final.exit_code == 0 and "ensemble of the 2 runs (the mean of their probabilities): test accuracy" in \
        final.output, final.output
    train_from_study("transfer-optuna", url, seeds=2, runs_dir=runs)
    result = runner.invoke(cli, ["report", "--storage", url, "--out", str(tmp_path / "out")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    content = compute(gather(url))
    assert content.split == "test" and len(content.comparison.pairs) == 2
    text = (tmp_path / "out" / "report.md").read_text()
    assert "Table I: accuracy and loss" in text and "Paired comparison on the same" in text
    assert "Each regime's runs as one ensemble (test)" in text and "| scratch ensemble vs transfer ensemble |" in text
    assert (tmp_path / "out" / "figures" / "saliency.png").is_file() and "No Grad-CAM figure" not in text
    assert (tmp_path / "out" / "figures" / "search_budget.png").is_file()
    assert "Expected best validation accuracy: scratch came within 0.01 of its best" in text
    assert "pruned trials count with the last score they reported" in text
    pdf_text = " ".join(page.extract_text() for page in PdfReader(tmp_path / "out" / "report.pdf").pages)
    for value in cells(content.tables["table1"])[1][0][1:]:
        assert _squash(value) in _squash(pdf_text)


# ------------------------------------------------------------------- what was compared, said
def test_what_was_evaluated_names_model_input_source_schedule_and_cap(tmp_path: Path, data: Dataset) -> None:
    url = storage(tmp_path)
    pretrain = write_run(tmp_path / "runs" / "pretrain", "scratch", 0, data, 0.7, epochs=4)
    make_study(url, "scratch-e", "scratch", data, tmp_path / "runs", seeds=(0, 1, 2), max_epochs=3)
    make_study(url, "transfer-e", "transfer", data, tmp_path / "runs", seeds=(0, 1, 2), max_epochs=3,
               weights=str(pretrain / "model.keras"))
    content = compute(gather(url))
    evaluated = " ".join(content.setups and [s for s in map(str, _section(content, "What was evaluated"))])
    assert "scratch: backbone mini_xception at 48x48 grayscale input; starting from random initialization" in evaluated
    assert (f"transfer: backbone mini_xception at 48x48 grayscale input; starting from the backbone of a mini_xception "
            f"pretrained here for 4 epochs on {len(data.train.y):,} training images of {data.source} (a SYNTHETIC "
            "sample") in evaluated
    assert "backbone frozen for up to 30 epochs (early stopping, patience 3), then fine-tuned for 20 epochs" in evaluated
    assert "each trial capped at 3 epochs a phase" in evaluated
    assert "DenseNet169 with ImageNet weights" in evaluated
    # the budgets differ in the trial cap (3 vs 3+3), the final epochs (4 vs 5 in the fixtures' histories) and
    # transfer's pretraining: the verdict names each
    budget = next(s for s in content.verdict if s.startswith("Besides the starting weights, the regimes' budgets"))
    assert "most epochs a search trial could train (scratch 3, transfer 6)" in budget
    assert "epochs per final run (scratch 4, transfer 5)" in budget
    assert "search backend" not in budget and "finished search trials" not in budget
    cost = next(s for s in content.verdict if s.startswith("The starting weights cost training of their own"))
    assert f"transfer's 4 epochs of pretraining on {len(data.train.y):,} other images" in cost


def _section(content, heading: str) -> list[str]:
    """The paragraphs under one heading of the composed document."""
    from reports.compose import compose
    from reports.document import Heading, Paragraph

    blocks = compose(content, _NoFigures()).blocks
    start = next(i for i, b in enumerate(blocks) if isinstance(b, Heading) and b.text == heading)
    end = next((i for i, b in enumerate(blocks) if i > start and isinstance(b, Heading) and b.level == 1), len(blocks))
    return [b.text for b in blocks[start + 1:end] if isinstance(b, Paragraph)]


class _NoFigures(dict):
    def __missing__(self, key: str):
        from reports.document import FigureBlock

        return FigureBlock(Path("figures") / f"{key}.png", key)


def test_the_verdict_names_a_difference_in_backend_and_trials(tmp_path: Path, data: Dataset) -> None:
    url = storage(tmp_path)
    make_study(url, "scratch-b", "scratch", data, tmp_path / "runs", seeds=(0, 1, 2), trials=3, trial_epochs=6)
    make_study(url, "transfer-b", "transfer", data, tmp_path / "runs", seeds=(0, 1, 2), trials=5, backend="keras-tuner",
               trial_epochs=12)
    verdict = compute(gather(url)).verdict
    budget = next(s for s in verdict if s.startswith("Besides the starting weights"))
    assert "search backend (scratch optuna, transfer keras-tuner)" in budget
    assert "finished search trials (scratch 4, transfer 6)" in budget  # complete + the pruned one
    assert "epochs trained by the search (scratch 20, transfer 62)" in budget  # the pruned trial reported 2
    assert any("transfer's ImageNet pretraining" in s for s in verdict)


def test_equal_budgets_are_said_to_be_equal() -> None:
    from reports.setup import Setup, budget_differences, pretraining_notes
    from reports.verdict import budget_sentences

    common = dict(backbone="mini_xception", schedule="", epochs_trained=(12, 12), subset=1.0, train_images=1000,
                  backend="optuna", trials=5, search_epochs=50)
    setups = {"scratch": Setup("scratch", weights="none", pretraining=None, max_epochs=10, **common),
              "transfer": Setup("transfer", weights="imagenet", pretraining=None, max_epochs=5, **common)}
    assert budget_differences(setups) == []  # 10 epochs a trial each: one phase of 10, two of 5
    sentences = budget_sentences(budget_differences(setups), pretraining_notes(setups))
    assert sentences[0].startswith("Both regimes had the same budget")
    assert sentences[1] == ("The starting weights cost training of their own, which the comparison does not "
                            "count: transfer's ImageNet pretraining.")


def test_test_time_augmentation_and_input_size_are_named_in_the_setup_the_budget_and_every_prediction_table(
        full: dict) -> None:
    import dataclasses

    from reports.build import PREDICTION_TABLES, _with_note
    from reports.setup import Setup, budget_differences, setup_sentence, tta_note

    common = dict(backbone="densenet169", schedule="20 epochs", epochs_trained=(20,), subset=1.0, train_images=1000,
                  backend="optuna", trials=5, search_epochs=50, pretraining=None, max_epochs=None)
    plain = {"scratch": Setup("scratch", weights="none", **common), "transfer": Setup("transfer", weights="imagenet",
                                                                                      **common)}
    assert tta_note(plain) == "" and "test-time" not in setup_sentence(plain["scratch"])
    assert "upsampled" not in setup_sentence(plain["scratch"])
    assert not any("test-time" in t.note for t in full["content"].tables.values())  # the fixture's runs use none
    mixed = {**plain, "transfer": dataclasses.replace(plain["transfer"], tta=("flip",), input_size=96)}
    note = tta_note(mixed)
    assert note == ("Predictions: scratch: no test-time augmentation; transfer: test-time augmentation: each face's "
                    "probabilities averaged with its mirror's.")
    assert "test-time augmentation (scratch none, transfer flip)" in budget_differences(mixed)
    assert "input size (scratch 48px, transfer 96px)" in budget_differences(mixed)
    sentence = setup_sentence(mixed["transfer"])
    assert "upsampled to 96x96 inside the model" in sentence and sentence.endswith("averaged with its mirror's.")
    noted = _with_note(full["content"].tables, PREDICTION_TABLES, note)
    assert all(noted[k].note.endswith(note) for k in PREDICTION_TABLES if k in noted)
    assert "table1" in noted and noted["search"].note == full["content"].tables["search"].note


def test_baselines_sit_beside_accuracy_and_macro_f1_in_tables_and_verdict(full: dict) -> None:
    content = full["content"]
    labels = predictions(final_dirs(full["tmp"], "scratch")[0])[0]
    shares = np.bincount(labels, minlength=K) / len(labels)
    recall = content.tables["recall"]
    assert cell(recall, "accuracy: majority-class rate (baseline)", "scratch") == pytest.approx(shares.max())
    assert cell(recall, "accuracy: stratified-random rate (baseline)", "scratch") == pytest.approx(np.sum(shares ** 2))
    majority_f1 = f1_score(labels, np.full_like(labels, shares.argmax()), labels=list(range(K)), average="macro",
                           zero_division=0)
    assert cell(recall, "macro-F1: majority-class answer (baseline)", "scratch") == pytest.approx(majority_f1)
    assert cell(recall, "macro-F1: stratified-random answers (baseline, expected)", "scratch") == pytest.approx(1 / K)
    baseline = next(s for s in content.verdict if s.startswith("Answering the most common class"))
    assert f"scores {shares.max():.4f} on these test images (the majority-class rate)" in baseline
    assert f"against {majority_f1:.4f} for the majority answer" in baseline
    assert "| test majority-class rate (baseline) |" in full["md"]


def test_each_regimes_runs_are_also_shown_as_one_ensemble_and_the_ensembles_are_paired(full: dict) -> None:
    """The ensemble is the mean of the runs' stored probabilities, recomputed here by hand."""
    content = full["content"]
    ensembles, comparison = content.tables["ensembles"].frame, content.tables["comparison"].frame
    correct = {}
    for regime in ("scratch", "transfer"):
        stored = [predictions(d) for d in final_dirs(full["tmp"], regime)]
        labels = stored[0][0]
        answer = np.mean([probs for _, probs in stored], axis=0).argmax(axis=1)
        correct[regime] = answer == labels
        row = f"{regime} (seeds 0, 1)"
        assert cell(content.tables["ensembles"], row, "accuracy") == pytest.approx(correct[regime].mean())
        mean = np.mean([(probs.argmax(axis=1) == labels).mean() for _, probs in stored])
        assert cell(content.tables["ensembles"], row, "runs' mean accuracy") == pytest.approx(mean)
        assert ensembles.loc[row, "runs"] == 2 and 0 < ensembles.loc[row, "ECE"] < 1 and ensembles.loc[row, "T"] > 0
    paired = comparison.loc["scratch ensemble vs transfer ensemble"]
    assert paired["only scratch right"] == int((correct["scratch"] & ~correct["transfer"]).sum())
    assert paired["only transfer right"] == int((~correct["scratch"] & correct["transfer"]).sum())
    assert "Each regime's runs as one ensemble (test)" in full["md"]


def test_top_runs_are_their_own_ensemble_row_and_not_final_runs(tmp_path: Path, data: Dataset) -> None:
    url = storage(tmp_path)
    scratch = make_study(url, "scratch-t", "scratch", data, tmp_path / "runs", seeds=(0, 1), trials=2)
    make_study(url, "transfer-t", "transfer", data, tmp_path / "runs", seeds=(0, 1), trials=2)
    stored = []
    for trial, seed in ((3, 0), (1, 0), (1, 1)):
        run_dir = write_run(tmp_path / "runs" / "scratch-t" / f"top-trial{trial}-seed{seed}", "scratch", seed + trial,
                            data, 0.7, study="scratch-t")
        manifest = json.loads((run_dir / "manifest.json").read_text())
        write_json(run_dir / "manifest.json", {**manifest, "trial": trial})
        records.add_top_run(scratch, str(run_dir))
        stored.append(predictions(run_dir))
    content = compute(gather(url))
    ensembles = content.tables["ensembles"].frame
    row = "scratch: top 2 trials (3, 1), 3 runs"
    assert list(ensembles.index) == ["scratch (seeds 0, 1)", row, "transfer (seeds 0, 1)"]
    labels = stored[0][0]
    expected = (np.mean([probs for _, probs in stored], axis=0).argmax(axis=1) == labels).mean()
    assert ensembles.loc[row, "accuracy"] == pytest.approx(expected) and ensembles.loc[row, "runs"] == 3
    assert len(content.evidence.regimes["scratch"].runs) == 2  # the final runs alone: seeds, pairs, Tables I-IV
    assert "scratch ensemble vs transfer ensemble" in content.tables["comparison"].frame.index


def test_a_regime_with_one_run_has_no_ensemble(tmp_path: Path, data: Dataset) -> None:
    url = storage(tmp_path)
    make_study(url, "scratch-1", "scratch", data, tmp_path / "runs", seeds=(0,), trials=1)
    make_study(url, "transfer-1", "transfer", data, tmp_path / "runs", seeds=(0, 1), trials=1)
    content = compute(gather(url))
    assert list(content.tables["ensembles"].frame.index) == ["transfer (seeds 0, 1)"]
    assert "ensemble vs" not in " ".join(content.tables["comparison"].frame.index)


def test_table_ii_gives_shares_beside_counts_and_table_iii_leads_with_macro(full: dict) -> None:
    tables = full["content"].tables
    per_seed = [predictions(d) for d in final_dirs(full["tmp"], "transfer")]
    recall_angry = [np.mean(p.argmax(1)[y == 0] == 0) for y, p in per_seed]
    assert cell(tables["table2"], "angry", "transfer: ours, share of class").mean == pytest.approx(np.mean(recall_angry))
    assert list(tables["table3"].frame.index[:2]) == ["macro-average", "micro-average"]
    assert "Macro-average first" in tables["table3"].note


def test_best_parameters_show_what_was_trained_beside_what_was_sampled(tmp_path: Path, data: Dataset) -> None:
    from optuna.distributions import IntDistribution

    from command_line.views import best_table

    url = storage(tmp_path)
    study = make_study(url, "scratch-cap", "scratch", data, tmp_path / "runs", seeds=(0,), trials=1, max_epochs=6)
    run_dir = write_run(tmp_path / "runs" / "best", "scratch", 0, data, 0.9, with_test=False)
    study.add_trial(optuna.trial.create_trial(params={"epochs": 60}, distributions={"epochs": IntDistribution(5, 60)},
                                              value=0.99, user_attrs={"run_dir": str(run_dir), "epochs": 6}))
    search = gather(url, ["scratch-cap"], partial=True).regimes["scratch"].search
    from reports.tables import best_params_table

    table = best_params_table(search)
    assert format_value(cell(table, "epochs", "sampled")) == "60" and format_value(cell(table, "epochs", "trained")) == "6"
    assert "capped every phase at 6 epochs" in table.note
    assert cell(table, "l2", "default from") == "ours (paper silent)"
    from rich.console import Console

    console = Console(width=200, record=True)
    console.print(best_table(optuna.load_study(study_name="scratch-cap", storage=url)))
    shown = console.export_text()
    assert "epochs capped at 6 a phase" in shown and re.search(r"epochs\s+│ 60 \*\s+│ 6 \(cap\)", shown)


def test_a_subset_is_said_in_what_was_evaluated_and_on_the_dataset_card(tmp_path: Path, data: Dataset) -> None:
    url = storage(tmp_path)
    make_study(url, "scratch-sub", "scratch", data, tmp_path / "runs", seeds=(0,), subset=0.25)
    make_study(url, "transfer-sub", "transfer", data, tmp_path / "runs", seeds=(0,), subset=0.25)
    content = compute(gather(url))
    train = int(len(data.train.y) * 0.25)
    assert f"each run trained on a stratified 25% subset of the training split ({train:,} images)" in \
        " ".join(_section(content, "What was evaluated"))
    assert f"The runs trained on a stratified 25% subset of the training split, so \"train\" counts the images they " \
           f"trained on ({train:,})" in " ".join(_section(content, "Dataset card"))


# ------------------------------------------------------------------------ calibration, per class
def val_predictions(run_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    arrays = np.load(run_dir / "predictions.npz")
    return arrays["val_labels"], arrays["val_probs"]


def test_calibration_sits_beside_accuracy_with_the_temperature_fitted_on_validation(full: dict) -> None:
    content = full["content"]
    frame = content.frame.set_index(["regime", "seed"])
    for regime in ("scratch", "transfer"):
        for seed, run_dir in zip((0, 1), final_dirs(full["tmp"], regime)):
            labels, probs = predictions(run_dir)
            row = frame.loc[(regime, seed)]
            assert row["temperature"] == pytest.approx(fit_temperature(*val_predictions(run_dir)))
            assert row["ece"] == pytest.approx(ece(labels, probs)) and row["brier"] == pytest.approx(brier(labels, probs))
            assert row["accuracy_scaled"] == row["accuracy"] == pytest.approx(np.mean(labels == probs.argmax(1)))
            assert row["ece_scaled"] != row["ece"]
    table = content.tables["calibration"]
    for regime in ("scratch", "transfer"):
        assert cell(table, "accuracy", regime) == cell(table, "accuracy after temperature scaling", regime)
        assert cell(table, "ECE (15 bins)", regime).mean == pytest.approx(frame.loc[regime, "ece"].mean())
        assert cell(table, "temperature T (fitted on validation)", regime).n == 2
    assert "fitted on that run's validation predictions" in table.note
    calibration = full["md"].split("## Calibration")[1].split("\n## ")[0]
    assert "| accuracy |" in calibration and "reliability_scratch.png" in calibration
    assert content.calibration["transfer"].before.count.sum() == len(predictions(final_dirs(full["tmp"], "transfer")[0])[0])


def test_per_class_differences_are_computed_on_the_stored_predictions_and_named(full: dict) -> None:
    content = full["content"]
    classes = content.classes
    per_regime = {r: [predictions(d) for d in final_dirs(full["tmp"], r)] for r in ("scratch", "transfer")}
    labels = per_regime["scratch"][0][0]
    expected = compare_classes(labels, {s: p.argmax(1) for s, (_, p) in enumerate(per_regime["scratch"])},
                               {s: p.argmax(1) for s, (_, p) in enumerate(per_regime["transfer"])},
                               "scratch", "transfer", "test", CLASSES)
    assert classes.pairs == expected.pairs
    assert np.allclose(classes.confusion_difference, expected.confusion_difference)
    table = content.tables["classes"]
    assert list(table.frame.index) == list(CLASSES)
    assert cell(table, "happy", "transfer recall") == pytest.approx(
        np.mean([np.mean(p.argmax(1)[y == CLASSES.index("happy")] == CLASSES.index("happy"))
                 for y, p in per_regime["transfer"]]))
    section = full["md"].split("## Differences per class")[1].split("\n## ")[0]
    assert classes_sentence(classes) in section and "confusion_difference.png" in section


def test_the_sentence_names_the_classes_whose_recall_changed() -> None:
    labels = np.repeat(np.arange(K), 40)
    scratch = np.where(np.arange(len(labels)) % 4 == 0, (labels + 1) % K, labels)  # 3 in 4 right everywhere
    transfer = scratch.copy()
    happy = np.flatnonzero(labels == CLASSES.index("happy"))
    scratch[happy] = np.where(np.arange(40) < 8, CLASSES.index("happy"), 0)  # happy: 8 of 40 against 30 of 40
    changed = compare_classes(labels, {0: scratch}, {0: transfer}, "scratch", "transfer", "test", CLASSES)
    assert classes_sentence(changed) == (
        "Recall changed significantly (McNemar's test on each class's images, Holm-corrected across the 7 classes of "
        "each seed pair, at the 0.05 level) for happy (higher with transfer, in 1 of 1 seed pair(s)); no other "
        "class's recall changed significantly.")
    same = compare_classes(labels, {0: scratch}, {0: scratch}, "scratch", "transfer", "test", CLASSES)
    assert classes_sentence(same).startswith("No class's recall differs significantly between transfer and scratch")

