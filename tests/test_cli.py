"""cli.py as a user drives it: train then evaluate end to end, and every bad input of issue 2.

Each bad input must end with one line naming the problem, exit status 2, no traceback, and no
run directory left behind.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from cli import cli

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--backbone", "mini_xception", "--epochs", "1", "--batch-size", "16",
        "--set", "dense1_units=16", "--set", "dense2_units=16", "--set", "dense3_units=16"]


def _faces(folder: Path, classes: dict[str, int]) -> None:
    rng = np.random.default_rng(0)
    for name, count in classes.items():
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            Image.fromarray(rng.integers(0, 255, (48, 48), dtype=np.uint8)).save(folder / name / f"{i}.png")


def _dataset(tmp_path: Path, **extra: int) -> Path:
    root = tmp_path / "data"
    classes = {"angry": 4, "happy": 4, "sad": 4, **extra}
    _faces(root / "train", classes)
    _faces(root / "test", {"angry": 2, "happy": 2, "sad": 2})
    return root


def _fails(args: list[str], *fragments: str) -> str:
    result = CliRunner().invoke(cli, args)
    message = result.stderr.strip()
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output and len(message.splitlines()) == 1, message
    for fragment in fragments:
        assert fragment in message, message
    return message


@pytest.mark.slow  # a training test the slow suite (CI) runs: the default one stays within 10 minutes
def test_train_then_evaluate_end_to_end(sample_dir: Path, tmp_path: Path):
    run_dir = tmp_path / "run"
    env_python = [sys.executable, str(ROOT / "cli.py")]
    trained = subprocess.run([*env_python, "train", "--data", str(sample_dir), "--out", str(run_dir), *TINY],
                             capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert "test accuracy" in trained.stdout and f"evaluate it with: python cli.py evaluate {run_dir}" in trained.stdout
    evaluated = subprocess.run([*env_python, "evaluate", str(run_dir)], capture_output=True, text=True,
                               cwd=tmp_path, timeout=300)
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    assert "ROC AUC micro / macro" in evaluated.stdout and "(test," in evaluated.stdout
    figures = sorted(p.name for p in (run_dir / "figures").iterdir())
    assert figures == ["confusion_test.png", "history.png", "pr_test.png", "roc_test.png"]


def test_data_describe_writes_the_chart(sample_dir: Path, tmp_path: Path):
    result = CliRunner().invoke(cli, ["data", "describe", str(sample_dir), "--out", str(tmp_path / "c.png")])
    assert result.exit_code == 0, result.output
    assert "SYNTHETIC" in result.output and "disgust" in result.output
    assert (tmp_path / "c.png").stat().st_size > 10_000


def test_missing_data_folder(tmp_path: Path):
    _fails(["train", "--data", str(tmp_path / "nowhere"), *TINY], "nowhere")


def test_empty_class_folder(tmp_path: Path):
    root = _dataset(tmp_path)
    (root / "train" / "fear").mkdir()
    _fails(["train", "--data", str(root), "--out", str(tmp_path / "r"), *TINY], "fear")
    assert not (tmp_path / "r").exists()


def test_unknown_class_folder(tmp_path: Path):
    root = _dataset(tmp_path, bored=2)
    _fails(["train", "--data", str(root), *TINY], "bored")


def test_corrupt_image_is_fatal_with_strict(tmp_path: Path):
    root = _dataset(tmp_path)
    (root / "train" / "sad" / "broken.png").write_bytes(b"not a png")
    _fails(["train", "--data", str(root), "--strict", *TINY], "broken.png")


def test_csv_with_wrong_columns(tmp_path: Path):
    csv = tmp_path / "fer2013.csv"
    csv.write_text("label,image\n0,1 2 3\n")
    _fails(["train", "--data", str(csv), *TINY], "column")


def test_csv_with_a_wrong_pixel_count_is_fatal_with_strict(tmp_path: Path):
    csv = tmp_path / "fer2013.csv"
    good = " ".join(["7"] * 48 * 48)
    rows = [f"{label},{good},Training" for label in range(7)] + [f"{label},{good},PublicTest" for label in range(7)]
    csv.write_text("emotion,pixels,Usage\n" + "\n".join(rows + ["3,1 2 3,Training"]) + "\n")
    _fails(["train", "--data", str(csv), "--strict", *TINY], "pixel")


def test_unknown_backbone(sample_dir: Path):
    _fails(["train", "--data", str(sample_dir), *TINY, "--backbone", "resnet9000"], "resnet9000", "densenet169")


def test_unknown_config_key(sample_dir: Path):
    _fails(["train", "--data", str(sample_dir), *TINY, "--set", "lerning_rate=0.1"], "lerning_rate")


def test_weights_file_for_another_backbone(sample_dir: Path, tmp_path: Path):
    from study.model import build_backbone

    weights = tmp_path / "mini.weights.h5"
    build_backbone("mini_xception", "none", 48).save_weights(weights)
    _fails(["train", "--regime", "transfer", "--data", str(sample_dir), *TINY, "--frozen-epochs", "1",
            "--backbone", "mobilenetv3small", "--weights", str(weights), "--out", str(tmp_path / "r")], "mini.weights.h5")
    assert not (tmp_path / "r").exists()


@pytest.mark.slow  # a training test the slow suite (CI) runs: the default one stays within 10 minutes
def test_nan_loss(sample_dir: Path, tmp_path: Path):
    _fails(["train", "--data", str(sample_dir), *TINY, "--set", "learning_rate=1e6", "--set", "l2=10",
            "--out", str(tmp_path / "r")], "loss became", "lower the learning rate")
    assert not (tmp_path / "r").exists()


def test_evaluate_a_missing_run(tmp_path: Path):
    _fails(["evaluate", str(tmp_path / "no-run")], "does not exist")
