"""Run directories: plain files, written atomically, read back with clear errors.

A run is built in a hidden staging directory beside its final place and renamed into place only
when every artifact is written, so an interrupted run never leaves a directory that a report or a
tuner would trust. ``Run.load`` checks every file and names the one that is missing or corrupt.

Every file (of a run, and of reports, exports and predictions, which write through ``atomic`` too)
is written to a temporary name beside it and renamed, so it is whole or absent; an ``OSError`` (a
full disk, a read-only one) becomes one ``WriteFailed`` line naming the file, its size and the free
space, never a library's traceback, and the temporary file is removed.
"""
from __future__ import annotations

import io
import json
import math
import os
import shutil
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator

import numpy as np

from study import config as config_mod
from study.config import TrainConfig
from study.errors import UserError, WriteFailed

if TYPE_CHECKING:
    import pandas as pd  # at run time imported where used: pandas alone takes ~0.4 s, and reads never need it

ARTIFACTS = ("config.json", "history.csv", "metrics.json", "predictions.npz", "model.keras", "manifest.json")
MODEL = "model.keras"  # the one artifact a run may go without: a search keeps only its best trials' models


class RunError(UserError):
    """A run directory is missing, incomplete or corrupt."""


def staging_dir(run_dir: Path) -> Path:
    return run_dir.with_name(f".{run_dir.name}.partial")


def start(run_dir: str | Path) -> Path:
    """Create (or clean up a stale) staging directory for ``run_dir``; refuse to overwrite a run."""
    run_dir = Path(run_dir)
    if run_dir.exists():
        raise RunError(f"run directory {run_dir} already exists; choose another «out» or remove it")
    stage = staging_dir(run_dir)
    shutil.rmtree(stage, ignore_errors=True)
    with writing(run_dir):
        stage.mkdir(parents=True)
    return stage


def finish(stage: Path, run_dir: Path) -> Path:
    with writing(run_dir):
        os.replace(stage, run_dir)
    return run_dir


def abandon(stage: Path) -> None:
    shutil.rmtree(stage, ignore_errors=True)


def write_json(path: Path, value: Any) -> None:
    write_text(path, json.dumps(value, indent=2, sort_keys=True, default=_jsonable) + "\n")


def write_csv(path: Path, frame: pd.DataFrame) -> None:
    write_text(path, frame.to_csv(index=False))


def write_npz(path: Path, **arrays: np.ndarray) -> None:
    buffer = io.BytesIO()  # compressed in memory first: its size is then known if the disk is full
    np.savez_compressed(buffer, **arrays)
    write_bytes(path, buffer.getvalue())


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_bytes(path: Path, data: bytes) -> None:
    with atomic(path, needed=len(data)) as tmp:
        tmp.write_bytes(data)


@contextmanager
def atomic(path: Path, needed: int | None = None) -> Iterator[Path]:
    """A temporary path beside ``path`` (same suffix, for writers that read it) for the block to write;
    renamed onto ``path`` when the block succeeds and removed when it fails, so ``path`` is whole or
    untouched. An ``OSError`` becomes ``WriteFailed`` (``needed``: the bytes being written, if known)."""
    path = Path(path)
    tmp = path.with_name(f"{path.stem}.tmp{path.suffix}")
    try:
        with writing(path, needed):
            yield tmp
            os.replace(tmp, path)
    finally:
        with suppress(OSError):
            tmp.unlink(missing_ok=True)


@contextmanager
def writing(path: Path, needed: int | None = None) -> Iterator[None]:
    """An ``OSError`` in the block becomes one ``WriteFailed`` line naming ``path``: a file staged in a
    run's ``.NAME.partial`` folder is named at its final place, the one the user asked for."""
    try:
        yield
    except OSError as exc:
        raise WriteFailed.of(final_path(Path(path)), exc, needed) from exc


def final_path(path: Path) -> Path:
    """Where a file of a staging directory ends up once its run is finished (other paths unchanged)."""
    stage = path.parent.name
    if stage.startswith(".") and stage.endswith(".partial"):
        return path.parent.with_name(stage[1:-len(".partial")]) / path.name
    return path


