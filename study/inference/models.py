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
from study.runs import Run
from study.store import NoStore, load_existing, open_storage

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


class NoFinalRun(ModelError):
    """MODEL names a study that has no (usable) final run yet."""

    def __init__(self, study: str, problem: str | None = None) -> None:
        why = f" usable ({problem})" if problem else ""
        super().__init__(f"study {study} has no final run{why}")
        self.study = study


def best_final_run(study_name: str, storage: str) -> Path:
    """The study's final run with the best validation accuracy (the store opened read-only)."""
    try:
        store = open_storage(storage, read_only=True)
    except NoStore:  # a mistyped MODEL is likelier than a missing store
        raise ModelError(
            f"{study_name} is not a run directory or model file, and there is no study store {storage}: {MODEL_HELP}"
        ) from None
    study = load_existing(study_name, store)
    runs, problems = [], []
    for run_dir in study.user_attrs.get("final_runs", []):
        try:
            runs.append(Run.load(run_dir))
        except UserError as exc:
            problems.append(str(exc))
    if not runs:
        raise NoFinalRun(study_name, problems[0] if problems else None)
    return max(runs, key=lambda run: run.metrics["val"]["accuracy"]).path


def load_model(path: Path):
    """The Keras model at ``path``, checked for the toolkit's input and output shapes."""
    import keras  # deferred: TensorFlow, seconds of start-up that resolving a path does not need

    import study.model  # noqa: F401  deferred (TensorFlow): registers the layers model.keras files reference

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
