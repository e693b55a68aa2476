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
    return train(config, dataset, root / "run").run_dir


# Seconds the longest tests took on a 2-core AMD EPYC, rounded, for the order in which they start: `make test`
# runs the suite on 2 workers (pytest-xdist, one test at a time each: --maxschedchunk 1), and a worker that
# starts a long test last leaves the other idle meanwhile. Longest first, each worker takes the next test as it
# frees up, so both end close together. The figures are a clean clone's --durations lines on one with AVX-512
# (2026-12-07), but for the first seven long tests': those are from one without it, about 2.5 times slower (an
# `-m slow` run's progress; the demo and the DenseNet169 test were stopped past them). Order only: nothing here
# is asserted.
LONGEST_FIRST = {
    # long (not in CI)
    "test_the_papers_model_with_its_defaults_learns_real_faces": 2100,
    "test_the_demo_searches_beat_the_defaults_and_every_final_run_learns": 1800,
    "test_the_default_configuration_learns_real_faces": 1200,
    "test_accuracy_benchmark_runs_quick_and_writes_its_rows": 680,
    "test_every_benchmark_runs_quick_and_prints_its_rows": 500,
    "test_frozen_momentum_benchmark_runs_quick_and_writes_a_row_per_setting": 270,
    "test_the_gpu_check_runs_under_jax_and_writes_its_table_part_by_part": 240,
    "test_frozen_augmentation_benchmark_runs_quick_and_writes_its_rows": 40,
    "test_learning_benchmark_runs_quick_and_fills_each_experiments_markers": 34,
    # slow, in CI (the seeded kill loop on SQLite; on PostgreSQL it is long)
    "test_another_backend_trains_a_learner_searches_and_reports": 217,
    "test_accuracy_benchmark_runs_the_papers_model_in_both_regimes_quick": 157,
    "test_sample_is_neither_trivial_nor_hopeless_next_to_real_faces": 77,
    "test_a_seeded_loop_of_kills_ends_with_exactly_the_trials_asked_for": 112,
    "test_report_of_a_tiny_real_search_and_final_training": 58,
    "test_three_workers_fill_twelve_trials_and_a_killed_ones_trial_is_failed_and_requeued": 58,
    "test_memory_stays_flat_across_real_trials": 44,
    # fast
    "test_gradients_on_another_backend_are_tensorflows_on_the_same_weights": 48,
    "test_a_curve_trains_every_run_resumes_and_is_reported": 44,
    "test_every_search_says_its_estimate_from_its_first_trial_then_from_the_kept_probe": 43,
    "test_a_real_edge_search_measures_two_backbones": 34,
    "test_edge_benchmark_runs_quick_and_writes_its_front": 27,
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    unslow = [item.nodeid for item in items if item.get_closest_marker("long") and not item.get_closest_marker("slow")]
    if unslow:  # `make test` deselects the slow tests only: a long one not also slow would run there
        raise pytest.UsageError(f"marked long but not slow: {', '.join(unslow)}")
    items.sort(key=lambda item: -LONGEST_FIRST.get(getattr(item, "originalname", item.name), 0))  # stable
