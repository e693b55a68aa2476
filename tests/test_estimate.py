"""search --estimate: the projection's arithmetic, the space's epochs, and a command that writes nothing."""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import cli
from search_spaces import space_for
from study.tuning import estimate as estimate_mod
from study.tuning.estimate import PRUNER_STARTUP, Probe, SearchEstimate, sampled_epochs


def _estimate(pruner: str = "none", default_trial: bool = True) -> SearchEstimate:
    probe = Probe({"frozen": 0.001, "finetune": 0.004}, fixed=10.0, images=1000, seconds=30.0)
    return SearchEstimate(trials=11, train_images=2000, epochs={"frozen": 10.0, "finetune": 20.0},
                          default_epochs={"frozen": 30, "finetune": 20}, probe=probe, pruner=pruner,
                          default_trial=default_trial)


def test_the_projection_adds_each_phases_measured_seconds_per_image_and_the_fixed_cost() -> None:
    e = _estimate()
    sampled = 10.0 + 0.001 * 2000 * 10 + 0.004 * 2000 * 20  # 190 s
    default = 10.0 + 0.001 * 2000 * 30 + 0.004 * 2000 * 20  # 230 s
    assert e.trial_seconds(e.epochs) == sampled
    assert e.unpruned == default + 10 * sampled
    assert e.pruned is None and "pruner" not in e.line()
    assert _estimate(default_trial=False).unpruned == 11 * sampled


def test_a_pruner_is_an_assumption_said_as_one() -> None:
    e = _estimate("median")
    halved = 10.0 + 0.001 * 2000 * 5 + 0.004 * 2000 * 10
    judged = 11 - PRUNER_STARTUP
    assert e.pruned == e.unpruned - judged * 0.5 * (e.trial_seconds(e.epochs) - halved)
    assert "if the median pruner stops half of the trials" in e.line() and "(an assumption)" in e.line()


def test_the_epochs_are_the_spaces_capped() -> None:
    capped = sampled_epochs(space_for("transfer"), {}, max_epochs=3)
    assert set(capped) == {"frozen", "finetune"} and all(n == 3 for n in capped.values())
    free = sampled_epochs(space_for("scratch"), {}, max_epochs=None)
    assert 25 < free["scratch"] < 45  # epochs 10..60 in steps of 5, drawn at random


def test_faces_upsampled_for_the_backbone_are_counted_as_their_area_and_said() -> None:
    from study.data import Dataset, LoadReport, Split
    import numpy as np

    split = Split(np.zeros((10, 48, 48, 1), np.uint8), np.arange(10) % 7)
    data = Dataset(split, split, split, "f", "memory", "arrays", True, LoadReport(0, 0, ()))
    probe = Probe({"frozen": 0.001, "finetune": 0.004}, fixed=10.0, images=1000, seconds=30.0)
    plan = estimate_mod.Plan(space_for("transfer"), {"backbone": "mini_xception", "weights": "x.h5"}, data, trials=5,
                             max_epochs=2, pruner="none", default_trial=True)
    e = plan.project(probe)
    assert e.sizes == (48, 72, 96)
    configs = estimate_mod.sampled_configs(space_for("transfer"), plan.base, 2)
    expected = np.mean([(c.input_size / 48) ** 2 for c in configs]) * 2  # every phase capped at 2 epochs
    assert e.work["finetune"] == pytest.approx(expected) and e.work["frozen"] == pytest.approx(expected)
    assert 2.0 < e.work["finetune"] < 4 * 2.0 and e.trial_seconds(e.work) > e.trial_seconds(e.epochs)
    assert "upsampled to 48x48, 72x72, 96x96" in e.line() and "an assumption" in e.line()
    pinned = estimate_mod.Plan(space_for("transfer"), {**plan.base, "input_size": 48}, data, trials=5, max_epochs=2,
                               pruner="none", default_trial=True).project(probe)
    assert pinned.work is None and "upsampled" not in pinned.line()


