"""What every benchmark shares: the table row, the machine, timing, data, and the command line."""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from study.config import TrainConfig
from study.data import CLASSES, Split, cache_dir, load_dataset, stratified_share, with_train
from study.runs import Run
from study.sample import write_sample

SHARED_FER = Path(__file__).resolve().parents[2] / "shared" / "fer2013"
COLUMNS = ("benchmark", "baseline", "ours", "ratio", "goal", "met?")


@dataclass(frozen=True)
class Row:
    """One line of the table. ``ratio`` is oriented so that larger means ours is better, unless
    ``ratio_text`` says otherwise; ``met`` is None where the row states a fact, not a goal."""

    benchmark: str
    baseline: str
    ours: str
    ratio: float | None
    goal: str = "-"
    met: bool | None = None
    ratio_text: str | None = None

    def cells(self) -> tuple[str, ...]:
        ratio = self.ratio_text or ("-" if self.ratio is None else f"{self.ratio:.2f}x")
        met = "-" if self.met is None else ("yes" if self.met else "NO")
        return (self.benchmark, self.baseline, self.ours, ratio, self.goal, met)


def table(rows: Sequence[Row]) -> str:
    """A Markdown table, so the README can hold it exactly as printed."""
    lines = [COLUMNS] + [r.cells() for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(COLUMNS))]
    fmt = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"
    return "\n".join([fmt(COLUMNS), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(fmt, lines[1:])])


def machine() -> str:
    """CPU model, cores, load and library versions: a benchmark figure means nothing without them."""
    import keras  # deferred: the backend

    from study import backend  # deferred: Keras

    device = backend.device()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"Machine: {cpu_model()}, {os.cpu_count()} cores, {'no GPU' if device.startswith('CPU (') else device}; "
            f"load average at start {load}; Python {platform.python_version()}, Keras {keras.__version__} on "
            f"{backend.name()} {backend.version()}")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# ------------------------------------------------------------------------------------ formatting
def rate(value: float, unit: str) -> str:
    return f"{value:,.0f} {unit}" if value >= 100 else f"{value:.3g} {unit}"


def seconds(value: float) -> str:
    return f"{value:.1f} s" if value >= 10 else f"{value:.2f} s"


def percent(value: float) -> str:
    return f"{100 * value:.1f}%"


# ------------------------------------------------------------------------------------ timing
class Clock:
    """Wall time of a block: ``with Clock() as c: ...; c.seconds``."""

    def __enter__(self) -> Clock:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


# ------------------------------------------------------------------------------------ data
def faces(quick: bool) -> tuple[Path, str]:
    """The real FER2013 folders, or (``--quick``, $FER_BENCH_SAMPLE set, or the faces absent) a generated
    sample, with a note. A quick run is a smoke test: on the real faces a DenseNet169 one took more than a
    test's 15 minutes."""
    if SHARED_FER.is_dir() and not quick and not os.environ.get("FER_BENCH_SAMPLE"):
        return SHARED_FER, ""
    why = ("--quick" if quick else "FER_BENCH_SAMPLE set") if SHARED_FER.is_dir() else "../shared/fer2013 absent"
    return sample(per_class=60 if quick else 600), f"generated sample ({why})"


_SAMPLES: dict[tuple[int, int], Path] = {}


def sample(per_class: int, seed: int = 0) -> Path:
    """The generated sample dataset (study.sample), written once per process into a temporary folder."""
    if (per_class, seed) not in _SAMPLES:
        _SAMPLES[(per_class, seed)] = write_sample(scratch_dir() / f"sample-{per_class}-{seed}", per_class=per_class,
                                                   seed=seed)
    return _SAMPLES[(per_class, seed)]


_SCRATCH: list[tempfile.TemporaryDirectory] = []


def scratch_dir() -> Path:
    """One temporary folder per process for everything a benchmark writes (removed at exit)."""
    if not _SCRATCH:
        _SCRATCH.append(tempfile.TemporaryDirectory(prefix="fer-bench-"))
    return Path(_SCRATCH[0].name)


def kept_searches(name: str, plan: dict) -> Path:
    """The folder of a long benchmark's searches, kept under ``$FER_STUDY_CACHE/bench-NAME`` per ``plan`` (its sizes
    and the data's fingerprint): run again, the benchmark resumes each search where it stopped (``run_search``
    resumes a study; a trial a kill interrupted is failed and never counted) and reads back the finished ones,
    so hours of trials survive an interrupted run. Another plan gets another folder."""
    key = hashlib.sha256(json.dumps(plan, sort_keys=True, default=str).encode()).hexdigest()[:16]
    folder = cache_dir() / f"bench-{name}" / key
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def trials_seconds(study) -> float:
    """The wall time of a study's trials, each from its start to its end: a kept search resumed over several
    runs of a benchmark is counted whole, and the time between the runs is not."""
    return sum((t.datetime_complete - t.datetime_start).total_seconds() for t in study.trials
               if t.datetime_start and t.datetime_complete)


