"""Loading folder and CSV datasets: layouts, aliases, errors, caching, splitting and fetching."""
from __future__ import annotations

import os
import shutil
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from study import data
from study.data import CLASSES, load_dataset
from study.errors import DataError

MSAMBARE = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
EMOTION_FER = ("angry", "disgusted", "fearful", "happy", "neutral", "sad", "surprised")
REAL_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "fer2013"


# ------------------------------------------------------------------------------------ helpers
def write_tree(root: Path, train: dict[str, int], test: dict[str, int], *, seed: int = 0, suffix: str = ".png") -> Path:
    """Random 48x48 grayscale images in root/train/<folder>/ and root/test/<folder>/."""
    rng = np.random.default_rng(seed)
    for split, counts in (("train", train), ("test", test)):
        for folder, n in counts.items():
            (root / split / folder).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                pixels = rng.integers(0, 256, (48, 48), dtype=np.uint8)
                Image.fromarray(pixels).save(root / split / folder / f"{i:03d}{suffix}")
    return root


def small_tree(root: Path, names: tuple[str, ...] = MSAMBARE, train: int = 10, test: int = 3) -> Path:
    return write_tree(root, dict.fromkeys(names, train), dict.fromkeys(names, test))


def write_csv(path: Path, rows: list[tuple[str, str, str]], header: str = "emotion,pixels,Usage") -> Path:
    lines = [header] + [f'{emotion},"{pixels}",{usage}' for emotion, pixels, usage in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def csv_rows() -> list[tuple[str, str, str]]:
    """Per CSV label 0-6: 6 Training, 2 PublicTest, 2 PrivateTest rows, each image filled with 30 * label."""
    rows = []
    for label in range(7):
        pixels = " ".join([str(30 * label)] * 2304)
        rows += [(str(label), pixels, usage) for usage in ["Training"] * 6 + ["PublicTest"] * 2 + ["PrivateTest"] * 2]
    return rows


def hashes(split: data.Split) -> set[bytes]:
    return {image.tobytes() for image in split.x}


def decode_spy(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    calls: list[Path] = []
    real = data.decode_image

    def spy(path: Path) -> tuple[np.ndarray | None, bool]:
        calls.append(path)
        return real(path)

    monkeypatch.setattr(data, "decode_image", spy)
    return calls


# ------------------------------------------------------------------------------ folder layout
def test_folder_layout_shapes_types_and_report(tmp_path: Path) -> None:
    ds = load_dataset(small_tree(tmp_path / "d"))
    assert ds.layout == "folders" and not ds.synthetic and ds.source == str(tmp_path / "d")
    for split in (ds.train, ds.val, ds.test):
        assert split.x.dtype == np.uint8 and split.x.shape[1:] == (48, 48, 1)
        assert split.y.dtype == np.int64 and len(split.y) == len(split.x)
    assert len(ds.train.y) + len(ds.val.y) == 70 and len(ds.test.y) == 21
    assert ds.report == data.LoadReport(files=91, converted=0, skipped=())
    counts = ds.counts()
    assert tuple(counts.index) == CLASSES and list(counts.columns) == ["train", "val", "test"]
    assert (counts["train"] + counts["val"]).tolist() == [10] * 7 and counts["test"].tolist() == [3] * 7


def test_colour_and_wrong_size_images_are_converted(tmp_path: Path) -> None:
    root = small_tree(tmp_path / "d")
    Image.new("RGB", (64, 64), (200, 30, 30)).save(root / "train" / "happy" / "colour.png")
    Image.new("L", (100, 80), 90).save(root / "train" / "sad" / "big.jpg")
    Image.new("RGBA", (48, 48), (0, 0, 255, 128)).save(root / "test" / "fear" / "alpha.png")
    ds = load_dataset(root)
    assert ds.report.converted == 3 and ds.report.files == 94
    assert ds.train.x.shape[1:] == (48, 48, 1) and ds.counts().loc["fear", "test"] == 4


def test_both_namings_and_any_case_map_to_canonical_classes(tmp_path: Path) -> None:
    mixed = ("ANGRY", "Disgusted", "fearful", "Happiness", "neutral", "Sadness", "Surprised")
    for root in (small_tree(tmp_path / "kaggle", EMOTION_FER), small_tree(tmp_path / "mixed", mixed)):
        counts = load_dataset(root).counts()
        assert (counts["train"] + counts["val"]).tolist() == [10] * 7


def test_fingerprint_depends_on_content_only(tmp_path: Path) -> None:
    first = small_tree(tmp_path / "a")
    copy = shutil.copytree(first, tmp_path / "b")
    renamed = small_tree(tmp_path / "c", EMOTION_FER)  # same pixels, Kaggle folder names
    assert load_dataset(first).fingerprint == load_dataset(copy).fingerprint == load_dataset(renamed).fingerprint
    Image.fromarray(np.zeros((48, 48), np.uint8)).save(copy / "test" / "sad" / "000.png")
    assert load_dataset(copy).fingerprint != load_dataset(first).fingerprint


def test_dataset_root_found_through_wrapper_folders(tmp_path: Path) -> None:
    small_tree(tmp_path / "zip" / "archive")
    assert load_dataset(tmp_path / "zip").counts().to_numpy().sum() == 91
    versions = tmp_path / "kagglehub" / "datasets" / "ananthu017" / "emotion-detection-fer" / "versions"
    small_tree(versions / "1", train=4)
    small_tree(versions / "2", train=6)
    assert load_dataset(tmp_path / "kagglehub").counts()[["train", "val"]].to_numpy().sum() == 42


def test_loading_never_writes_into_the_data_folder(tmp_path: Path) -> None:
    root = small_tree(tmp_path / "d")

    def snapshot() -> list[tuple[str, int, int]]:
        return sorted((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*"))

    before = snapshot()
    load_dataset(root)
    data._MEMO.clear()
    load_dataset(root)
    assert snapshot() == before


# ------------------------------------------------------------------------------------ errors
def test_missing_path_names_it(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(tmp_path / "nowhere")


def test_missing_test_folder(tmp_path: Path) -> None:
    root = small_tree(tmp_path / "d")
    shutil.rmtree(root / "test")
    with pytest.raises(DataError, match=r"no test/"):
        load_dataset(root)


def test_folder_without_dataset(tmp_path: Path) -> None:
    (tmp_path / "d" / "x").mkdir(parents=True)
    (tmp_path / "d" / "y").mkdir()
    with pytest.raises(DataError, match=r"neither train/ and test/.*fer2013.csv"):
        load_dataset(tmp_path / "d")


def test_split_without_images(tmp_path: Path) -> None:
    root = small_tree(tmp_path / "d")
    shutil.rmtree(root / "train")
    (root / "train").mkdir()
    with pytest.raises(DataError, match="no images"):
        load_dataset(root)


def test_empty_class_folder_is_an_error_but_a_missing_one_is_not(tmp_path: Path) -> None:
    root = small_tree(tmp_path / "d")
    shutil.rmtree(root / "test" / "disgust")
    assert load_dataset(root).counts().loc["disgust", "test"] == 0
    (root / "test" / "disgust").mkdir()
    with pytest.raises(DataError, match=r"test/disgust is empty"):
        load_dataset(root)


def test_unknown_class_folder_lists_accepted_names(tmp_path: Path) -> None:
    root = small_tree(tmp_path / "d")
    write_tree(root, {"contempt": 2}, {})
    with pytest.raises(DataError, match=r"unknown class folder train/contempt.*angry.*surprised") as info:
        load_dataset(root)
    assert "\n" not in str(info.value)


def test_corrupt_images_are_skipped_and_counted_or_raise_when_strict(tmp_path: Path) -> None:
    root = small_tree(tmp_path / "d")
    (root / "train" / "angry" / "bad.jpg").write_bytes(b"not an image")
    good = (root / "train" / "happy" / "000.png").read_bytes()
    (root / "train" / "happy" / "truncated.png").write_bytes(good[: len(good) // 2])
    ds = load_dataset(root)
    assert ds.report.skipped == ("train/angry/bad.jpg", "train/happy/truncated.png")
    assert ds.report.files == 93 and len(ds.train.y) + len(ds.val.y) == 70
    with pytest.raises(DataError, match=r"train/angry/bad.jpg \(and 1 more\).*strict"):
        load_dataset(root, strict=True)


def test_bad_options(tmp_path: Path) -> None:
    root = small_tree(tmp_path / "d")
    with pytest.raises(DataError, match="val_fraction"):
        load_dataset(root, val_fraction=1.0)
    with pytest.raises(DataError, match="subset"):
        load_dataset(root, subset=0.0)
    with pytest.raises(DataError, match="csv_validation='publictest' needs fer2013.csv"):
        load_dataset(root, csv_validation="publictest")


# --------------------------------------------------------------------------------------- CSV
def test_csv_labels_are_mapped_by_name_and_usage_to_splits(tmp_path: Path) -> None:
    csv = write_csv(tmp_path / "fer2013.csv", csv_rows())
    ds = load_dataset(csv)
    assert ds.layout == "csv" and ds.report == data.LoadReport(files=70, converted=0, skipped=())
    assert len(ds.train.y) + len(ds.val.y) == 42 and len(ds.test.y) == 28
    for split in (ds.train, ds.val, ds.test):
        csv_label = split.x[:, 0, 0, 0] // 30  # each image was filled with 30 * its CSV label
        names = [data.CSV_LABELS[label] for label in csv_label]
        assert [CLASSES[y] for y in split.y] == names
    neutral = ds.test.y[ds.test.x[:, 0, 0, 0] == 180]
    assert set(neutral.tolist()) == {CLASSES.index("neutral")}
    assert load_dataset(tmp_path).fingerprint == ds.fingerprint  # the folder holding fer2013.csv works too


def test_csv_publictest_becomes_validation(tmp_path: Path) -> None:
    write_csv(tmp_path / "fer2013.csv", csv_rows())
    ds = load_dataset(tmp_path, csv_validation="publictest", val_fraction=0.5)
    assert (len(ds.train.y), len(ds.val.y), len(ds.test.y)) == (42, 14, 14)
    assert ds.counts()["val"].tolist() == [2] * 7


def test_csv_wrong_columns(tmp_path: Path) -> None:
    csv = write_csv(tmp_path / "fer2013.csv", csv_rows()[:3], header="label,pixels,Usage")
    with pytest.raises(DataError, match=r"lacks column\(s\) emotion.*emotion, pixels, Usage"):
        load_dataset(csv)


def test_csv_bad_rows_are_skipped_or_raise_when_strict(tmp_path: Path) -> None:
    rows = csv_rows()
    rows[4] = ("3", " ".join(["7"] * 2303), "Training")
    rows[5] = ("9", rows[5][1], "Training")
    rows[6] = ("3", rows[6][1], "Validation")
    csv = write_csv(tmp_path / "fer2013.csv", rows)
    ds = load_dataset(csv)
    assert ds.report.files == 70 and len(ds.report.skipped) == 3
    assert ds.report.skipped[0] == "row 5: 2303 pixel values, expected 2304 (48x48)"
    assert ds.report.skipped[1].startswith("row 6: emotion '9'") and "Usage 'Validation'" in ds.report.skipped[2]
    with pytest.raises(DataError, match=r"row 5: 2303 pixel values.*\(and 2 more\).*strict"):
        load_dataset(csv, strict=True)


# ------------------------------------------------------------------------------------ caching
def test_cache_is_reused_across_loads_and_memoized_in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = small_tree(tmp_path / "d")
    calls = decode_spy(monkeypatch)
    first = load_dataset(root)
    assert len(calls) == 91 and len(list((data.cache_dir() / "data").glob("*.npz"))) == 1
    data._MEMO.clear()
    second = load_dataset(root, split_seed=5)
    assert len(calls) == 91 and second.fingerprint == first.fingerprint
    reads: list[Path] = []
    monkeypatch.setattr(data, "_read_cache", lambda path: reads.append(path))
    load_dataset(root)
    assert len(calls) == 91 and reads == []


def test_cache_is_invalidated_when_a_file_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = small_tree(tmp_path / "d")
    calls = decode_spy(monkeypatch)
    before = load_dataset(root)
    changed = root / "train" / "sad" / "000.png"
    Image.new("L", (48, 48), 7).save(changed)
    stat = changed.stat()
    os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    after = load_dataset(root)
    assert len(calls) == 182 and after.fingerprint != before.fingerprint
    assert len(list((data.cache_dir() / "data").glob("*.npz"))) == 1  # the stale cache was dropped


def test_corrupt_cache_file_is_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = small_tree(tmp_path / "d")
    first = load_dataset(root)
    (cache_file,) = (data.cache_dir() / "data").glob("*.npz")
    cache_file.write_bytes(b"not a zip")
    data._MEMO.clear()
    calls = decode_spy(monkeypatch)
    assert load_dataset(root).fingerprint == first.fingerprint and len(calls) == 91


def test_arrays_are_copies_safe_to_modify(tmp_path: Path) -> None:
    root = small_tree(tmp_path / "d")
    first = load_dataset(root)
    first.test.x[:] = 0
    first.train.x[:] = 0
    again = load_dataset(root)
    assert again.test.x.any() and again.train.x.any()


# ---------------------------------------------------------------------------------- splitting
UNEVEN = dict(zip(MSAMBARE, (40, 5, 30, 60, 25, 20, 1)))


def test_validation_is_stratified_and_a_single_image_class_stays_in_train(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "d", UNEVEN, dict.fromkeys(MSAMBARE, 2))
    counts = load_dataset(root, val_fraction=0.2).counts()
    for name, n in UNEVEN.items():
        assert abs(counts.loc[name, "val"] - 0.2 * n) <= 1
    assert counts.loc["surprise", "train"] == 1 and counts.loc["surprise", "val"] == 0


def test_split_is_stable_per_seed_and_keeps_test_apart(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "d", UNEVEN, dict.fromkeys(MSAMBARE, 2))
    a, b, c = load_dataset(root), load_dataset(root), load_dataset(root, split_seed=1)
    assert np.array_equal(a.val.x, b.val.x) and np.array_equal(a.train.y, b.train.y)
    assert hashes(a.val) != hashes(c.val)
    for ds in (a, c):
        assert not hashes(ds.train) & hashes(ds.val)
        assert hashes(ds.train) | hashes(ds.val) == hashes(a.train) | hashes(a.val)
        assert not (hashes(ds.train) | hashes(ds.val)) & hashes(ds.test)
        assert np.array_equal(ds.test.x, a.test.x)


def test_subset_takes_a_stratified_nested_share_of_train_only(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "d", UNEVEN, dict.fromkeys(MSAMBARE, 2))
    full, half, quarter = (load_dataset(root, subset=s) for s in (1.0, 0.5, 0.25))
    for name, n in zip(CLASSES, full.counts()["train"]):
        assert abs(half.counts().loc[name, "train"] - 0.5 * n) <= 1 and half.counts().loc[name, "train"] >= 1
    assert hashes(quarter.train) < hashes(half.train) < hashes(full.train)
    assert hashes(half.val) == hashes(full.val) and np.array_equal(half.test.x, full.test.x)


# ------------------------------------------------------------------------------------ fetching
def test_fetch_failure_says_how_to_place_the_data_by_hand(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def offline(handle: str) -> str:
        raise ConnectionError("Failed to resolve host\nretrying gave up")

    monkeypatch.setitem(sys.modules, "kagglehub", types.SimpleNamespace(dataset_download=offline))
    with pytest.raises(DataError) as info:
        data.fetch(tmp_path / "fer")
    message = str(info.value)
    assert "\n" not in message and "Failed to resolve host" in message
    assert "kaggle.com/datasets/ananthu017/emotion-detection-fer" in message and "DEST/train/<class>/" in message
    assert not (tmp_path / "fer").exists()


def test_fetch_without_kagglehub_names_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "kagglehub", None)
    with pytest.raises(DataError, match="pip install kagglehub") as info:
        data.fetch()
    assert "\n" not in str(info.value)


def test_fetch_into_a_folder_holding_the_data_does_not_download(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "kagglehub", None)
    root = small_tree(tmp_path / "fer", train=1, test=1)
    assert data.fetch(root) == root
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match="holds no train/ and test/"):
        data.fetch(tmp_path / "other")


# ---------------------------------------------------------------------------------- real data
@pytest.mark.realdata
def test_real_fer2013_folder_loads_with_expected_counts() -> None:
    if not REAL_DATA.is_dir():
        pytest.skip(f"real FER2013 faces not found at {REAL_DATA} (only shared checkouts have them)")
    ds = load_dataset(REAL_DATA)
    assert len(ds.train.y) + len(ds.val.y) == 24403 and len(ds.test.y) == 4306
    assert (ds.counts() > 0).all().all() and len(ds.counts()) == 7
    assert ds.report.converted == 0 and ds.report.skipped == () and not ds.synthetic
