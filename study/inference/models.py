"""MODEL on the command line -> a Keras model that takes 48x48x1 raw pixels and gives 7 probabilities.

MODEL is a run directory, a ``model.keras`` file, or the name of a study: then the study's best
final run, the one of ``user_attrs["final_runs"]`` with the highest validation accuracy
(validation, not test: choosing by test accuracy would make the test score optimistic).
A model of another shape is refused before any input is read, so no input is half-processed.
"""
from __future__ import annotations

from pathlib import Path

from study.data import CLASSES, IMAGE_SIZE
from study.errors import ModelError, UserError

MODEL_HELP = "pass a run directory, a model.keras file, or a study name with final runs"
EXPECTED_INPUT = (IMAGE_SIZE, IMAGE_SIZE, 1)


def resolve_model_path(model: str, storage: str) -> Path:
    """The ``model.keras`` that MODEL names."""
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "model.keras").is_file():
            raise ModelError(f"run directory {path} holds no model.keras: {MODEL_HELP}")
        return path / "model.keras"
    if path.is_file():
        return path
    if path.suffix or "/" in model or "\\" in model:
        raise ModelError(f"model {model} does not exist: {MODEL_HELP}")
    return best_final_run(model, storage) / "model.keras"


def best_final_run(study_name: str, storage: str) -> Path:
    """The study's final run with the best validation accuracy."""
    from study.runs import Run
    from study.tuning.storage import load_existing

    _require_sqlite_file(study_name, storage)
    study = load_existing(study_name, storage)
    runs, problems = [], []
    for run_dir in study.user_attrs.get("final_runs", []):
        try:
            runs.append(Run.load(run_dir))
        except UserError as exc:
            problems.append(str(exc))
    if not runs:
        why = f" usable ({problems[0]})" if problems else ""
        raise ModelError(
            f"study {study_name} has no final run{why}: run `python cli.py train --from-study {study_name}` first"
        )
    return max(runs, key=lambda run: run.metrics["val"]["accuracy"]).path


def _require_sqlite_file(name: str, storage: str) -> None:
    """Opening a missing SQLite store would create an empty one; a mistyped MODEL is likelier."""
    prefix = "sqlite:///"
    if storage.startswith(prefix) and storage != f"{prefix}:memory:" and not Path(storage[len(prefix):]).is_file():
        raise ModelError(
            f"{name} is not a run directory or model file, and there is no study store {storage}: {MODEL_HELP}"
        )


def load_model(path: Path):
    """The Keras model at ``path``, checked for the toolkit's input and output shapes."""
    import keras

    import study.model  # noqa: F401 - registers the custom layers that model.keras files reference

    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as exc:  # a zip, a JSON or a layer error, depending on what the file is
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ModelError(f"cannot load {path} as a Keras model ({reason}): {MODEL_HELP}") from None
    check_shapes(model, path)
    return model


def check_shapes(model, path: Path) -> None:
    """One (N, 48, 48, 1) input and one (N, 7) output, or a one-line refusal."""
    inputs, outputs = model.inputs, model.outputs
    if len(inputs) != 1 or tuple(inputs[0].shape[1:]) != EXPECTED_INPUT:
        shapes = ", ".join(str(tuple(t.shape[1:])) for t in inputs)
        raise ModelError(
            f"model {path} takes input {shapes}, not {EXPECTED_INPUT} grayscale faces: "
            "use a model trained by this toolkit"
        )
    if len(outputs) != 1 or outputs[0].shape[-1] != len(CLASSES):
        shapes = ", ".join(str(tuple(t.shape[1:])) for t in outputs)
        raise ModelError(
            f"model {path} outputs {shapes}, not {len(CLASSES)} class probabilities ({', '.join(CLASSES)}): "
            "use a model trained by this toolkit"
        )


def load(model: str, storage: str):
    """MODEL as typed by the user -> (its path, the checked Keras model)."""
    path = resolve_model_path(model, storage)
    return path, load_model(path)