@contextlib.contextmanager
def fresh_feature_cache() -> Iterator[Path]:
    """An empty frozen-feature cache (memo and disk) for the block, so "computed" really computes."""
    from study import features  # deferred: TensorFlow, loaded only by the benchmarks that need it

    folder = Path(tempfile.mkdtemp(prefix="features-", dir=scratch_dir()))
    before = os.environ.get("FER_STUDY_CACHE")
    os.environ["FER_STUDY_CACHE"] = str(folder)
    features.forget()
    try:
        yield folder
    finally:
        features.forget()
        if before is None:
            os.environ.pop("FER_STUDY_CACHE", None)
        else:
            os.environ["FER_STUDY_CACHE"] = before


def write_folders(root: Path, splits: dict[str, object]) -> Path:
    """Write Splits as ``root/<name>/<class>/<i>.png``: the plain pipeline reads exactly our images."""
    from PIL import Image

    for name, split in splits.items():
        for label in CLASSES:
            (root / name / label).mkdir(parents=True, exist_ok=True)
        for i, (image, label) in enumerate(zip(split.x, split.y)):
            Image.fromarray(image[..., 0]).save(root / name / CLASSES[int(label)] / f"{i}.png")
    return root


def backbone_weights(backbone: str, seed: int = 0) -> Path:
    """A backbone weights file the benchmark writes itself: ImageNet cannot be downloaded here, and
    the speed of a frozen phase does not depend on what the weights learned (seeded random init)."""
    import keras

    from study.model import build_backbone  # deferred: TensorFlow

    path = scratch_dir() / f"{backbone}-seed{seed}.weights.h5"
    if not path.exists():
        keras.utils.set_random_seed(seed)
        build_backbone(backbone, "none").save_weights(str(path))
        keras.backend.clear_session()
    return path


def tiny_images(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 48, 48, 1)).astype(np.uint8), (np.arange(n) % 7).astype(np.int64)


