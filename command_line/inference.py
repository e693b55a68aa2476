"""The inference commands.

predict  emotions of the faces in images, folders, videos or a camera; or the paper's 3x3 figure, or
         where the model looks (Grad-CAM, ``--saliency``)
export   the model as a SavedModel, TFLite or ONNX file, checked against the Keras model

MODEL is a run directory, a model.keras file, or a study name (its best final run by validation
accuracy). Heavy imports (TensorFlow, OpenCV) happen inside the commands, so ``cli.py --help``
stays fast.
"""
from __future__ import annotations

from typing import Any

import click
from rich.console import Console

from command_line.errors import flag
from command_line.options import storage_option
from command_line.progress import ConsoleEvents
from study.inference.errors import InputError
from study.inference.export import FORMATS, export_named
from study.inference.saliency import predict_saliency

@click.command()
@click.argument("model")
@click.argument("inputs", nargs=-1, metavar="[INPUT]...")
@click.option("--annotate", metavar="OUT",
              help="Write labelled copies: a file for one input file, else a folder (videos become .mp4).")
@click.option("--no-detect", is_flag=True, help="Each image (or frame) is already one cropped face.")
@click.option("--json", "json_path", metavar="FILE", help="Also write every face (and failure) as JSON.")
@click.option("--csv", "csv_path", metavar="FILE", help="Also write every face as CSV.")
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(min=1), help="Faces per model call.")
@click.option("--margin", default=0.2, show_default=True, type=click.FloatRange(0, 1),
              help="Crop margin around a detected face, as a fraction of its size per side.")
@click.option("--smooth", default=5, show_default=True, type=click.IntRange(min=1),
              help="Video: average each tracked face's probabilities over this many frames.")
@click.option("--webcam", type=int, is_flag=False, flag_value=0, default=None, metavar="[N]",
              help="Live from camera N (default 0): a window if a display and a GUI OpenCV exist, else --annotate.")
@click.option("--max-frames", type=click.IntRange(min=1), help="Video/camera: stop after this many frames.")
@click.option("--grid", "grid_dir", metavar="DIR",
              help="Draw the paper's 3x3 figure from DIR (a dataset, DATA/test, or <class>/ folders).")
@click.option("--out", metavar="PNG", help="With --grid: the figure's path (default predictions_grid.png).")
@click.option("--seed", default=0, show_default=True, type=int,
              help="With --grid: which images are drawn (nine, or one per class with --saliency).")
@click.option("--saliency", metavar="PNG",
              help="With --grid: instead of the 3x3 figure, draw where the model looks (Grad-CAM) on one face "
                   "per class of DIR.")
@click.option("--beside", multiple=True, metavar="MODEL",
              help="With --saliency: another model drawn beside MODEL on the same faces (repeatable).")
@storage_option
def predict(model: str, inputs: tuple[str, ...], grid_dir: str | None, out: str | None, seed: int,
            saliency: str | None, beside: tuple[str, ...], **options: Any) -> None:
    """Emotion of every face in images, folders of images, videos or a camera, with a table per face.

    MODEL is a run directory, a model.keras file, or a study name (its best final run).

    \b
    python cli.py predict runs/x photo.jpg faces/ --annotate labelled/ --json faces.json
    python cli.py predict runs/x clip.mp4 --annotate clip-labelled.mp4 --smooth 5
    python cli.py predict runs/x --webcam 0 --annotate session.mp4
    python cli.py predict my-study --grid data/fer2013/test --out fig14.png
    python cli.py predict runs/scratch-run --grid data/fer2013 --saliency where.png --beside runs/transfer-run
    """
    _check_saliency(saliency, beside, grid_dir, out)
    _check_modes(inputs, options, grid_dir, out)
    console, err_console = Console(), Console(stderr=True)
    if saliency is not None:
        drawn = predict_saliency([model, *beside], options["storage"], grid_dir, saliency, seed)
        layers = "; ".join(dict.fromkeys(cam.layer.describe() for cam in drawn.columns.values()))
        console.print(f"saliency: {drawn.path} ({len(drawn.names)} faces, Grad-CAM at {layers})", markup=False,
                      highlight=False, soft_wrap=True)
        return
    if grid_dir is not None:
        from study.inference.grid import predict_grid  # deferred: matplotlib and cv2

        path, cells = predict_grid(model, options["storage"], grid_dir, out or "predictions_grid.png", seed)
        console.print(f"grid: {path} ({sum(c.right for c in cells)} of {len(cells)} right)")
        return
    from command_line.predicting import PredictRequest, run_predict  # deferred: cv2 (OpenCV)

    detect = not options.pop("no_detect")
    run_predict(PredictRequest(model=model, inputs=inputs, detect=detect, **options), console, err_console,
                setting=flag)


def _check_modes(inputs: tuple[str, ...], options: dict[str, Any], grid_dir: str | None, out: str | None) -> None:
    """Exactly one of INPUT..., --webcam and --grid; --json or --csv, not both."""
    modes = [name for name, given in (("INPUT", inputs), ("--webcam", options["webcam"] is not None),
                                      ("--grid", grid_dir is not None)) if given]
    if len(modes) != 1:
        raise InputError(
            "give images, folders or videos (INPUT...), or --webcam [N], or --grid DIR"
            + (f", one of them, not {' and '.join(modes)}" if modes else "")
        )
    if options["json_path"] and options["csv_path"]:
        raise InputError("--json and --csv are alternatives: pass one of them")
    if out is not None and grid_dir is None:
        raise InputError("--out names the --grid figure; for labelled copies of the inputs use --annotate OUT")


def _check_saliency(saliency: str | None, beside: tuple[str, ...], grid_dir: str | None, out: str | None) -> None:
    """--saliency draws from the faces of --grid DIR; --beside only with --saliency."""
    if beside and saliency is None:
        raise InputError("--beside adds a model to the --saliency figure: pass --saliency PNG too")
    if saliency is not None and grid_dir is None:
        raise InputError("--saliency draws one test face per class of a dataset: pass --grid DIR too")
    if saliency is not None and out is not None:
        raise InputError("--saliency PNG names the Grad-CAM figure, which replaces the 3x3 one --out names: pass one")


@click.command("export")
@click.argument("model")
@click.option("--format", "fmt", type=click.Choice(FORMATS), required=True, help="What to export to.")
@click.option("--out", required=True, metavar="PATH", help="A folder for savedmodel, a file for tflite and onnx.")
@click.option("--quantize", is_flag=True, help="tflite: dynamic-range quantization (int8 weights).")
@click.option("--data", "data_path", metavar="PATH",
              help="Check the export on 16 test images of this dataset (default: 16 generated faces).")
@storage_option
def export(model: str, fmt: str, out: str, quantize: bool, data_path: str | None, storage: str) -> None:
    """Export MODEL for serving, then check it against the Keras model on sample faces.

    MODEL is a run directory, a model.keras file, or a study name (its best final run).

    The export takes float32 (N, 48, 48, 1) raw 0..255 grayscale and returns the 7 class
    probabilities (angry, disgust, fear, happy, neutral, sad, surprise).
    """
    console = Console()
    path, check = export_named(model, storage, fmt, out, quantize, data_path, events=ConsoleEvents(console))
    console.print(f"{fmt}{' (quantized)' if quantize else ''} export: {path}\nchecked {check.describe()}",
                  highlight=False)


COMMANDS: list[click.Command] = [predict, export]
