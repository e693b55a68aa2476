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