# ------------------------------------------------------------------------------------ command line
def main(run: Callable[[bool], list[Row]], argv: Sequence[str] | None = None) -> list[Row]:
    """The command line of one benchmark module: ``python -m benchmarks.<name> [--quick] [--write FILE]``;
    ``--write`` also puts its table between FILE's ``<!-- benchmarks-<name>:start -->`` and
    ``<!-- benchmarks-<name>:end -->`` lines."""
    module = sys.modules[run.__module__]
    spec = getattr(module, "__spec__", None)  # run as python -m benchmarks.<name>, the module is __main__
    name = (spec.name if spec else run.__module__).rpartition(".")[2]
    start, end = f"<!-- benchmarks-{name}:start -->", f"<!-- benchmarks-{name}:end -->"
    parser = argparse.ArgumentParser(description=(sys.modules[run.__module__].__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small data and few steps (CI smoke test)")
    parser.add_argument("--write", type=existing_file, metavar="FILE", help=f"also write the table between {start} and {end}")
    args = parser.parse_args(argv)
    if args.write:
        between(args.write.read_text(), "", start, end)  # a file without the markers fails now, not after the run
    quiet()
    print(machine(), flush=True)
    from study.backend import releasing_traced_graphs  # deferred: the backend, after quiet()

    started = time.perf_counter()
    with releasing_traced_graphs():
        rows = run(args.quick)
    output = (f"{machine()}\nCommand: python -m benchmarks.{name}{' --quick' if args.quick else ''}; wall time "
              f"{(time.perf_counter() - started) / 60:.1f} min\n\n{table(rows)}")
    print(table(rows), flush=True)
    if args.write:
        args.write.write_text(between(args.write.read_text(), f"```text\n{output}\n```\n", start, end))
    return rows


def quiet() -> None:
    """Library chatter (TensorFlow's retracing warnings: every trial builds a new model; optuna's
    per-study lines; Keras's shuffle note for the peer's fit) would bury the table."""
    import warnings

    import keras
    import optuna

    if keras.config.backend() == "tensorflow":
        import tensorflow as tf

        tf.get_logger().setLevel("ERROR")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", message=".*`shuffle=True` was passed")


def log(message: str) -> None:
    """Progress on stderr, so stdout holds the table alone."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def existing_file(text: str) -> Path:
    """argparse's ``type`` for ``--write FILE``: a file that exists (a typo fails in one line, before any run)."""
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"no such file: {text} (it must exist and hold the markers)")
    return path


def between(text: str, inner: str, start: str, end: str) -> str:
    """``text`` with what lies between the ``start`` and ``end`` lines replaced by ``inner``."""
    head, sep, rest = text.partition(start + "\n")
    _, sep2, tail = rest.partition(end)
    if not sep or not sep2:
        raise SystemExit(f"--write needs a line {start} followed later by a line {end}")
    return f"{head}{start}\n{inner}{end}{tail}"


# ------------------------------------------------------------------------ a backbone pretrained on faces
PRETRAIN_SHARE, PRETRAIN_DRAW = 0.4, [0, 13]  # the faces set aside for pretraining (stratified, one draw)
PRETRAIN_EPOCHS = 6
PRETRAIN_SETTINGS = {"regime": "scratch", "optimizer": "adam", "learning_rate": 0.001, "epochs": PRETRAIN_EPOCHS,
                     "stall_action": "warn"}


@dataclass(frozen=True)
class FacePretrained:
    """A backbone trained from scratch on a stratified share of the real training faces, and the rest.

    ImageNet weights cannot be downloaded here; transfer from these weights is transfer from faces the
    searches never see (``pool``: the training split's other indices), NOT from ImageNet."""

    weights: Path  # the backbone's weights file (keras ``save_weights``), for ``weights=`` and the peer
    run_dir: Path  # the pretraining run (its config, history and metrics)
    images: int  # faces it trained on
    val_accuracy: float
    majority_rate: float
    minutes: float  # what the pretraining took when it ran (cached since, if ``cached``)
    cached: bool
    pool: np.ndarray  # indices of the training split it did not train on

    def describe(self) -> str:
        return (f"{self.weights.name.split('.')[0]} pretrained from scratch on {self.images:,} real faces disjoint "
                f"from these (NOT ImageNet): val acc {self.val_accuracy:.3f} vs majority {self.majority_rate:.3f}, "
                f"{self.minutes:.0f} min{', cached' if self.cached else ''}")


def face_pretrained(backbone: str, data_dir: Path) -> FacePretrained:
    """Pretrain ``backbone`` once per data and settings on ``PRETRAIN_SHARE`` of the training split,
    kept under ``$FER_STUDY_CACHE/bench-pretrained`` (the first run pays it; later runs read it)."""
    import keras

    from study.model import backbone_of  # deferred: TensorFlow
    from study.training import train  # deferred: TensorFlow

    data = load_dataset(data_dir)
    held = stratified_share(data.train.y, PRETRAIN_SHARE, PRETRAIN_DRAW)
    pool = np.setdiff1d(np.arange(len(data.train.y)), held)
    config = TrainConfig(backbone=backbone, **PRETRAIN_SETTINGS)
    key = hashlib.sha256(json.dumps([data.fingerprint, backbone, PRETRAIN_SHARE, PRETRAIN_DRAW, PRETRAIN_SETTINGS],
                                    sort_keys=True).encode()).hexdigest()[:16]
    folder = cache_dir() / "bench-pretrained" / f"{backbone}-{key}"
    run_dir, weights = folder / "run", folder / f"{backbone}.weights.h5"
    cached = weights.exists()
    if not cached:
        log(f"pretraining {backbone} from scratch on {len(held):,} real faces (once; cached in {folder})")
        if not run_dir.exists():
            train(config, with_train(data, held), run_dir)
        model = keras.models.load_model(run_dir / "model.keras", compile=False)
        tmp = folder / f".{backbone}.{os.getpid()}.weights.h5"
        backbone_of(model).save_weights(str(tmp))
        tmp.replace(weights)
        keras.backend.clear_session()
    run = Run.load(run_dir)
    val = run.metrics["val"]
    return FacePretrained(weights, run_dir, len(held), float(val["accuracy"]), float(val["baseline"]["majority_rate"]),
                          float(run.manifest.get("timings_seconds", {}).get("total", 0.0)) / 60, cached, pool)


def from_pool(data_dir: Path, pool: np.ndarray, n_train: int, n_val: int):
    """Training and validation images both drawn from ``pool`` (training-split indices), the test split
    untouched: the first ``n_train`` for training, the next ``n_val`` for validation (the split is
    seeded-shuffled, so any run of it holds every class)."""
    data = load_dataset(data_dir)
    take = lambda idx: Split(data.train.x[idx], data.train.y[idx])
    return dataclasses.replace(data, train=take(pool[:n_train]), val=take(pool[n_train:n_train + n_val]))
