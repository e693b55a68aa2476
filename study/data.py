"""Load FER datasets as 48x48 uint8 arrays, decoding each source once.

Two layouts are read: class folders (``DATA/train/<class>/*.jpg`` and ``DATA/test/<class>/...``, as the
Kaggle downloads ship them) and the original ``fer2013.csv``. Decoding 28k images is the slow part,
so the decoded arrays are cached in a ``.npz`` keyed by the files' names, sizes and mtimes, and
memoized in-process so the many trials of a search do not even re-read that file. The data folder
itself is only ever read.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
import warnings
import zipfile
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
from PIL import Image

from study.errors import DataError

if TYPE_CHECKING:
    import pandas as pd  # at run time imported where used: pandas alone takes ~0.4 s, and reads never need it

Part = tuple[np.ndarray, np.ndarray]  # (images, labels)

CLASSES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
IMAGE_SIZE = 48
SYNTHETIC_MARKER = "SYNTHETIC_SAMPLE.json"
KAGGLE_DATASET = "ananthu017/emotion-detection-fer"
CSV_NAME = "fer2013.csv"
# fer2013.csv numbers its labels in this (non-alphabetical) order; they are mapped by name.
CSV_LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
CSV_VALIDATION = ("split", "publictest")
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif"})

_ALIASES: dict[str, str] = {
    **{name: name for name in CLASSES},
    "anger": "angry",
    "disgusted": "disgust",
    "fearful": "fear",
    "afraid": "fear",
    "scared": "fear",
    "happiness": "happy",
    "joy": "happy",
    "sadness": "sad",
    "surprised": "surprise",
}
_PIXELS = IMAGE_SIZE * IMAGE_SIZE
_CSV_PARTS = ("training", "publictest", "privatetest")
_CACHE_VERSION = 1
_MEMO_SIZE = 4
_HAND_PLACEMENT = (
    f"download it from https://www.kaggle.com/datasets/{KAGGLE_DATASET} and unzip it so that "
    "DEST/train/<class>/ and DEST/test/<class>/ exist, then pass DEST as the data path"
)


@dataclass(frozen=True, eq=False)
class Split:
    """Images ``x`` of shape (N, 48, 48, 1) uint8 and labels ``y`` (N,) int64 indexing ``CLASSES``."""

    x: np.ndarray
    y: np.ndarray


@dataclass(frozen=True)
class LoadReport:
    """What decoding found, so a caller can tell the user what was converted or skipped."""

    files: int
    converted: int
    skipped: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class Dataset:
    """The three splits plus where they came from; ``fingerprint`` identifies the decoded content."""

    train: Split
    val: Split
    test: Split
    fingerprint: str
    source: str
    layout: str
    synthetic: bool
    report: LoadReport

    def counts(self) -> pd.DataFrame:
        """Images per class and split, to show imbalance at a glance."""
        import pandas as pd  # deferred: pandas
        columns = {
            name: np.bincount(split.y, minlength=len(CLASSES)).astype(np.int64)
            for name, split in (("train", self.train), ("val", self.val), ("test", self.test))
        }
        return pd.DataFrame(columns, index=pd.Index(CLASSES, name="class"))


@dataclass(frozen=True)
class _Source:
    """A located dataset: its root folder, layout and the files whose metadata keys the cache."""

    root: Path
    layout: str
    key: str  # digest of every file's relative path, size and mtime
    files: dict[str, list[tuple[str, int]]]  # folders: split -> (path relative to root, class index)
    csv: Path | None = None


@dataclass(frozen=True, eq=False)
class _Decoded:
    """Decoded source splits (folders: train/test; CSV: training/publictest/privatetest)."""

    parts: dict[str, Part]
    files: int
    converted: int
    skipped: tuple[str, ...]
    fingerprint: str


_MEMO: OrderedDict[str, _Decoded] = OrderedDict()


# ---------------------------------------------------------------------------------------- public
def load_dataset(
    path: str | Path,
    *,
    val_fraction: float = 0.2,
    split_seed: int = 0,
    subset: float = 1.0,
    strict: bool = False,
    csv_validation: str = "split",
) -> Dataset:
    """Load a folder or CSV dataset, split a seeded stratified validation share off train."""
    _check_options(val_fraction, subset, csv_validation)
    source = _locate(Path(path).expanduser())
    if csv_validation == "publictest" and source.layout != "csv":
        raise DataError(
            f"csv_validation='publictest' needs fer2013.csv, but {path} is a folder dataset: "
            "use csv_validation='split'"
        )
    decoded = _decoded(source)
    if strict and decoded.skipped:
        raise DataError(_strict_message(decoded.skipped, source.layout))
    train, val, test = _make_splits(decoded, source.layout, val_fraction, split_seed, subset, csv_validation)
    return Dataset(
        train=train,
        val=val,
        test=test,
        fingerprint=decoded.fingerprint,
        source=str(path),
        layout=source.layout,
        synthetic=(source.root / SYNTHETIC_MARKER).is_file(),
        report=LoadReport(decoded.files, decoded.converted, decoded.skipped),
    )


def training_share(subset: float, images: int) -> str:
    """What every run says of its data: how much of the training split it trains on."""
    if subset >= 1.0:
        return f"trains on the whole training split ({images:,} images)"
    return f"trains on a stratified {subset:.0%} of the training split ({images:,} images; subset=1 for all)"


def fetch(dest: str | Path | None = None) -> Path:
    """Download the Kaggle folder dataset with kagglehub; copy it to ``dest`` when given."""
    target = Path(dest).expanduser() if dest is not None else None
    if target is not None and _is_folder_dataset(target):
        return target
    if target is not None and target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise DataError(f"{target} exists and holds no train/ and test/: pick an empty or new folder")
    downloaded = _kaggle_download()
    if target is None:
        return downloaded
    _copy_tree(downloaded, target)
    return target


def cache_dir() -> Path:
    """Where decoded arrays are cached: $FER_STUDY_CACHE, else ~/.cache/fer-study."""
    configured = os.environ.get("FER_STUDY_CACHE")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "fer-study"


# ------------------------------------------------------------------------------------- locating
def _check_options(val_fraction: float, subset: float, csv_validation: str) -> None:
    if not 0.0 < val_fraction < 1.0:
        raise DataError(f"val_fraction must be in (0, 1), got {val_fraction}")
    if not 0.0 < subset <= 1.0:
        raise DataError(f"subset must be in (0, 1], got {subset}")
    if csv_validation not in CSV_VALIDATION:
        raise DataError(f"csv_validation must be one of {', '.join(CSV_VALIDATION)}, got {csv_validation!r}")


def _locate(path: Path) -> _Source:
    """Find the dataset root under ``path`` and list its files."""
    if not path.exists():
        raise DataError(
            f"data path {path} does not exist: pass a folder holding train/<class>/ and test/<class>/, "
            f"or a {CSV_NAME}"
        )
    if path.is_file():
        if path.suffix.lower() != ".csv":
            raise DataError(f"{path} is neither a folder nor a .csv file: pass the dataset folder or {CSV_NAME}")
        return _csv_source(path)
    root = _find_root(path)
    csv = child_path(root, CSV_NAME, want_dir=False)
    if child_path(root, "train") is None and child_path(root, "test") is None and csv is not None:
        return _csv_source(csv)
    return _folder_source(root)


def _find_root(path: Path) -> Path:
    """Descend through single subfolders (an unzip wrapper, a kagglehub cache) to the dataset root."""
    candidate = path
    for _ in range(6):
        if child_path(candidate, "train") or child_path(candidate, "test") or child_path(candidate, CSV_NAME, want_dir=False):
            return candidate
        subdirs = _subdirs(candidate)
        versions = [d for d in subdirs if d.name.isdigit()]
        if candidate.name == "versions" and versions:
            subdirs = [max(versions, key=lambda d: int(d.name))]
        if len(subdirs) != 1:
            break
        candidate = subdirs[0]
    listed = ", ".join(d.name for d in _subdirs(path)[:8]) or "none"
    raise DataError(
        f"{path} holds neither train/ and test/ class folders nor {CSV_NAME} (subfolders: {listed}): "
        "pass the folder that holds them"
    )


def _subdirs(folder: Path) -> list[Path]:
    return sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))


def child_path(folder: Path, name: str, *, want_dir: bool = True) -> Path | None:
    """The child named ``name`` (case-insensitive), so Train/ or FER2013.csv are found too."""
    for entry in sorted(folder.iterdir()):
        if entry.name.lower() == name.lower() and (entry.is_dir() if want_dir else entry.is_file()):
            return entry
    return None


def _is_folder_dataset(path: Path) -> bool:
    return path.is_dir() and child_path(path, "train") is not None and child_path(path, "test") is not None


def _folder_source(root: Path) -> _Source:
    files: dict[str, list[tuple[str, int]]] = {}
    stats: list[tuple[str, int, int]] = []
    for split in ("train", "test"):
        split_dir = child_path(root, split)
        if split_dir is None:
            other = "test" if split == "train" else "train"
            raise DataError(
                f"{root} has {other}/ but no {split}/: the dataset needs both train/<class>/ and test/<class>/"
            )
        files[split] = list_split(root, split_dir, stats)
    return _Source(root, "folders", _digest(["folders", str(root.resolve()), *map(str, stats)]), files)


def list_split(root: Path, split_dir: Path, stats: list[tuple[str, int, int]]) -> list[tuple[str, int]]:
    """Image files of one split, ordered by class then name so the order is the same everywhere."""
    entries: list[tuple[int, str, str]] = []
    class_dirs = _subdirs(split_dir)
    if not class_dirs:
        raise DataError(
            f"{split_dir} holds no images: expected {split_dir.name}/<class>/*.jpg folders "
            f"for classes {', '.join(CLASSES)}"
        )
    for class_dir in class_dirs:
        label = _class_index(class_dir)
        images = _images_in(class_dir)
        if not images:
            raise DataError(
                f"class folder {class_dir.relative_to(root).as_posix()} is empty: add its images "
                f"({'/'.join(sorted(IMAGE_SUFFIXES))}) or delete the folder"
            )
        prefix = f"{split_dir.name}/{class_dir.name}/"  # plain strings: pathlib is slow for 28k files
        for entry in images:
            rel = prefix + entry.name
            info = entry.stat()
            stats.append((rel, info.st_size, info.st_mtime_ns))
            entries.append((label, entry.name, rel))
    return [(rel, label) for label, _, rel in sorted(entries)]


def _class_index(class_dir: Path) -> int:
    name = _ALIASES.get(class_dir.name.lower())
    if name is None:
        raise DataError(
            f"unknown class folder {class_dir.parent.name}/{class_dir.name}: rename it to one of "
            f"{', '.join(sorted(_ALIASES))} (or remove it)"
        )
    return CLASSES.index(name)


def _images_in(class_dir: Path) -> list[os.DirEntry[str]]:
    with os.scandir(class_dir) as it:
        return [
            e for e in it
            if not e.name.startswith(".") and os.path.splitext(e.name)[1].lower() in IMAGE_SUFFIXES and e.is_file()
        ]


def _csv_source(csv: Path) -> _Source:
    info = csv.stat()
    key = _digest(["csv", str(csv.resolve()), str(info.st_size), str(info.st_mtime_ns)])
    return _Source(csv.parent, "csv", key, {}, csv)


def _digest(items: list[str]) -> str:
    h = hashlib.sha256(f"v{_CACHE_VERSION}".encode())
    for item in items:
        h.update(item.encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


# -------------------------------------------------------------------------------------- caching
def _decoded(source: _Source) -> _Decoded:
    """Decoded arrays from the in-process memo, else the .npz cache, else by decoding."""
    origin = _digest([str((source.csv or source.root).resolve())])  # stale caches of one origin get dropped
    cache_file = cache_dir() / "data" / f"{origin}-{source.key}.npz"
    memo_key = str(cache_file)
    if memo_key in _MEMO:
        _MEMO.move_to_end(memo_key)
        return _MEMO[memo_key]
    decoded = _read_cache(cache_file)
    if decoded is None:
        decoded = _decode_csv(source.csv) if source.csv else _decode_folders(source)
        _write_cache(cache_file, decoded)
    _MEMO[memo_key] = decoded
    while len(_MEMO) > _MEMO_SIZE:
        _MEMO.popitem(last=False)
    return decoded


def _read_cache(cache_file: Path) -> _Decoded | None:
    """The cached arrays, or None when absent or unreadable (then they are decoded again)."""
    if not cache_file.is_file():
        return None
    try:
        with np.load(cache_file, allow_pickle=False) as npz:
            meta = json.loads(str(npz["meta"]))
            parts = {name: (npz[f"{name}_x"], npz[f"{name}_y"]) for name in meta["parts"]}
    except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile):
        return None  # JSONDecodeError is a ValueError
    return _Decoded(parts, meta["files"], meta["converted"], tuple(meta["skipped"]), meta["fingerprint"])


def _write_cache(cache_file: Path, decoded: _Decoded) -> None:
    """Write atomically (temp file + rename) and drop stale caches of the same root."""
    meta = {
        "parts": list(decoded.parts),
        "files": decoded.files,
        "converted": decoded.converted,
        "skipped": list(decoded.skipped),
        "fingerprint": decoded.fingerprint,
    }
    arrays = {f"{name}_{axis}": arr for name, (x, y) in decoded.parts.items() for axis, arr in (("x", x), ("y", y))}
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=cache_file.parent, suffix=".npz.tmp", delete=False) as tmp:
            np.savez(tmp, meta=np.array(json.dumps(meta)), **arrays)
        os.replace(tmp.name, cache_file)
    except OSError as exc:
        warnings.warn(
            f"could not cache decoded images in {cache_file.parent} ({exc.strerror}): "
            "set FER_STUDY_CACHE to a writable folder",
            stacklevel=3,
        )
        return
    root_prefix = cache_file.name.split("-")[0]
    for stale in cache_file.parent.glob(f"{root_prefix}-*.npz"):
        if stale != cache_file:
            stale.unlink(missing_ok=True)


def _fingerprint(parts: dict[str, Part]) -> str:
    """sha256 of the decoded pixels and labels: the same content gives the same value anywhere."""
    h = hashlib.sha256()
    for name in sorted(parts):
        x, y = parts[name]
        h.update(name.encode())
        h.update(np.asarray(x.shape, dtype="<i8").tobytes())
        h.update(np.ascontiguousarray(x, dtype=np.uint8).tobytes())
        h.update(np.ascontiguousarray(y, dtype="<i8").tobytes())
    return h.hexdigest()[:16]


# ------------------------------------------------------------------------------------- decoding
def decode_image(path: Path) -> tuple[np.ndarray | None, bool]:
    """48x48 grayscale pixels and whether a conversion was needed; None when unreadable."""
    try:
        with Image.open(path) as image:
            image.load()
            converted = image.mode != "L" or image.size != (IMAGE_SIZE, IMAGE_SIZE)
            if converted:
                image = image.convert("L").resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.LANCZOS)
            return np.asarray(image, dtype=np.uint8), converted
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None, False


def _decode_folders(source: _Source) -> _Decoded:
    parts: dict[str, Part] = {}
    skipped: list[str] = []
    converted = files = 0
    workers = min(8, (os.cpu_count() or 1) * 2)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for split, entries in source.files.items():
            results = list(pool.map(decode_image, [source.root / rel for rel, _ in entries]))
            good = [(pixels, label) for (pixels, _), (_, label) in zip(results, entries) if pixels is not None]
            skipped += [rel for (pixels, _), (rel, _) in zip(results, entries) if pixels is None]
            converted += sum(flag for _, flag in results)
            files += len(entries)
            parts[split] = _stack([p for p, _ in good], [label for _, label in good])
    for split, (_, y) in parts.items():
        if len(y) == 0:
            raise DataError(
                f"no readable images in {source.root / split}: every image there failed to decode; re-download the data"
            )
    return _Decoded(parts, files, converted, tuple(skipped), _fingerprint(parts))


def _stack(pixels: list[np.ndarray], labels: list[int]) -> Part:
    x = np.stack(pixels)[..., None] if pixels else np.zeros((0, IMAGE_SIZE, IMAGE_SIZE, 1), np.uint8)
    return x.astype(np.uint8, copy=False), np.asarray(labels, dtype=np.int64)


def _decode_csv(csv: Path) -> _Decoded:
    """Rows by Usage; labels mapped by name; bad rows are skipped and reported as "row N: why"."""
    frame = _read_csv(csv)
    label_map = {str(i): CLASSES.index(name) for i, name in enumerate(CSV_LABELS)}
    rows: dict[str, tuple[list[np.ndarray], list[int]]] = {part: ([], []) for part in _CSV_PARTS}
    skipped: list[str] = []
    for number, (emotion, pixels, usage) in enumerate(frame.itertuples(index=False, name=None), start=1):
        label, part = label_map.get(emotion.strip()), usage.strip().lower()
        values, problem = _parse_pixels(pixels)
        if label is None:
            problem = f"emotion {emotion!r} is not a label 0-6"
        elif part not in rows:
            problem = f"Usage {usage!r} is not Training, PublicTest or PrivateTest"
        if problem:
            skipped.append(f"row {number}: {problem}")
            continue
        rows[part][0].append(values.reshape(IMAGE_SIZE, IMAGE_SIZE))
        rows[part][1].append(label)
    parts = {part: _stack(*rows[part]) for part in _CSV_PARTS}
    _check_csv_parts(csv, parts)
    # CSV rows are 48x48 grayscale by construction (other sizes are skipped), so none is converted.
    return _Decoded(parts, len(frame), 0, tuple(skipped), _fingerprint(parts))


def _read_csv(csv: Path) -> pd.DataFrame:
    import pandas as pd  # deferred: pandas
    try:
        frame = pd.read_csv(csv, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(
            f"cannot parse {csv} as CSV ({reason}): use the Kaggle {CSV_NAME} with columns emotion, pixels, Usage"
        ) from None
    by_name = {str(c).strip().lower(): c for c in frame.columns}
    missing = [c for c in ("emotion", "pixels", "Usage") if c.lower() not in by_name]
    if missing:
        raise DataError(
            f"{csv.name} lacks column(s) {', '.join(missing)} (has: {', '.join(map(str, frame.columns))}): "
            f"use the Kaggle {CSV_NAME} with columns emotion, pixels, Usage"
        )
    return frame[[by_name["emotion"], by_name["pixels"], by_name["usage"]]]


def _parse_pixels(text: str) -> tuple[np.ndarray, str]:
    """The row's pixels, or an explanation of why it is unusable."""
    tokens = text.split()
    if len(tokens) != _PIXELS:
        return np.empty(0, np.uint8), f"{len(tokens)} pixel values, expected {_PIXELS} (48x48)"
    joined = "".join(tokens)
    if not (joined.isascii() and joined.isdigit()):
        return np.empty(0, np.uint8), "pixel values are not integers 0-255"
    values = np.fromstring(text, dtype=np.int64, sep=" ")
    if values.max() > 255:
        return np.empty(0, np.uint8), "pixel values are not integers 0-255"
    return values.astype(np.uint8), ""