def test_estimate_probes_and_writes_no_study(sample_dir: Path, tmp_path: Path) -> None:
    storage = tmp_path / "s.db"
    result = CliRunner().invoke(cli, ["search", "--regime", "scratch", "--trials", "4", "--data", str(sample_dir),
                                      "--backbone", "mini_xception", "--max-epochs", "1", "--estimate",
                                      "--storage", f"sqlite:///{storage}", "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("estimate: 4 trials on ") and "a trial trains on average scratch 1.0 epochs" in \
        result.output and "median pruner" in result.output
    assert not storage.exists() and not (tmp_path / "runs").exists()


def _search(sample_dir: Path, tmp_path: Path, study: str, *extra: str) -> str:
    result = CliRunner().invoke(cli, ["search", "--regime", "scratch", "--trials", "2", "--data", str(sample_dir),
                                      "--backbone", "mini_xception", "--max-epochs", "2", "--pruner", "none",
                                      "--study", study, "--storage", f"sqlite:///{tmp_path / 's.db'}",
                                      "--runs-dir", str(tmp_path / "runs"), *extra])
    assert result.exit_code == 0, result.output
    return result.output


def test_every_search_says_its_estimate_from_its_first_trial_then_from_the_kept_probe(sample_dir: Path,
                                                                                     tmp_path: Path) -> None:
    first = _search(sample_dir, tmp_path, "a")
    assert first.startswith("estimate: this machine has not measured mini_xception scratch"), first
    assert "an estimate-only search probes first" in first
    said = [line for line in first.splitlines() if line.startswith("estimate: 2 trials on ")]
    assert len(said) == 1 and "(measured by trial 0 of study a)" in said[0], first
    assert first.index("trial 0 epoch 2/2") < first.index(said[0]) < first.index("trial 1 epoch 1/2"), first
    assert len(list(estimate_mod.probes_dir().glob("*.json"))) == 1

    second = _search(sample_dir, tmp_path, "b")  # same settings on the same machine: said before any trial
    assert second.startswith("estimate: 2 trials on ") and "(measured by trial 0 of study a, kept from " in \
        second.splitlines()[0], second
    assert second.count("estimate:") == 1

    other = _search(sample_dir, tmp_path, "c", "--set", "batch_size=32")  # a step of another cost: not reused
    assert other.startswith("estimate: this machine has not measured"), other


def test_a_kept_probe_is_keyed_by_what_a_step_costs_and_a_damaged_one_is_none(sample_dir: Path) -> None:
    from study.config import TrainConfig
    from study.data import load_dataset

    data = load_dataset(sample_dir)
    config = TrainConfig(backbone="mini_xception")
    probe = Probe({"scratch": 0.002}, fixed=3.0, images=100, seconds=9.0, shared=0.0, source="a test")
    estimate_mod.remember(config, data, probe)
    kept = estimate_mod.recall(config, data)
    assert kept is not None and kept.per_image == {"scratch": 0.002} and kept.fixed == 3.0
    assert kept.source.startswith("a test, kept from ")
    assert estimate_mod.recall(config.replace(learning_rate=0.1), data) is not None  # a rate costs nothing more
    for costlier in (config.replace(batch_size=32), config.replace(backbone="densenet121"),
                     config.replace(rotation=0.0, zoom=0.0, flip=False), config.replace(precision="mixed_bfloat16")):
        assert estimate_mod.recall(costlier, data) is None
    path = next(estimate_mod.probes_dir().glob("*.json"))
    path.write_text("{not json")
    assert estimate_mod.recall(config, data) is None


def test_features_computed_once_are_counted_once() -> None:
    probe = Probe({"frozen": 0.001, "finetune": 0.004}, fixed=10.0, images=1000, seconds=30.0, shared=5.0)
    e = SearchEstimate(trials=11, train_images=2000, epochs={"frozen": 10.0, "finetune": 20.0},
                       default_epochs={"frozen": 30, "finetune": 20}, probe=probe, pruner="none", default_trial=False)
    assert e.shared == 10.0  # 5 s for 1000 images, 2000 here
    assert e.unpruned == 10.0 + 11 * e.trial_seconds(e.epochs)
