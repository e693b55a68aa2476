"""A full (or read-only) disk while a run, a report, an export or predictions are written (issue 13).

Each write that fails must end in one line naming the file and why (for a full disk: how much it
needed and how much is free), exit status 2, no traceback, and nothing half-written: no run
directory, no ``.partial`` staging folder, no temporary file. Where the machine allows it (root), the
disk is a real tmpfs of 1 MiB filled up; elsewhere a write is patched to fail with ENOSPC.
"""
from __future__ import annotations

import errno
import os
import pathlib
import re
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import keras
import numpy as np
import optuna
import pandas as pd
import pytest
from click.testing import CliRunner

from cli import cli
from study import runs
from study.errors import UserError
from study.inference import output
from study.inference.export import export_model
from study.inference.models import load_model
from study.inference.samples import generated_faces
from tests.test_reports import make_study, storage

TINY = ["--backbone", "mini_xception", "--epochs", "1", "--batch-size", "16",
        "--set", "dense1_units=16", "--set", "dense2_units=16", "--set", "dense3_units=16"]
FULL = r"no space left on device \(needs about [\d.]+ [kMG]?B, [\d.]+ [kMG]?B free\)"
FREE = r"no space left on device \([\d.]+ [kMG]?B free\)"  # a figure's size is known only once it is drawn
FILLER = "filler"


# ------------------------------------------------------------------------------------ helpers
@contextmanager
def _mounted(point: Path, options: str) -> Iterator[Path]:
    """A tmpfs of its own at ``point``, unmounted (lazily: a file may still be open) afterwards."""
    point.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], capture_output=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield point
    finally:
        subprocess.run(["umount", "-l", str(point)], check=False)


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    """A real 1 MiB disk of its own (tmpfs); fill it with ``fill``."""
    with _mounted(tmp_path / "disk", "size=1m") as point:
        yield point


@pytest.fixture
def big_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs: room for a whole report's figures."""
    with _mounted(tmp_path / "big-disk", "size=16m") as point:
        yield point


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    with _mounted(tmp_path / "ro", "ro,size=64k") as point:
        yield point


def fill(disk: Path, leave: int = 0) -> Path:
    """Leave about ``leave`` bytes free on ``disk``."""
    (disk / FILLER).write_bytes(b"\0" * max(shutil.disk_usage(disk).free - leave, 0))
    return disk