def _check_csv_parts(csv: Path, parts: dict[str, Part]) -> None:
    if len(parts["training"][1]) == 0:
        raise DataError(
            f"{csv.name} has no usable Training rows: use the Kaggle {CSV_NAME} (Usage Training, PublicTest, PrivateTest)"
        )
    if len(parts["publictest"][1]) + len(parts["privatetest"][1]) == 0:
        raise DataError(
            f"{csv.name} has no usable PublicTest or PrivateTest rows: use the Kaggle {CSV_NAME}, which has all three"
        )


def _strict_message(skipped: tuple[str, ...], layout: str) -> str:
    more = f" (and {len(skipped) - 1} more)" if len(skipped) > 1 else ""
    if layout == "csv":
        return f"bad row in {CSV_NAME}: {skipped[0]}{more}: fix or delete the row(s), or load without strict to skip them"
    return (
        f"corrupt or unreadable image {skipped[0]}{more}: replace or delete it, or load without strict to skip bad files"
    )


# ------------------------------------------------------------------------------------ splitting
def _make_splits(
    decoded: _Decoded, layout: str, val_fraction: float, seed: int, subset: float, csv_validation: str
) -> tuple[Split, Split, Split]:
    """Train/val/test; train and val come seeded-shuffled so no consumer sees one class per batch."""
    (x, y), val_source, test = _source_parts(decoded.parts, layout, csv_validation)
    train_idx = np.arange(len(y))
    if val_source is None:
        val_idx = _draw(y, [seed, 0], lambda n: min(_share(val_fraction, n), n - 1))
        train_idx = np.setdiff1d(train_idx, val_idx)
        val_source = (x, y)
    else:
        val_idx = np.arange(len(val_source[1]))
    if subset < 1.0:
        train_idx = train_idx[_draw(y[train_idx], [seed, 1], lambda n: max(_share(subset, n), 1))]
    order = np.random.default_rng([seed, 2])
    return (
        _take((x, y), order.permutation(train_idx)),
        _take(val_source, order.permutation(val_idx)),
        _take(test, np.arange(len(test[1]))),
    )



