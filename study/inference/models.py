"""MODEL on the command line -> a Keras model that takes 48x48x1 raw pixels and gives 7 probabilities.

MODEL is a run directory, a ``model.keras`` file, or the name of a study: then the study's best
final run, the one of ``study.store.records.final_runs`` with the highest validation accuracy
(validation, not test: choosing by test accuracy would make the test score optimistic).
A model of another shape is refused before any input is read, so no input is half-processed, and
so is one that no training run describes: its run directory (``manifest.json`` and the files beside
it) is what says which classes it gives and which preprocessing it applies to raw pixels; a 48x48
model with 7 outputs and nothing beside it could have been trained on anything.
"""
from __future__ import annotations

from pathlib import Path

from study.model_files import file_format_problem
from study.data import CLASSES, IMAGE_SIZE
from study.errors import ConfigError, ModelError, UserError
from study.runs import Run, not_kept_note
from study.store import NoStore, load_existing, open_storage, records

MODEL_HELP = "pass a run directory, a model.keras file, or a study name with final runs"
EXPECTED_INPUT = (IMAGE_SIZE, IMAGE_SIZE, 1)


def resolve_model_path(model: str, storage: str) -> Path:
    """The ``model.keras`` that MODEL names."""
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "model.keras").is_file():
            raise ModelError(f"run directory {path} holds no model.keras"
                             f"{not_kept_note(path)}: {MODEL_HELP}")
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
    for run_dir in records.final_runs(study):
        try:
            runs.append(Run.load(run_dir))
        except UserError as exc:
            problems.append(str(exc))
    if not runs:
        raise NoFinalRun(study_name, problems[0] if problems else None)
    return max(runs, key=lambda run: run.metrics["val"]["accuracy"]).path


def load_model(path: Path):
    """The Keras model at ``path``, checked for the toolkit's input and output shapes and against the run
    directory that describes it (``check_run``)."""
    import keras  # deferred: TensorFlow, seconds of start-up that resolving a path does not need

    import study.model  # noqa: F401  deferred (TensorFlow): registers the layers model.keras files reference

    problem = file_format_problem(path)  # keras says "File not found" for a file that is not a zip
    if problem:
        raise ModelError(f"cannot load {path} as a Keras model ({problem}): {MODEL_HELP}")
    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as exc:  # a zip, a JSON or a layer error, depending on what the file is
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ModelError(f"cannot load {path} as a Keras model ({reason}): {MODEL_HELP}") from None
    check_shapes(model, path)
    check_run(model, path)
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


class NoManifest(ModelError):
    """MODEL is a Keras file that no training run describes: nothing says what it was trained on."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"model {path} has no manifest.json beside it, so nothing says which classes, input and "
                         "preprocessing it was trained with: use the model.keras of a training run, in its run "
                         "directory")
        self.path = path


def check_run(model, path: Path) -> None:
    """The run directory around ``path`` must describe this model as what inference assumes: raw 0..255
    grayscale faces in (preprocessed inside the model as its backbone needs), the toolkit's classes out."""
    run_dir = path.parent
    if not (run_dir / "manifest.json").is_file():
        raise NoManifest(path)
    if path.name != "model.keras":
        raise ModelError(f"model {path} is not the model.keras that the manifest.json beside it describes: "
                         f"{MODEL_HELP}")
    problems = run_differences(model, Run.load(run_dir))
    if problems:
        raise ModelError(f"model {path} cannot be used ({'; '.join(problems)}): use a model that training "
                         "wrote, in its run directory as training left it")


def run_differences(model, run: Run) -> list[str]:
    """How the run that holds ``model`` differs from what inference assumes, in words; training records
    the classes in predictions.npz and the backbone (hence the preprocessing) in config.json."""
    problems = []
    classes = [str(name) for name in run.predictions.get("class_names", ())]
    if classes != list(CLASSES):
        problems.append(f"it was trained for the classes {', '.join(classes) or '(none recorded)'}, "
                        f"not {', '.join(CLASSES)}")
    backbone = run.config.backbone
    if model.name != f"fer_{backbone}":
        problems.append(f"its run says {backbone} but the model is {model.name}")
    return problems + _preprocessing_problems(model, backbone)


def _preprocessing_problems(model, backbone: str) -> list[str]:
    """Inference hands the model raw pixels: its own first layer must turn them into what its backbone needs."""
    from study.model import GrayscalePreprocessing, backbone_spec  # deferred: TensorFlow

    try:
        expected = backbone_spec(backbone).preprocessing
    except ConfigError:
        return [f"its run names an unknown backbone {backbone!r}"]
    layer = next((layer for layer in model.layers if isinstance(layer, GrayscalePreprocessing)), None)
    if layer is None:
        return ["it has no layer that preprocesses raw 0..255 pixels, so it expects other input than raw faces"]
    if layer.mode != expected:
        return [f"it preprocesses raw pixels as {layer.mode!r}, not as {backbone} needs ({expected!r})"]
    return []


def load(model: str, storage: str):
    """MODEL as typed by the user -> (its path, the checked Keras model)."""
    path = resolve_model_path(model, storage)
    return path, load_model(path)
