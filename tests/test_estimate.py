"""search --estimate: the projection's arithmetic, the space's epochs, and a command that writes nothing."""
from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from cli import cli
from search_spaces import space_for
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


def test_estimate_probes_and_writes_no_study(sample_dir: Path, tmp_path: Path) -> None:
    storage = tmp_path / "s.db"
    result = CliRunner().invoke(cli, ["search", "--regime", "scratch", "--trials", "4", "--data", str(sample_dir),
                                      "--backbone", "mini_xception", "--max-epochs", "1", "--estimate",
                                      "--storage", f"sqlite:///{storage}", "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("estimate: 4 trials on ") and "a trial trains on average scratch 1.0 epochs" in \
        result.output and "median pruner" in result.output
    assert not storage.exists() and not (tmp_path / "runs").exists()