def leftovers(root: Path) -> list[str]:
    """Every file (and staging folder) under ``root`` but the filler: a failed write must leave none."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if (p.is_file() and p.name != FILLER) or p.name.endswith(".partial"))


def one_line_error(result) -> str:
    """The single ``error: ...`` line of a command that failed cleanly (exit 2, no traceback), the last
    on stderr (where training's epoch lines go too)."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.output and [line for line in lines if "error" in line] == lines[-1:], lines
    assert lines[-1].startswith("error: cannot write "), lines
    return lines[-1]


def enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def full_for(monkeypatch: pytest.MonkeyPatch, prefix: str) -> None:
    """A disk that is full for files whose name starts with ``prefix`` (``Path.write_text``/``write_bytes``)."""
    def failing(method):
        def write(self, *args, **kwargs):
            if self.name.startswith(prefix):
                enospc()
            return method(self, *args, **kwargs)
        return write

    for name in ("write_text", "write_bytes"):
        monkeypatch.setattr(pathlib.Path, name, failing(getattr(pathlib.Path, name)))


# ------------------------------------------------------------------------------------- a run
def test_training_onto_a_full_disk_says_which_file_and_keeps_nothing(sample_dir: Path, disk: Path) -> None:
    fill(disk, leave=128 * 1024)  # config, history, metrics and predictions fit; model.keras does not
    run_dir = disk / "run"
    result = CliRunner().invoke(cli, ["train", "--data", str(sample_dir), "--out", str(run_dir), *TINY])
    message = one_line_error(result)
    assert re.search(rf"cannot write {re.escape(str(run_dir / 'model.keras'))}: {FULL}; the trained model was not "
                     "kept", message), message
    assert leftovers(disk) == [] and not run_dir.exists()


@pytest.mark.parametrize("file", ["model.keras", "manifest.json"])
def test_a_run_write_that_fails_is_one_line_and_leaves_no_run(sample_dir: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch, file: str) -> None:
    if file == "model.keras":
        monkeypatch.setattr(keras.Model, "save", enospc)
    else:  # the last write, after the model is saved: the staging folder must still go
        full_for(monkeypatch, "manifest")
    run_dir = tmp_path / "runs" / "run"
    result = CliRunner().invoke(cli, ["train", "--data", str(sample_dir), "--out", str(run_dir), *TINY])
    assert re.search(rf"cannot write {re.escape(str(run_dir / file))}: {FULL}", one_line_error(result))
    assert leftovers(tmp_path / "runs") == [] and not run_dir.exists()


@pytest.mark.parametrize("write", [
    lambda path: runs.write_json(path / "metrics.json", {"accuracy": 0.5}),
    lambda path: runs.write_csv(path / "history.csv", pd.DataFrame({"epoch": [1, 2]})),
    lambda path: runs.write_npz(path / "predictions.npz", val_probs=np.ones((50, 7), np.float32)),
], ids=["json", "csv", "npz"])
def test_each_run_file_writer_names_its_file_on_a_full_disk(disk: Path, write) -> None:
    with pytest.raises(UserError, match=rf"^cannot write {re.escape(str(disk))}/\w+\.\w+: {FULL}$"):
        write(fill(disk))
    assert leftovers(disk) == []


def test_a_read_only_disk_gives_the_systems_reason(read_only: Path) -> None:
    with pytest.raises(UserError, match=rf"^cannot write {re.escape(str(read_only / 'config.json'))}: "
                                        "read-only file system$"):
        runs.write_json(read_only / "config.json", {})


def test_a_trial_that_fills_the_disk_fails_with_the_reason_and_the_search_stops(
        sample_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keras.Model, "save", enospc)
    url = storage(tmp_path)
    result = CliRunner().invoke(cli, ["search", "--regime", "scratch", "--trials", "3", "--max-epochs", "1",
                                      "--backbone", "mini_xception", "--data", str(sample_dir), "--storage", url,
                                      "--runs-dir", str(tmp_path / "runs")])
    trial_dir = tmp_path / "runs" / "scratch-optuna" / "trial-0"
    assert re.search(rf"cannot write {re.escape(str(trial_dir / 'model.keras'))}: {FULL}", one_line_error(result))
    [trial] = optuna.load_study(study_name="scratch-optuna", storage=url).trials
    assert trial.state == optuna.trial.TrialState.FAIL
    assert re.search(rf"cannot write .*trial-0/model.keras: {FULL}", trial.user_attrs["error"])
    assert leftovers(tmp_path / "runs") == []


# ------------------------------------------------------------------------------------ a report
@pytest.fixture
def report_store(tmp_path: Path, sample_dir: Path) -> str:
    from study.data import load_dataset

    data = load_dataset(sample_dir)
    url = storage(tmp_path)
    make_study(url, "scratch-optuna", "scratch", data, tmp_path / "runs", seeds=(0,), trials=2)
    make_study(url, "transfer-optuna", "transfer", data, tmp_path / "runs", seeds=(0,), trials=2)
    return url


def report(url: str, out: Path, *args: str):
    return CliRunner().invoke(cli, ["report", "--storage", url, "--out", str(out), *args])


def test_a_report_onto_a_full_disk_names_the_figure_and_leaves_no_partial_file(report_store: str,
                                                                               disk: Path) -> None:
    out = fill(disk, leave=8 * 1024) / "out"
    message = one_line_error(report(report_store, out))
    assert re.search(rf"cannot write {re.escape(str(out / 'figures'))}/\w+\.png: {FREE}", message), message
    assert leftovers(disk) == []


@pytest.mark.slow  # a training test the slow suite (CI) runs: the default one stays within 10 minutes
def test_a_report_pdf_that_no_longer_fits_is_named_and_not_half_written(report_store: str, tmp_path: Path,
                                                                        big_disk: Path) -> None:
    assert report(report_store, tmp_path / "sized", "--format", "md").exit_code == 0
    pages = sum(-(-p.stat().st_size // 4096) * 4096 for p in (tmp_path / "sized").rglob("*") if p.is_file())
    out = fill(big_disk, leave=pages + 8 * 1024) / "out"  # the figures and report.md fit, the PDF does not
    message = one_line_error(report(report_store, out, "--format", "md,pdf"))
    assert re.search(rf"cannot write {re.escape(str(out / 'report.pdf'))}: {FULL}", message), message
    assert not [p.name for p in out.iterdir() if p.name.startswith("report") and p.suffix != ".md"]


@pytest.mark.parametrize("fmt", ["md", "pdf"])
def test_a_report_document_that_cannot_be_written_is_named(report_store: str, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch, fmt: str) -> None:
    full_for(monkeypatch, "report")
    out = tmp_path / "out"
    assert re.search(rf"cannot write {re.escape(str(out / f'report.{fmt}'))}: {FULL}",
                     one_line_error(report(report_store, out, "--format", fmt)))
    assert not [p for p in out.iterdir() if p.is_file()]


# ----------------------------------------------------------------------------------- an export
def test_an_export_onto_a_full_disk_is_one_line_and_removes_what_it_created(tiny_run: Path, disk: Path) -> None:
    out = fill(disk, leave=16 * 1024) / "a" / "b" / "m.tflite"
    result = CliRunner().invoke(cli, ["export", str(tiny_run), "--format", "tflite", "--out", str(out)])
    assert re.search(rf"cannot write {re.escape(str(out))}: {FULL}", one_line_error(result))
    assert leftovers(disk) == [] and not (disk / "a").exists()


def test_a_savedmodel_export_onto_a_full_disk_names_its_folder(tiny_run: Path, disk: Path) -> None:
    out = fill(disk, leave=16 * 1024) / "saved"
    with pytest.raises(UserError, match=rf"^cannot write {re.escape(str(out))}: {FULL}$"):
        export_model(load_model(tiny_run / "model.keras"), "savedmodel", out, generated_faces(4, seed=0))
    assert leftovers(disk) == [] and not out.exists()


def test_an_export_write_that_fails_is_named_without_a_tmpfs(tiny_run: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pathlib.Path, "write_bytes", enospc)
    out = tmp_path / "m.tflite"
    with pytest.raises(UserError, match=rf"^cannot write {re.escape(str(out))}: {FULL}$"):
        export_model(load_model(tiny_run / "model.keras"), "tflite", out, generated_faces(4, seed=0))
    assert list(tmp_path.iterdir()) == []


def test_an_export_says_which_folder_it_created(tiny_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "a" / "b" / "m.tflite"
    result = CliRunner().invoke(cli, ["export", str(tiny_run), "--format", "tflite", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"created the folder {out.parent}" in result.stdout and out.is_file()


# -------------------------------------------------------------------------------- predictions
def test_prediction_files_on_a_full_disk_are_one_line_and_not_half_written(disk: Path) -> None:
    path = fill(disk) / "faces.json"
    with pytest.raises(UserError, match=rf"^cannot write {re.escape(str(path))}: {FULL}$"):
        output.write_json(path, Path("model.keras"), [], [], [])
    assert leftovers(disk) == []


def test_any_other_write_that_fails_is_one_line(monkeypatch):
    """A write that no typed error covers (an --annotate copy, a figure of evaluate) still ends in one line."""
    import command_line.search as search_commands

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", "somewhere/figure.png")

    monkeypatch.setattr(search_commands, "space_table", full)
    result = CliRunner().invoke(cli, ["space", "--regime", "scratch"], catch_exceptions=False)
    assert result.exit_code == 2
    assert result.stderr.strip().startswith("error: cannot write somewhere/figure.png: no space left on device")
    assert "Traceback" not in result.output + result.stderr