def variables_bytes(variables: Iterable[Any]) -> int:
    """What ``variables`` (Keras's, anything with a shape and a dtype) take: about the size of a saved
    model, whose file is mostly its weights."""
    return sum(math.prod(v.shape) * np.dtype(str(v.dtype)).itemsize for v in variables)


def _jsonable(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (np.ndarray,)):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


@dataclass(frozen=True)
class Run:
    """A finished run read back from disk."""

    path: Path
    config: TrainConfig
    history: pd.DataFrame
    metrics: dict[str, Any]
    predictions: dict[str, np.ndarray]
    manifest: dict[str, Any]

    @property
    def model_path(self) -> Path:
        """The run's model.keras; a run whose model was not kept says so and why."""
        if model_not_kept(self.path):
            raise RunError(f"run {self.path} holds no model.keras{not_kept_note(self.path)}")
        return self.path / MODEL

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(labels, probabilities) stored for ``name`` ("val" or "test")."""
        if f"{name}_labels" not in self.predictions:
            stored = sorted({k.rsplit("_", 1)[0] for k in self.predictions if k.endswith("_labels")})
            raise RunError(
                f"run {self.path} has no {name} predictions (it has: {', '.join(stored) or 'none'}); "
                + ("test predictions come from final runs, never from search trials" if name == "test" else "")
            )
        return self.predictions[f"{name}_labels"], self.predictions[f"{name}_probs"]

    @classmethod
    def load(cls, path: str | Path) -> "Run":
        import pandas as pd  # deferred: pandas
        path = Path(path)
        if not path.is_dir():
            hint = " (an interrupted run; it was never finished)" if staging_dir(path).exists() else ""
            raise RunError(f"run directory {path} does not exist{hint}")
        optional = {MODEL} if model_not_kept(path) else set()
        missing = [name for name in ARTIFACTS if name not in optional and not (path / name).is_file()]
        if missing:
            raise RunError(f"run {path} is incomplete: missing {', '.join(missing)}")
        return cls(
            path=path,
            config=_read(path / "config.json", lambda p: config_mod.from_dict(json.loads(p.read_text()))),
            history=_read(path / "history.csv", pd.read_csv),
            metrics=_read(path / "metrics.json", lambda p: json.loads(p.read_text())),
            predictions=_read(path / "predictions.npz", lambda p: dict(np.load(p))),
            manifest=_read(path / "manifest.json", lambda p: json.loads(p.read_text())),
        )


def model_not_kept(run_dir: str | Path) -> str | None:
    """Why a finished run holds no model.keras (its manifest says), or None if it was kept."""
    manifest = Path(run_dir) / "manifest.json"
    try:
        model = json.loads(manifest.read_text()).get("model", {})
    except (OSError, ValueError, AttributeError):
        return None  # no readable manifest: ``Run.load`` names what is wrong with it
    return None if not isinstance(model, dict) or model.get("kept", True) else str(model.get("reason", "not kept"))


def not_kept_note(run_dir: str | Path) -> str:
    """' (it was WHY)' for a run whose model was not kept, for a message naming the missing file."""
    reason = model_not_kept(run_dir)
    return f" (it was {reason})" if reason else ""


def drop_model(run_dir: str | Path, reason: str) -> int:
    """Remove a finished run's model.keras, its other files kept; its manifest says why. Returns the
    bytes freed. The manifest is rewritten first, so a run killed in between still loads (its model
    file is then merely left over); removing a model twice (two workers) is harmless."""
    run_dir = Path(run_dir)
    model = run_dir / MODEL
    if model_not_kept(run_dir) is None:
        manifest = json.loads((run_dir / "manifest.json").read_text())
        write_json(run_dir / "manifest.json", {**manifest, "model": {"kept": False, "reason": reason}})
    try:
        size = model.stat().st_size
        model.unlink()
    except FileNotFoundError:
        return 0
    return size


def _read(path: Path, reader):
    try:
        return reader(path)
    except UserError:
        raise
    except Exception as exc:  # any parse failure means the file cannot be trusted
        raise RunError(f"run file {path} is corrupt ({type(exc).__name__}: {str(exc)[:120]})") from None