def _source_parts(parts: dict[str, Part], layout: str, csv_validation: str) -> tuple[Part, Part | None, Part]:
    """(pool that train and maybe val come from, a given val split or None, test)."""
    if layout == "folders":
        return parts["train"], None, parts["test"]
    public, private = parts["publictest"], parts["privatetest"]
    if csv_validation == "split":
        test = (np.concatenate([public[0], private[0]]), np.concatenate([public[1], private[1]]))
        return parts["training"], None, test
    for name, (_, y) in (("PublicTest", public), ("PrivateTest", private)):
        if len(y) == 0:
            raise DataError(
                f"{CSV_NAME} has no usable {name} rows, which csv_validation='publictest' needs: "
                "use csv_validation='split'"
            )
    return parts["training"], public, private


def _take(part: Part, idx: np.ndarray) -> Split:
    """A Split holding copies, so callers may modify it without touching the memoized arrays."""
    x, y = part
    return Split(x[idx], y[idx])


def _share(fraction: float, n: int) -> int:
    """round(fraction * n) with halves rounded up, the same on every platform."""
    return int(fraction * n + 0.5)


def stratified_share(y: np.ndarray, fraction: float, seed: list[int]) -> np.ndarray:
    """Sorted indices of a seeded, stratified ``fraction`` of ``y`` (at least one image of every class
    that has one). Nested: for one seed, a smaller fraction is always inside a larger one."""
    return _draw(y, seed, lambda n: max(_share(fraction, n), 1))


