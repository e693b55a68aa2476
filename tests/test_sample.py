"""The generated sample: deterministic, FER-like layout and imbalance, marked as synthetic."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from study.data import CLASSES, SYNTHETIC_MARKER, load_dataset
from study.errors import DataError
from study.sample import FOLDER_NAMES, class_counts, render_face, write_sample


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_identical_bytes_and_another_seed_differs(tmp_path: Path) -> None:
    a = tree_bytes(write_sample(tmp_path / "a", per_class=8, seed=3))
    b = tree_bytes(write_sample(tmp_path / "b", per_class=8, seed=3))
    c = tree_bytes(write_sample(tmp_path / "c", per_class=8, seed=4))
    assert a == b
    images = [name for name in a if name.endswith(".png")]
    assert images and a.keys() == c.keys() and all(a[name] != c[name] for name in images)


def test_layout_uses_kaggle_folder_names_and_fer_imbalance(sample_dir: Path) -> None:
    expected = class_counts(per_class=30)
    for split in ("train", "test"):
        assert sorted(p.name for p in (sample_dir / split).iterdir()) == sorted(FOLDER_NAMES.values())
        found = {c: len(list((sample_dir / split / FOLDER_NAMES[c]).glob("*.png"))) for c in CLASSES}
        assert found == expected[split]
        assert min(found, key=found.get) == "disgust" and min(found.values()) >= 3
    assert abs(np.mean(list(expected["train"].values())) - 30) < 1


def test_class_counts_scale_with_per_class_and_keep_a_floor() -> None:
    big = class_counts(per_class=120)
    assert abs(np.mean(list(big["train"].values())) - 120) < 1
    assert big["train"]["disgust"] < big["train"]["surprise"] < big["train"]["happy"]
    assert abs(sum(big["test"].values()) / (sum(big["test"].values()) + sum(big["train"].values())) - 0.2) < 0.01
    tiny = class_counts(per_class=1)
    assert min(tiny["train"].values()) == 3 and min(tiny["test"].values()) == 3


def test_images_are_48x48_grayscale(sample_dir: Path) -> None:
    for path in list((sample_dir / "train" / "happy").glob("*.png"))[:5]:
        with Image.open(path) as image:
            assert image.mode == "L" and image.size == (48, 48)
    face = render_face("surprise", np.random.default_rng(0))
    assert face.shape == (48, 48) and face.dtype == np.uint8 and face.std() > 10


def test_marker_makes_load_dataset_report_synthetic(sample_dir: Path) -> None:
    marker = json.loads((sample_dir / SYNTHETIC_MARKER).read_text())
    assert marker["synthetic"] is True and marker["seed"] == 0 and marker["per_class"] == 30
    assert "not real faces" in marker["note"]
    ds = load_dataset(sample_dir)
    assert ds.synthetic and ds.report.converted == 0 and ds.report.skipped == ()
    assert ds.counts()["test"].to_dict() == marker["counts"]["test"]


def test_refuses_a_foreign_non_empty_folder_but_replaces_a_previous_sample(tmp_path: Path) -> None:
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(DataError, match="not empty and is not a previous sample"):
        write_sample(foreign, per_class=3)
    assert (foreign / "notes.txt").read_text() == "keep me"
    out = write_sample(tmp_path / "s", per_class=8)
    write_sample(out, per_class=3)
    assert len(list(out.rglob("*.png"))) == sum(sum(split.values()) for split in class_counts(3).values())
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
