"""Shared fixtures: an isolated decode cache per test and one generated sample dataset per session."""
from __future__ import annotations

from pathlib import Path

import pytest

from study.sample import write_sample


@pytest.fixture(autouse=True)
def _isolated_cache(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Give each test its own FER_STUDY_CACHE so no test reads another's cached arrays or ~/.cache."""
    monkeypatch.setenv("FER_STUDY_CACHE", str(tmp_path_factory.mktemp("fer-study-cache")))


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small generated dataset (per_class=30, seed 0), written once per session: treat it as read-only."""
    return write_sample(tmp_path_factory.mktemp("sample") / "fer-sample", per_class=30, seed=0)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished run of a tiny mini-Xception (1 epoch on a 20-per-class sample, ~10 s on a CPU),
    for the inference tests: a real model.keras with the toolkit's input and output, nothing more."""
    from study.config import TrainConfig
    from study.data import load_dataset
    from study.training import train

    root = tmp_path_factory.mktemp("tiny-run")
    with pytest.MonkeyPatch.context() as patch:  # session scope: the per-test cache fixture is not active yet
        patch.setenv("FER_STUDY_CACHE", str(root / "cache"))
        dataset = load_dataset(write_sample(root / "sample", per_class=20, seed=0))
    config = TrainConfig(regime="scratch", backbone="mini_xception", epochs=1, batch_size=16,
                         dense1_units=16, dense2_units=16, dense3_units=16)
    return train(config, dataset, root / "run", progress=False).run_dir
