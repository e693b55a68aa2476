"""The frozen-feature cache: exact where it claims to be, keyed by what decides the numbers, shared."""
from __future__ import annotations

import dataclasses
import json

import keras
import numpy as np
import pytest

from study import features
from study.config import TrainConfig
from study.data import CLASSES, Dataset, LoadReport, Split
from study.features import cached_views, feature_dataset, feature_key
from study.model import build_model
from study.pipeline import make_dataset
from study.training import train

FAST = {"backbone": "mini_xception", "batch_size": 16, "rotation": 0.0, "zoom": 0.0, "flip": False,
        "dense1_units": 16, "dense2_units": 16, "dense3_units": 16}
AUGMENTED = {"rotation": 10.0, "zoom": 0.1, "flip": True}
VAL_COLUMNS = ["loss", "accuracy", "val_loss", "val_accuracy", "val_cross_entropy"]


def _split(rng: np.random.Generator, n: int) -> Split:
    y = np.arange(n) % len(CLASSES)
    x = (y[:, None, None, None] * 30 + rng.integers(0, 40, (n, 48, 48, 1))).astype(np.uint8)
    return Split(x, y.astype(np.int64))


def tiny_dataset(seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    return Dataset(train=_split(rng, 70), val=_split(rng, 28), test=_split(rng, 28), fingerprint=f"tiny{seed}",
                   source="memory", layout="arrays", synthetic=True, report=LoadReport(0, 0, ()))


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> tuple[str, str]:
    """Two different scratch runs' model.keras: the transfer regime's pretrained backbones."""
    root = tmp_path_factory.mktemp("pre")
    paths = []
    for seed in (0, 1):
        config = TrainConfig(regime="scratch", epochs=1, seed=seed, learning_rate=0.05, momentum=0.9, **FAST)
        paths.append(str(train(config, tiny_dataset(), root / f"run{seed}").run_dir / "model.keras"))
    return paths[0], paths[1]


@pytest.fixture(autouse=True)
def _empty_memo():
    """Each test starts without features in memory (its FER_STUDY_CACHE is its own: conftest)."""
    features.forget()
    yield
    features.forget()


def _transfer(weights: str, **changes) -> TrainConfig:
    values = {"regime": "transfer", "weights": weights, "frozen_epochs": 3, "frozen_patience": 5, "epochs": 0,
              "frozen_learning_rate": 0.05, "momentum": 0.9, **FAST, **changes}
    return TrainConfig(**values)


def test_cached_features_give_the_uncached_validation_metrics(tmp_path, pretrained):
    data = tiny_dataset()
    cached = train(_transfer(pretrained[0]), data, tmp_path / "cached")
    uncached = train(_transfer(pretrained[0], feature_cache=False), data, tmp_path / "uncached")
    np.testing.assert_allclose(cached.history[VAL_COLUMNS], uncached.history[VAL_COLUMNS], rtol=1e-5, atol=1e-6)
    for key in ("accuracy", "loss", "macro_f1"):
        assert cached.metrics["val"][key] == pytest.approx(uncached.metrics["val"][key], rel=1e-5, abs=1e-6)
    manifest = json.loads((tmp_path / "cached" / "manifest.json").read_text())
    assert manifest["frozen_features"]["source"] == "computed" and manifest["frozen_features"]["views"] == 1
    assert "frozen_features" not in json.loads((tmp_path / "uncached" / "manifest.json").read_text())


def test_the_saved_model_holds_the_head_trained_on_features(tmp_path, pretrained):
    data = tiny_dataset()
    run_dir = train(_transfer(pretrained[0]), data, tmp_path / "run").run_dir
    model = keras.models.load_model(run_dir / "model.keras")
    probs = model.predict(make_dataset(data.val, 16, training=False), verbose=0)
    np.testing.assert_allclose(probs, np.load(run_dir / "predictions.npz")["val_probs"], atol=1e-5)


def test_two_trials_share_the_features_in_memory_then_on_disk(tmp_path, pretrained):
    data = tiny_dataset()
    sources = []
    for i, head in enumerate((16, 32)):
        train(_transfer(pretrained[0], dense1_units=head), data, tmp_path / f"t{i}")
        sources.append(json.loads((tmp_path / f"t{i}" / "manifest.json").read_text())["frozen_features"])
    features.forget()
    train(_transfer(pretrained[0], seed=3), data, tmp_path / "t2")
    sources.append(json.loads((tmp_path / "t2" / "manifest.json").read_text())["frozen_features"])
    assert [s["source"] for s in sources] == ["computed", "memory", "disk"]
    assert len({s["key"] for s in sources}) == 1


def _key(config: TrainConfig, data: Dataset) -> str:
    keras.mixed_precision.set_dtype_policy(config.precision)
    try:
        return feature_key(build_model(config), config, data, cached_views(config))
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
        keras.backend.clear_session()


def test_the_key_changes_with_weights_data_views_and_precision(pretrained):
    data = tiny_dataset()
    base = _key(_transfer(pretrained[0]), data)
    changed_pixel = dataclasses.replace(data, train=Split(data.train.x.copy(), data.train.y))
    changed_pixel.train.x[0, 0, 0, 0] ^= 1
    assert _key(_transfer(pretrained[1]), data) != base
    assert _key(_transfer(pretrained[0]), changed_pixel) != base
    assert _key(_transfer(pretrained[0]), tiny_dataset(seed=1)) != base
    assert _key(_transfer(pretrained[0], precision="mixed_bfloat16"), data) != base
    views = {_key(_transfer(pretrained[0], **AUGMENTED, frozen_augmentation="views", frozen_feature_views=k), data)
             for k in (2, 3)}
    assert len(views) == 2 and base not in views


def test_what_does_not_change_the_features_keeps_the_key(pretrained):
    data = tiny_dataset()
    base = _key(_transfer(pretrained[0]), data)
    assert _key(_transfer(pretrained[0], dense1_units=64, frozen_learning_rate=0.01, seed=7), data) == base
    assert _key(_transfer(pretrained[0], **AUGMENTED, frozen_augmentation="none"), data) == base


def test_which_runs_use_the_cache():
    assert cached_views(_transfer("imagenet")) == 1  # no augmentation: exact
    assert cached_views(_transfer("imagenet", **AUGMENTED)) == 0  # live augmentation: the paper's schedule
    assert cached_views(_transfer("imagenet", **AUGMENTED, frozen_augmentation="none")) == 1
    assert cached_views(_transfer("imagenet", **AUGMENTED, frozen_augmentation="views", frozen_feature_views=3)) == 3
    assert cached_views(_transfer("imagenet", feature_cache=False)) == 0
    assert cached_views(TrainConfig(regime="scratch", **FAST)) == 0


def test_augmented_views_are_cached_and_drawn_per_image(tmp_path, pretrained):
    data = tiny_dataset()
    config = _transfer(pretrained[0], **AUGMENTED, frozen_augmentation="views", frozen_feature_views=3,
                       frozen_epochs=2)
    result = train(config, data, tmp_path / "views")
    assert result.history["phase"].tolist() == ["frozen", "frozen"]
    (cached,) = features._MEMO.values()
    assert cached.train.shape[:2] == (3, len(data.train.y))
    assert not np.allclose(cached.train[0], cached.train[1])  # the views differ
    x, _ = feature_dataset(cached, data.train, 70, training=True, seed=0)[0]
    rows = {tuple(np.round(r, 5)) for v in range(3) for r in cached.train[v]}
    assert all(tuple(np.round(r, 5)) in rows for r in x)