def with_train(data: Dataset, indices: np.ndarray) -> Dataset:
    """The dataset with its training split cut to ``indices`` (validation and test untouched)."""
    return dataclasses.replace(data, train=_take((data.train.x, data.train.y), np.asarray(indices)))


def _draw(y: np.ndarray, seed: list[int], count: Callable[[int], int]) -> np.ndarray:
    """Seeded per-class draw of ``count(n)`` indices from each class of n members.

    Each class is permuted once per seed and its first ``count(n)`` members taken, so smaller
    fractions are subsets of larger ones and a class of one image is never forced into a draw.
    """
    rng = np.random.default_rng(seed)
    picked = [np.empty(0, np.int64)]
    for label in range(len(CLASSES)):
        members = rng.permutation(np.flatnonzero(y == label))
        if len(members):
            picked.append(members[: max(count(len(members)), 0)])
    return np.sort(np.concatenate(picked))


# -------------------------------------------------------------------------------------- fetching
def _kaggle_download() -> Path:
    try:
        import kagglehub
    except ImportError:
        raise DataError(f"kagglehub is not installed: pip install kagglehub, or {_HAND_PLACEMENT}") from None
    try:
        downloaded = Path(kagglehub.dataset_download(KAGGLE_DATASET))
    except Exception as exc:  # noqa: BLE001 - any download failure gets the same by-hand advice
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise DataError(f"could not download {KAGGLE_DATASET} ({reason}): {_HAND_PLACEMENT}") from None
    return _find_root(downloaded)


def _copy_tree(source: Path, target: Path) -> None:
    """Copy into a temporary sibling first so an interrupted copy never looks like a dataset."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        shutil.copytree(source, staging / "data")
        if target.exists():
            target.rmdir()
        os.replace(staging / "data", target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
