"""Where a model looks: Grad-CAM (Selvaraju et al. 2017) with the model's own gradients, and the
figure of one test face per class, the models side by side.

Grad-CAM weighs each channel of a convolutional feature map by the mean gradient of the class score
(the logit, before the softmax, as in the paper and Keras's Grad-CAM example, since a saturated
softmax has no gradient) over that map, sums the weighted channels, keeps the positive part,
upsamples it bilinearly to the input's 48x48 and scales each map to [0, 1].

Which feature map (``target_layer``): the deepest layer output (descending one level into a nested
backbone, as ``study.model`` builds it) that is a 4-D map of at least ``MIN_SIDE`` x ``MIN_SIDE``
positions. Usually that is the last convolutional map before the head's global pooling
(mini_xception: ``exit_relu``, 3x3x256 at 48x48 input). DenseNet at 48x48 ends in a 1x1 map, which
cannot say where anything is, so there the last 3x3 map is used instead, the output of the last
transition's convolution (``pool4_conv``, before its pooling), one dense block short of the output.

Importing this module is cheap: TensorFlow, Keras and matplotlib load when a function needs them,
so the report can import it at start-up.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

from study.data import CLASSES
from study.errors import ModelError
from study.model_files import file_format_problem
from study.runs import RunError, not_kept_note

if TYPE_CHECKING:
    from matplotlib.figure import Figure

MIN_SIDE = 3  # a 2x2 map says only which quadrant, a 1x1 map nothing
BATCH = 32
OVERLAY_ALPHA = 0.45  # of the heat map over the face: both stay visible
SALIENCY_SEED = 0  # which face of each class the figure shows; the same faces for every model


@dataclass(frozen=True)
class TargetLayer:
    """A feature map Grad-CAM can use: ``name`` inside ``parent`` (a nested model's name), or at the top."""

    name: str
    parent: str | None
    shape: tuple[int, int, int]  # height, width, channels
    last_map: tuple[int, int] | None = None  # height, width of the model's deepest map, when that was too small

    def describe(self) -> str:
        where = f" of {self.parent}" if self.parent else ""
        return f"{self.name}{where} ({'x'.join(str(s) for s in self.shape)})"


@dataclass(frozen=True, eq=False)
class GradCam:
    """``maps`` (N, H, W) in [0, 1], ``probs`` (N, classes), the class each map explains, and the layer."""

    maps: np.ndarray
    probs: np.ndarray
    classes: np.ndarray
    layer: TargetLayer


# ------------------------------------------------------------------------------- the computation
def _maps_of(model) -> list[tuple[object | None, object, tuple]]:
    """(parent model or None, layer, output shape) of every layer with a 4-D output, in graph order."""
    import keras  # deferred: TensorFlow

    found = []
    for outer in model.layers:
        inner = outer.layers if isinstance(outer, keras.Model) else [outer]
        for layer in inner:
            if isinstance(layer, keras.layers.InputLayer):
                continue
            try:
                shape = tuple(layer.output.shape)
            except (AttributeError, ValueError):  # a layer called more than once has no single output
                continue
            if len(shape) == 4:
                found.append((outer if outer is not layer else None, layer, shape))
    return found


def target_layer(model, layer: str | None = None) -> TargetLayer:
    """The feature map Grad-CAM uses (see the module's docstring), or the one named ``layer``."""
    candidates = _maps_of(model)
    if layer is not None:
        named = [c for c in candidates if c[1].name == layer]
        if not named:
            raise ModelError(f"model {model.name!r} has no layer {layer!r} with a 4-D feature map")
        parent, chosen, shape = named[-1]
    else:
        usable = [c for c in candidates if None not in c[2][1:3] and min(c[2][1:3]) >= MIN_SIDE]
        if not usable:
            raise ModelError(f"model {model.name!r} has no feature map of at least {MIN_SIDE}x{MIN_SIDE} "
                             "positions for Grad-CAM")
        parent, chosen, shape = usable[-1]
        last = candidates[-1][2][1:3]
        if usable[-1] is not candidates[-1] and tuple(last) != tuple(shape[1:3]):
            return TargetLayer(chosen.name, parent.name if parent is not None else None,
                               tuple(int(s) for s in shape[1:]), tuple(int(s) for s in last))
    return TargetLayer(chosen.name, parent.name if parent is not None else None, tuple(int(s) for s in shape[1:]))


def _is_softmax_dense(layer) -> bool:
    import keras  # deferred: TensorFlow

    return isinstance(layer, keras.layers.Dense) and getattr(layer.activation, "__name__", "") == "softmax"


def grad_cam_of(model, images: np.ndarray, class_index: int | Sequence[int] | None = None,
                layer: str | None = None) -> GradCam:
    """Grad-CAM of ``model`` on ``images`` ((N, H, W) or (N, H, W, 1) raw pixels, as the model takes
    them): for ``class_index`` (one class for all, one per image, or None: each image's predicted
    class), at ``target_layer(model, layer)``.

    The model is run layer by layer (descending into the nested model that holds the feature map),
    which is what a model of ``study.model`` is: a chain of layers around one nested backbone. The
    probabilities of that run are checked against the model's own, so a model of another shape is
    refused rather than explained wrongly.
    """
    target = target_layer(model, layer)
    x = np.asarray(images, dtype=np.float32).reshape(-1, *model.inputs[0].shape[1:])
    if isinstance(class_index, (int, np.integer)):
        wanted = np.full(len(x), int(class_index))
    elif class_index is not None:
        wanted = np.asarray(class_index, dtype=np.int64).reshape(-1)
        if len(wanted) != len(x):
            raise ModelError(f"{len(wanted)} class indices for {len(x)} images")
    else:
        wanted = None
    maps, probs, classes = [], [], []
    for start in range(0, len(x), BATCH):
        chunk = x[start:start + BATCH]
        m, p, c = _grad_cam_batch(model, target, chunk, None if wanted is None else wanted[start:start + BATCH])
        if not np.allclose(p, np.asarray(model.predict_on_batch(chunk), dtype=np.float32), atol=1e-3):
            raise ModelError(f"model {model.name!r} is not a chain of layers around one nested model; Grad-CAM "
                             "here explains the models this toolkit builds")
        maps.append(m), probs.append(p), classes.append(c)
    if not maps:
        height, width = model.inputs[0].shape[1:3]
        return GradCam(np.zeros((0, height, width), np.float32), np.zeros((0, model.outputs[0].shape[-1]), np.float32),
                       np.zeros(0, np.int64), target)
    return GradCam(np.concatenate(maps), np.concatenate(probs), np.concatenate(classes), target)


def grad_cam(model, images: np.ndarray, class_index: int | Sequence[int] | None = None,
             layer: str | None = None) -> np.ndarray:
    """(N, H, W) Grad-CAM heat maps in [0, 1] (see ``grad_cam_of``)."""
    return grad_cam_of(model, images, class_index, layer).maps


def _grad_cam_batch(model, target: TargetLayer, x: np.ndarray, wanted: np.ndarray | None):
    """One batch's maps, probabilities and explained classes. The gradient of a class score at the
    feature map is taken as its gradient at a zero added to that map (``study.backend.input_gradient``:
    the same on every Keras backend)."""
    import keras  # deferred: the backend

    from study import backend  # deferred: Keras

    outer = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    last = outer[-1]
    softmax = _is_softmax_dense(last)
    shape = (len(x), *target.shape)
    captured = {}

    def scores(delta):
        """The class scores (logits where the last layer is a softmax Dense) with ``delta`` added to the map."""
        h = x
        for layer in outer:
            if layer.name == target.parent:
                h = layer._run_through_graph(h, operation_fn=lambda op: _perturbing(op, target.name, delta, captured))
            elif layer is last and softmax:
                h = keras.ops.matmul(keras.ops.cast(h, "float32"), keras.ops.cast(layer.kernel, "float32"))
                if layer.use_bias:
                    h = h + keras.ops.cast(layer.bias, "float32")
            else:
                h = layer(h, training=False)
                if target.parent is None and layer.name == target.name:
                    h = h + keras.ops.cast(delta, h.dtype)
                    captured["map"] = h
        return keras.ops.cast(h, "float32")

    zeros = np.zeros(shape, np.float32)
    logits = keras.ops.convert_to_numpy(scores(zeros))
    feature_map = keras.ops.convert_to_numpy(keras.ops.cast(captured["map"], "float32"))
    probs = _softmax(logits) if softmax else logits
    classes = probs.argmax(axis=-1) if wanted is None else np.asarray(wanted, np.int64)
    chosen = np.eye(logits.shape[-1], dtype=np.float32)[classes]
    chosen = keras.ops.convert_to_tensor(chosen)
    _, grads = backend.input_gradient(lambda delta: keras.ops.multiply(scores(delta), chosen), zeros)
    weights = grads.astype(np.float32).mean(axis=(1, 2), keepdims=True)  # one per channel
    cam = np.maximum((weights * feature_map).sum(axis=-1, keepdims=True), 0.0)
    cam = keras.ops.convert_to_numpy(keras.ops.image.resize(cam, x.shape[1:3], interpolation="bilinear"))[..., 0]
    peak = cam.reshape(len(cam), -1).max(axis=1)
    cam = np.where(peak[:, None, None] > 1e-12, cam / np.maximum(peak, 1e-12)[:, None, None], 0.0)
    return cam.astype(np.float32), probs.astype(np.float32), classes.astype(np.int64)


def _perturbing(op, name: str, delta, captured: dict):
    """``op`` called in inference mode, with ``delta`` added to its output if it is the layer ``name``."""
    import keras  # deferred: the backend

    def call(*args, **kwargs):
        if "training" in getattr(op, "_call_context_args", {}):
            kwargs["training"] = False
        out = op(*args, **kwargs)
        if getattr(op, "name", None) == name:
            out = out + keras.ops.cast(delta, out.dtype)
            captured["map"] = out
        return out

    return call


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


# ------------------------------------------------------------------------------- models and faces
def model_problem(path: Path) -> str | None:
    """Why the run's model at ``path`` cannot be explained (missing, not kept, not a Keras file), or None;
    read from the file's first bytes, without TensorFlow."""
    path = Path(path)
    if not path.is_file():
        return f"{path} does not exist{not_kept_note(path.parent)}"
    problem = file_format_problem(path)
    return f"{path} is not a Keras model ({problem})" if problem else None


def load_model(path: Path):
    """A run's model.keras, with the toolkit's layers registered (no checks beyond Keras's own)."""
    import keras  # deferred: TensorFlow

    import study.model  # noqa: F401  deferred (TensorFlow): registers the layers model.keras files reference

    problem = model_problem(path)
    if problem:
        raise RunError(f"cannot explain the model: {problem}")
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as exc:  # a zip, a JSON or a layer error, depending on what is wrong
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise RunError(f"cannot load {path} as a Keras model ({reason})") from None


def one_per_class(labels: np.ndarray, seed: int = SALIENCY_SEED) -> list[int | None]:
    """For each class of CLASSES, the index of one image of that class (a seeded draw), None if it has none."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    picked: list[int | None] = []
    for k in range(len(CLASSES)):
        members = np.flatnonzero(labels == k)
        picked.append(int(rng.choice(members)) if len(members) else None)
    return picked


# ------------------------------------------------------------------------------- the figure
def draw_saliency(faces: Sequence[np.ndarray | None], columns: Mapping[str, GradCam], title: str = "") -> "Figure":
    """One row per class (``faces[k]`` a face of class k, or None: the row says so), the face, then per
    model (``columns``: name -> its GradCam on the faces given, in order) the heat map over the face,
    titled with the model's prediction. A matplotlib Figure with an Agg canvas; the caller saves it."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # deferred: matplotlib
    from matplotlib.figure import Figure  # deferred: matplotlib

    names = list(columns)
    fig = Figure(figsize=(1.9 * (1 + len(names)) + 1.2, 1.9 * len(CLASSES) + 1.0), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(CLASSES), 1 + len(names), squeeze=False)
    shown = 0
    for row, face in enumerate(faces):
        for ax in axes[row]:
            ax.set_xticks([]), ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
        axes[row][0].set_ylabel(CLASSES[row], fontsize=11, rotation=0, ha="right", va="center")
        if face is None:
            axes[row][0].text(0.5, 0.5, "no face\nof this class", ha="center", va="center", fontsize=8,
                              transform=axes[row][0].transAxes)
            continue
        pixels = np.asarray(face).squeeze()
        axes[row][0].imshow(pixels, cmap="gray", vmin=0, vmax=255)
        for col, name in enumerate(names, start=1):
            cam = columns[name]
            ax = axes[row][col]
            ax.imshow(pixels, cmap="gray", vmin=0, vmax=255)
            image = ax.imshow(cam.maps[shown], cmap="jet", vmin=0, vmax=1, alpha=OVERLAY_ALPHA)
            predicted = int(np.argmax(cam.probs[shown]))
            ax.set_title(f"{CLASSES[predicted]} {cam.probs[shown][predicted]:.0%}", fontsize=9,
                         color="tab:green" if predicted == row else "tab:red")
        shown += 1
    for col, name in enumerate(["face", *names]):
        axes[0][col].annotate(name, xy=(0.5, 1.25), xycoords="axes fraction", ha="center", va="bottom",
                              fontsize=10, fontweight="bold")
    if names and shown:
        fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.3, label="Grad-CAM (0 to 1)")
    fig.suptitle(title or "Where the models look (Grad-CAM)", fontsize=11)
    fig.supxlabel("above each map: the predicted class and its probability (green = right, red = wrong)",
                  fontsize=9)
    return fig


def save_figure(fig: "Figure", out: str | Path, dpi: int = 110) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi, bbox_inches="tight")
    return out
