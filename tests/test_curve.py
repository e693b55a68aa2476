"""Data-efficiency curves (cli.py curve): nested fractions, a pool without the pretraining faces, resuming,
and the report's curve (its difference, and the smallest fraction where it stops being significant)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import pytest
from click.testing import CliRunner

from cli import cli
from reports.build import build_report
from reports.curve import gap_sentence, gather_curves, source_sentence
from study.data import CLASSES, Dataset, load_dataset, stratified_share
from study.experiments import curve as curve_mod
from tests.test_reports import make_study, write_run

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--backbone", "mini_xception", "--epochs", "1", "--frozen-epochs", "1", "--batch-size", "16",
        "--set", "dense1_units=16", "--set", "dense2_units=16", "--set", "dense3_units=16"]


def test_fractions_are_nested_stratified_and_differ_by_seed() -> None:
    y = np.repeat(np.arange(len(CLASSES)), [400, 40, 300, 700, 500, 450, 350])
    for seed in (0, 1):
        shares = {f: set(stratified_share(y, f, [seed, 12]).tolist()) for f in (0.02, 0.05, 0.1, 0.25, 1.0)}
        assert shares[0.02] < shares[0.05] < shares[0.1] < shares[0.25] < shares[1.0] == set(range(len(y)))
        counts = np.bincount(y[sorted(shares[0.1])], minlength=len(CLASSES))
        assert counts.tolist() == [40, 4, 30, 70, 50, 45, 35]  # a tenth of every class
        assert np.bincount(y[sorted(shares[0.02])], minlength=len(CLASSES))[1] == 1  # never an empty class
    assert stratified_share(y, 0.1, [0, 12]).tolist() != stratified_share(y, 0.1, [1, 12]).tolist()


def test_the_pool_never_holds_a_pretraining_face(sample_dir: Path) -> None:
    plan = curve_mod.plan_curve(curve_mod.CurveRequest("c", str(sample_dir), (0.5, 1.0), 2, ("scratch", "transfer"),
                                                       {"backbone": "mini_xception"}, pretrain_fraction=0.4,
                                                       runs_dir="runs"))
    data = load_dataset(sample_dir)
    pool, held = curve_mod._pool(plan, data), curve_mod._pretrain_indices(plan, data)
    assert not set(pool) & set(held) and len(pool) + len(held) == len(data.train.y)
    assert abs(len(held) / len(data.train.y) - 0.4) < 0.05
    assert plan.configs["transfer"]["weights"] == str(Path("runs") / "c" / "pretrain")
    assert plan.pretrain_config["regime"] == "scratch" and plan.pretrain_config["weights"] == "none"
    assert plan.pretrain_config["backbone"] == "mini_xception"
    assert all(c["stall_action"] == "warn" for c in plan.configs.values())  # a curve run trains its whole budget
    assert plan.seeds == (0, 1)


@pytest.mark.parametrize("args, fragment", [
    (["--fractions", "0,0.5"], "--fractions must be in (0, 1]"),
    (["--fractions", "a,b"], "is not a comma-separated list"),
    (["--set", "subset=0.5"], "a curve sets --subset itself"),
    (["--regimes", "scratch", "--pretrain-fraction", "0.5"], "the curve needs the transfer regime"),
    (["--regimes", "scratch,fancy"], "--regimes takes"),
])
def test_bad_settings_are_one_line_and_train_nothing(sample_dir: Path, tmp_path: Path, args: list[str],
                                                     fragment: str) -> None:
    result = CliRunner().invoke(cli, ["curve", "--data", str(sample_dir), "--storage",
                                      f"sqlite:///{tmp_path / 's.db'}", "--runs", str(tmp_path / "runs"), *args])
    assert result.exit_code == 2, result.output
    assert fragment in result.output, result.output
    assert not (tmp_path / "runs").exists()


def _curve(sample_dir: Path, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), "curve", "--data", str(sample_dir), "--fractions",
                           "0.5,1", "--seeds", "1", "--pretrain-fraction", "0.5", "--storage",
                           f"sqlite:///{tmp_path / 's.db'}", "--runs", str(tmp_path / "runs"), *TINY, *extra],
                          capture_output=True, text=True, cwd=tmp_path, timeout=900)


def test_a_curve_trains_every_run_resumes_and_is_reported(sample_dir: Path, tmp_path: Path) -> None:
    done = _curve(sample_dir, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "4 runs trained now, 0 found done" in done.stdout
    study = optuna.load_study(study_name="curve", storage=f"sqlite:///{tmp_path / 's.db'}")
    runs = curve_mod.curve_runs(study)
    assert sorted((r.regime, r.fraction) for r in runs) == [("scratch", 0.5), ("scratch", 1.0), ("transfer", 0.5),
                                                            ("transfer", 1.0)]
    images = {(r.regime, r.fraction): r.images for r in runs}
    assert images[("scratch", 0.5)] == images[("transfer", 0.5)] < images[("scratch", 1.0)]
    assert study.user_attrs["curve_pretrain"] == str(tmp_path / "runs" / "curve" / "pretrain")

    again = _curve(sample_dir, tmp_path)
    assert again.returncode == 0 and "0 runs trained now, 4 found done" in again.stdout, again.stderr[-2000:]
    other = _curve(sample_dir, tmp_path, "--seeds", "2")
    assert other.returncode == 2 and "curve curve was started with other settings (seeds" in other.stderr

    report = CliRunner().invoke(cli, ["report", "--storage", f"sqlite:///{tmp_path / 's.db'}", "--out",
                                      str(tmp_path / "out")])
    assert report.exit_code == 0, report.output
    text = (tmp_path / "out" / "report.md").read_text()
    assert "What transfer buys as training data grows" in text and "SYNTHETIC SAMPLE" in text
    assert "Transfer source: NOT ImageNet, but a mini_xception trained from scratch" in text
    assert (tmp_path / "out" / "figures" / "curve_curve.png").stat().st_size > 10_000


@pytest.mark.slow  # trains: the kill loop of the slow suite
def test_a_curve_killed_mid_run_resumes_where_it_stopped(sample_dir: Path, tmp_path: Path) -> None:
    command = [sys.executable, str(ROOT / "cli.py"), "curve", "--data", str(sample_dir), "--fractions", "0.5,1",
               "--seeds", "1", "--pretrain-fraction", "0.5", "--storage", f"sqlite:///{tmp_path / 's.db'}",
               "--runs", str(tmp_path / "runs"), *TINY]
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    folder = tmp_path / "runs" / "curve"
    deadline = time.monotonic() + 600  # a hang guard: an idle machine gets there in about 30 s
    while time.monotonic() < deadline and not (folder / ".scratch-f1-seed0.partial").exists():
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert (folder / ".scratch-f1-seed0.partial").exists() and not (folder / "scratch-f1-seed0").exists()
    resumed = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "2 runs trained now, 2 found done" in resumed.stdout, resumed.stdout[-2000:]
    assert not list(folder.glob(".*.partial"))
    study = optuna.load_study(study_name="curve", storage=f"sqlite:///{tmp_path / 's.db'}")
    assert len(curve_mod.curve_runs(study)) == 4


# ------------------------------------------------------------------------------ the report's curve
def _fake_curve(url: str, runs: Path, data: Dataset, accuracy: dict[tuple[str, float], float],
                seeds: tuple[int, ...] = (0, 1, 2)) -> None:
    """A curve study over runs whose test accuracy is about ``accuracy[(regime, fraction)]``."""
    fractions = sorted({f for _, f in accuracy})
    plan = curve_mod.CurvePlan("fake", data.source, tuple(fractions), seeds,
                               {r: {"regime": r, "backbone": "mini_xception", "epochs": 20, "frozen_epochs": 30,
                                    "weights": "none" if r == "scratch" else "imagenet"} for r in ("scratch", "transfer")},
                               {"scratch": "defaults", "transfer": "defaults"}, str(runs))
    study = optuna.create_study(storage=url, study_name="fake")
    study.set_user_attr("curve", plan.attrs())
    study.set_user_attr("kind", "curve")
    records = []
    for (regime, fraction), acc in accuracy.items():
        for seed in seeds:
            run_dir = write_run(runs / f"{regime}-f{fraction:g}-seed{seed}", regime, seed, data, acc,
                                weights="" if regime == "scratch" else "imagenet")
            records.append({"regime": regime, "fraction": fraction, "seed": seed, "run_dir": str(run_dir),
                            "images": int(1000 * fraction)})
    study.set_user_attr("curve_runs", records)


def test_the_report_says_where_transfers_advantage_stops_being_significant(sample_dir: Path, tmp_path: Path) -> None:
    data = load_dataset(sample_dir)
    url = f"sqlite:///{tmp_path / 's.db'}"
    _fake_curve(url, tmp_path / "runs", data, {("scratch", 0.1): 0.3, ("transfer", 0.1): 0.95,
                                               ("scratch", 0.5): 0.9, ("transfer", 0.5): 0.9})
    (curve,) = gather_curves(url)
    small, large = curve.gaps
    assert small.significant and small.accuracy.difference > 0.3 and small.images == 100
    assert not large.significant
    sentence = gap_sentence(curve)
    assert "At the smallest fraction (0.1 of the pool, 100 training images), transfer minus scratch" in sentence
    assert "The smallest fraction at which the difference is no longer significant is 0.5 (500 images" in sentence
    point = curve.point("transfer", 0.1)
    assert point.runs == 3 and point.accuracy.spread == "t" and point.accuracy.mean > 0.8

    # beside the searches, the full report carries the curve as its first section after the verdict
    make_study(url, "scratch-optuna", "scratch", data, tmp_path / "runs", accuracy=0.6)
    make_study(url, "transfer-optuna", "transfer", data, tmp_path / "runs", accuracy=0.8)
    built = build_report(url, out=tmp_path / "out")
    text = built.documents["md"].read_text()
    assert text.index("## Verdict") < text.index("## What transfer buys as training data grows") < text.index(
        "## What was evaluated")
    assert "curve:fake" in built.figures


def test_a_curve_that_did_not_learn_says_so(sample_dir: Path, tmp_path: Path) -> None:
    data = load_dataset(sample_dir)
    url = f"sqlite:///{tmp_path / 's.db'}"
    _fake_curve(url, tmp_path / "runs", data, {("scratch", 0.1): None, ("transfer", 0.1): 0.9}, seeds=(0, 1))
    (curve,) = gather_curves(url)
    assert curve.point("scratch", 0.1).learned == 0 and curve.point("transfer", 0.1).accuracy.spread == "range"
    assert "No run beat the majority-class rate at: scratch 0.1" in gap_sentence(curve)


def test_a_failed_run_is_named_the_curve_goes_on_and_the_next_call_retries_it(sample_dir: Path, tmp_path: Path,
                                                                              monkeypatch) -> None:
    from study.errors import TrialFailed

    data = load_dataset(sample_dir)
    url = f"sqlite:///{tmp_path / 's.db'}"
    plan = curve_mod.plan_curve(curve_mod.CurveRequest("c", str(sample_dir), (0.5,), 1, ("scratch", "transfer"),
                                                       {"backbone": "mini_xception"}, runs_dir=tmp_path / "runs"))

    def fake_train(config, dataset, run_dir, **kwargs):
        if "transfer" in Path(run_dir).name:
            raise TrialFailed("the training loss became nan in epoch 1 (finetune phase)")
        write_run(Path(run_dir), "scratch", config.seed, data, 0.6)

    monkeypatch.setattr(curve_mod, "train", fake_train)
    done = curve_mod.run_curve(plan, url, data=data)
    assert [r.regime for r in done.trained] == ["scratch"] and [r.regime for r, _ in done.failed] == ["transfer"]
    study = optuna.load_study(study_name="c", storage=url)
    assert list(study.user_attrs["curve_failures"].values()) == ["the training loss became nan in epoch 1 (finetune "
                                                                 "phase)"]
    assert [r.regime for r in curve_mod.curve_runs(study)] == ["scratch"]
    (curve,) = gather_curves(url)  # the report names the missing point and why
    assert "FAILED: " in source_sentence(curve) and "loss became nan" in source_sentence(curve) and curve.missing == 1

    monkeypatch.setattr(curve_mod, "train", lambda config, dataset, run_dir, **kwargs: write_run(
        Path(run_dir), "scratch", config.seed, data, 0.6))
    again = curve_mod.run_curve(plan, url, data=data)  # the failed run is retried, and then done
    assert [r.regime for r in again.trained] == ["transfer"] and [r.regime for r in again.found] == ["scratch"]
    assert optuna.load_study(study_name="c", storage=url).user_attrs["curve_failures"] == {}
