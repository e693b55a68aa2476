"""--track tensorboard / mlflow: every trial and final run, read back with the libraries' own readers.

TensorBoard's event files are read with TensorBoard's ``EventMultiplexer`` (its HParams sessions
with the HParams plugin's own parser), MLflow's store (SQLite in a temporary ``mlruns``, no server)
with ``MlflowClient``. Searches train with a fake ``train()`` that reports epochs as train() does
(history rows with their phase, then Keras's epoch logs); one test trains a real tiny model.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState

from study.errors import TrialFailed
from study.tracking import ENDED, RUNNING, Outcome, RunInfo, Tracking, open_tracking
from study.training import HistoryRows, RunResult
from study.experiments import curve as curve_mod
from study.experiments import final as final_mod
from study.tuning import objective as objective_mod
from tests.test_tuning import search, storage_url, trials_of

mlflow = pytest.importorskip("mlflow")  # the dev extra installs it; without it these tests cannot read a store
from mlflow.tracking import MlflowClient  # noqa: E402
from tensorboard.backend.event_processing.plugin_event_multiplexer import EventMultiplexer  # noqa: E402
from tensorboard.plugins.hparams import api_pb2, metadata as hparams_metadata  # noqa: E402
from tensorboard.util import tensor_util  # noqa: E402

BOTH = ("--track", "tensorboard", "--track", "mlflow")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _local_mlruns(monkeypatch, tmp_path):
    """MLflow's default place is ./mlruns: here, the test's own folder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")


# --------------------------------------------------------------------------- a fake train()
def fake_train(calls: list | None = None, fail: tuple[str, ...] = (), prune: tuple[str, ...] = ()):
    """Reports each epoch as train() does (the history row, then every callback's epoch end) and writes
    a run directory; the run named in ``fail`` raises TrialFailed, in ``prune`` TrialPruned, after epoch 1."""
    def train(config, data, run_dir, *, callbacks=(), evaluate_test=False, model_dropped=None, **kwargs):
        run_dir = Path(run_dir)
        if calls is not None:
            calls.append(run_dir.name)
        number = int(run_dir.name.split("-")[-1].removeprefix("seed")) if run_dir.name[-1].isdigit() else 0
        value = 0.3 + 0.05 * number
        phases = [("frozen", config.frozen_epochs), ("finetune", config.epochs)] if config.regime == "transfer" \
            else [("scratch", config.epochs)]
        rows, epoch = [], 0
        for phase, count in phases:
            for _ in range(count):
                epoch += 1
                row = {"epoch": epoch, "phase": phase, "loss": 2.0 - 0.1 * epoch, "cross_entropy": 1.9 - 0.1 * epoch,
                       "accuracy": value, "val_loss": 1.5, "val_cross_entropy": 1.4, "val_accuracy": value,
                       "val_top_answer_share": 0.5, "learning_rate": 0.01 if phase == "frozen" else 0.001}
                rows.append(row)
                for callback in callbacks:
                    if isinstance(callback, HistoryRows):
                        callback.history_row(dict(row))
                for callback in callbacks:
                    callback.on_epoch_end(epoch - 1, {k: row[k] for k in ("loss", "val_loss", "val_accuracy")})
                if run_dir.name in fail:
                    raise TrialFailed(f"the training loss became nan in epoch {epoch} ({phase} phase)")
                if run_dir.name in prune:
                    raise optuna.TrialPruned()
        run_dir.mkdir(parents=True)
        val = {"accuracy": value, "loss": 1.2, "macro_f1": value - 0.1, "learned": True,
               "baseline": {"majority_rate": 0.25}}
        metrics = {"val": val, "stall": {"stalled": False}, **({"test": dict(val)} if evaluate_test else {})}
        dropped = model_dropped(metrics) if model_dropped else None
        if dropped is None:
            (run_dir / "model.keras").write_bytes(b"a model")
        (run_dir / "metrics.json").write_text(json.dumps(metrics))
        (run_dir / "config.json").write_text(json.dumps({"regime": config.regime, "seed": config.seed}))
        pd.DataFrame(rows).to_csv(run_dir / "history.csv", index=False)
        (run_dir / "manifest.json").write_text(json.dumps({"model": {"kept": dropped is None}}))
        return RunResult(run_dir, config, pd.DataFrame(rows), metrics, epoch, 0.01)
    return train


# ------------------------------------------------------------------------------- readers
def mlflow_runs(experiment: str) -> dict[str, mlflow.entities.Run]:
    """The experiment's active runs by name (a duplicate would fail here)."""
    client = MlflowClient(tracking_uri=f"sqlite:///{Path('mlruns').resolve() / 'mlflow.db'}")
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no MLflow experiment {experiment}"
    runs = client.search_runs([found.experiment_id])
    names = [r.info.run_name for r in runs]
    assert len(names) == len(set(names)), f"duplicate runs: {sorted(names)}"
    return {r.info.run_name: r for r in runs}


def metric_steps(run: mlflow.entities.Run, name: str) -> list[tuple[int, float]]:
    client = MlflowClient(tracking_uri=f"sqlite:///{Path('mlruns').resolve() / 'mlflow.db'}")
    return [(m.step, round(m.value, 4)) for m in client.get_metric_history(run.info.run_id, name)]


def artifacts(run: mlflow.entities.Run) -> set[str]:
    client = MlflowClient(tracking_uri=f"sqlite:///{Path('mlruns').resolve() / 'mlflow.db'}")
    return {f.path for f in client.list_artifacts(run.info.run_id)}


class Board:
    """A study's TensorBoard folder as TensorBoard reads it."""

    def __init__(self, folder: Path) -> None:
        assert folder.is_dir(), f"no TensorBoard folder {folder}"
        self.mux = EventMultiplexer(size_guidance={"tensors": 0})
        self.mux.AddRunsFromDirectory(str(folder))
        self.mux.Reload()

    def runs(self) -> list[str]:
        return sorted(self.mux.Runs())

    def scalar(self, run: str, tag: str) -> list[tuple[int, float]]:
        return [(e.step, round(float(tensor_util.make_ndarray(e.tensor_proto)), 4)) for e in self.mux.Tensors(run, tag)]

    def sessions(self) -> dict[str, dict]:
        """Run -> its HParams session: the hyperparameters and the end status."""
        content = self.mux.PluginRunToTagToContent(hparams_metadata.PLUGIN_NAME)
        found = {}
        for run, tags in content.items():
            if hparams_metadata.SESSION_START_INFO_TAG not in tags:
                continue
            start = hparams_metadata.parse_session_start_info_plugin_data(tags[hparams_metadata.SESSION_START_INFO_TAG])
            end = hparams_metadata.parse_session_end_info_plugin_data(tags[hparams_metadata.SESSION_END_INFO_TAG])
            hparams = {k: v.string_value or v.number_value or v.bool_value for k, v in start.hparams.items()}
            found[run] = {"hparams": hparams, "status": end.status}
        return found


# ------------------------------------------------------------------------------------ tests
def test_every_trial_and_final_run_lands_in_tensorboard_and_mlflow(monkeypatch, tmp_path, sample_dir):
    """A transfer search (phases frozen, finetune) whose trial 1 fails and trial 2 is pruned, then a final run."""
    monkeypatch.setattr(objective_mod, "train", fake_train(fail=("trial-1",), prune=("trial-2",)))
    result = search(tmp_path, sample_dir, "--max-epochs", "2", "--keep-models", "1", *BOTH, trials=4,
                    regime="transfer")
    assert result.exit_code == 0, result.output
    states = {t.number: t.state for t in trials_of(tmp_path, "transfer-optuna")}
    assert states == {0: TrialState.COMPLETE, 1: TrialState.FAIL, 2: TrialState.PRUNED, 3: TrialState.COMPLETE,
                      4: TrialState.COMPLETE}
    monkeypatch.setattr(final_mod, "train", fake_train())
    final_mod.train_from_study("transfer-optuna", storage_url(tmp_path), seeds=1, runs_dir=tmp_path / "runs",
                               track=("tensorboard", "mlflow"))

    # TensorBoard: a session per trial and final run, each phase of a run its own TensorBoard run.
    board = Board(tmp_path / "runs" / "tensorboard" / "transfer-optuna")
    sessions = board.sessions()
    assert sorted(sessions) == ["final-seed0", "trial-0", "trial-1", "trial-2", "trial-3", "trial-4"]
    assert {run: s["hparams"]["state"] for run, s in sessions.items()} == {
        "trial-0": "COMPLETE", "trial-1": "FAIL", "trial-2": "PRUNED", "trial-3": "COMPLETE", "trial-4": "COMPLETE",
        "final-seed0": "COMPLETE"}
    assert sessions["trial-1"]["status"] == api_pb2.STATUS_FAILURE and sessions["trial-0"]["status"] == api_pb2.STATUS_SUCCESS
    assert sessions["final-seed0"]["hparams"]["kind"] == "final"
    sampled = {t.number: t.params for t in trials_of(tmp_path, "transfer-optuna")}
    assert sessions["trial-3"]["hparams"]["optimizer"] == sampled[3]["optimizer"]  # the trial's sampled values
    assert board.scalar("trial-0/frozen", "val_accuracy") == [(1, 0.3), (2, 0.3)]
    assert board.scalar("trial-0/finetune", "learning_rate") == [(3, 0.001), (4, 0.001)]  # global epochs
    assert {"loss", "cross_entropy", "accuracy", "val_loss", "val_cross_entropy", "val_accuracy",
            "val_top_answer_share", "learning_rate"} <= set(board.mux.GetAccumulator("trial-0/frozen").Tags()["tensors"])
    assert board.scalar("trial-2/frozen", "val_accuracy") == [(1, 0.4)] and "trial-2/finetune" not in board.runs()
    assert board.scalar("trial-4", "result/objective") == [(4, 0.5)]
    assert board.scalar("final-seed0", "result/test_accuracy") == [(4, 0.3)]
    assert "error" in board.mux.GetAccumulator("trial-1").Tags()["tensors"]
    # the study's HParams columns: every parameter its runs may have, and the results as metrics
    content = board.mux.PluginRunToTagToContent(hparams_metadata.PLUGIN_NAME)["."][hparams_metadata.EXPERIMENT_TAG]
    experiment = hparams_metadata.parse_experiment_plugin_data(content)
    assert [m.name.tag for m in experiment.metric_infos][:2] == ["result/objective", "result/val_accuracy"]
    assert {"optimizer", "frozen_learning_rate", "state", "kind", "seed"} <= {h.name for h in experiment.hparam_infos}

    # MLflow: one experiment, one run per trial and final run, with its state, metrics, params, artifacts.
    runs = mlflow_runs("transfer-optuna")
    assert sorted(runs) == ["final-seed0", "trial-0", "trial-1", "trial-2", "trial-3", "trial-4"]
    assert {name: r.info.status for name, r in runs.items()} == {
        "trial-0": "FINISHED", "trial-1": "FAILED", "trial-2": "KILLED", "trial-3": "FINISHED", "trial-4": "FINISHED",
        "final-seed0": "FINISHED"}
    assert runs["trial-2"].data.tags["fer_study.state"] == "PRUNED"
    assert runs["trial-1"].data.tags["fer_study.error"] == "the training loss became nan in epoch 1 (frozen phase)"
    assert runs["trial-3"].data.tags["fer_study.phases"] == "frozen 1-2, finetune 3-4"
    assert runs["trial-3"].data.tags["fer_study.trial"] == "3" and runs["final-seed0"].data.tags["fer_study.kind"] == "final"
    assert runs["trial-3"].data.params["optimizer"] == str(sampled[3]["optimizer"])
    assert runs["trial-3"].data.params["regime"] == "transfer"  # the whole TrainConfig too
    assert metric_steps(runs["trial-3"], "val_accuracy") == [(1, 0.45), (2, 0.45), (3, 0.45), (4, 0.45)]
    assert runs["trial-4"].data.metrics["result/objective"] == pytest.approx(0.5)
    assert runs["final-seed0"].data.metrics["result/test_accuracy"] == pytest.approx(0.3)
    # --keep-models 1: only the best trial keeps its model, in its run directory and in MLflow; final runs keep theirs
    assert artifacts(runs["trial-4"]) == {"config.json", "history.csv", "metrics.json", "manifest.json", "model.keras"}
    assert "model.keras" not in artifacts(runs["trial-0"]) and "model.keras" not in artifacts(runs["trial-3"])
    assert "model.keras" in artifacts(runs["final-seed0"]) and not artifacts(runs["trial-1"])


def test_a_resumed_search_adds_what_is_missing_and_nothing_twice(monkeypatch, tmp_path, sample_dir):
    """Two trials untracked, then resumed to three tracked (the two are caught up), then to four."""
    calls: list[str] = []
    monkeypatch.setattr(objective_mod, "train", fake_train(calls))
    assert search(tmp_path, sample_dir, "--max-epochs", "2", trials=2).exit_code == 0
    assert not (tmp_path / "runs" / "tensorboard").exists() and not (tmp_path / "mlruns").exists()
    assert search(tmp_path, sample_dir, "--max-epochs", "2", *BOTH, trials=3).exit_code == 0
    assert search(tmp_path, sample_dir, "--max-epochs", "2", *BOTH, trials=4).exit_code == 0
    assert search(tmp_path, sample_dir, "--max-epochs", "2", *BOTH, trials=4).exit_code == 0  # full: nothing to add
    assert calls == ["trial-0", "trial-1", "trial-2", "trial-3"]  # tracking trained nothing again

    runs = mlflow_runs("scratch-optuna")
    assert sorted(runs) == ["trial-0", "trial-1", "trial-2", "trial-3"]
    assert {r.info.status for r in runs.values()} == {"FINISHED"}
    assert metric_steps(runs["trial-0"], "val_accuracy") == [(1, 0.3), (2, 0.3)]  # from its history.csv
    assert runs["trial-1"].data.metrics["result/objective"] == pytest.approx(0.35)
    # the default --keep-models 3: trial 3 pushed trial 0 (caught up with its model) out of the best three
    assert "model.keras" in artifacts(runs["trial-1"]) and "model.keras" not in artifacts(runs["trial-0"])
    board = Board(tmp_path / "runs" / "tensorboard" / "scratch-optuna")
    assert sorted(board.sessions()) == ["trial-0", "trial-1", "trial-2", "trial-3"]
    assert board.scalar("trial-0/scratch", "val_accuracy") == [(1, 0.3), (2, 0.3)]
    assert len(list((tmp_path / "runs" / "tensorboard" / "scratch-optuna" / "trial-0").glob("events*"))) == 1


def test_a_run_whose_process_died_is_ended_once_on_resume(tmp_path):
    """A tracked run left RUNNING (its process was killed) is ended as the store ended it, not added again."""
    run = RunInfo("trial-5", "trial", {"optimizer": "sgd"}, {"regime": "scratch"}, 5)
    dying = open_tracking(("tensorboard", "mlflow"), "s", runs_dir=tmp_path / "runs")
    dying.run_started(run)
    dying.epoch_ended("trial-5", 1, "scratch", {"val_accuracy": 0.4})
    # ... killed here: nothing more is written
    resumed = open_tracking(("tensorboard", "mlflow"), "s", runs_dir=tmp_path / "runs")
    assert {t.name: t.logged("trial-5") for t in resumed.trackers} == {"tensorboard": RUNNING, "mlflow": RUNNING}
    told = resumed.replay(run, [(1, "scratch", {"val_accuracy": 0.4})], Outcome("FAIL", error="worker died"))
    assert told == ["tensorboard", "mlflow"]
    assert resumed.replay(run, [], Outcome("FAIL", error="worker died")) == []  # held to its end: left alone
    assert {t.name: t.logged("trial-5") for t in resumed.trackers} == {"tensorboard": ENDED, "mlflow": ENDED}
    resumed.close()
    dying.close()
    (found,) = mlflow_runs("s").values()
    assert found.info.status == "FAILED" and found.data.tags["fer_study.error"] == "worker died"
    assert metric_steps(found, "val_accuracy") == [(1, 0.4)]  # the epoch was not logged twice
    board = Board(tmp_path / "runs" / "tensorboard" / "s")
    assert board.sessions()["trial-5"]["hparams"]["state"] == "FAIL"
    assert board.scalar("trial-5/scratch", "val_accuracy") == [(1, 0.4)]


def test_a_failing_tracker_warns_once_and_the_search_goes_on(monkeypatch, tmp_path, sample_dir):
    """A full disk under TensorBoard's files, and an MLflow server that is gone."""
    from study.tracking.tensorboard_events import EventFile

    monkeypatch.setattr(objective_mod, "train", fake_train())
    writes = []

    def full_disk(self, event):
        writes.append(event)
        if len(writes) > 3:
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(EventFile, "add", full_disk)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # nothing listens there
    result = search(tmp_path, sample_dir, "--max-epochs", "2", *BOTH, trials=3)
    assert result.exit_code == 0, result.output
    assert [t.state for t in trials_of(tmp_path, "scratch-optuna")] == [TrialState.COMPLETE] * 3
    lines = [line for line in result.output.splitlines() if line.startswith("tracking:")]
    assert len(lines) == 2, result.output
    assert lines[0].startswith("tracking: mlflow could not start (") and "training goes on without it" in lines[0]
    assert lines[1] == ("tracking: tensorboard failed (OSError: [Errno 28] No space left on device); training goes "
                        "on without it")
    assert len(writes) == 4  # dropped at its first failure: never asked again


def test_a_tracker_error_inside_a_trial_never_fails_the_trial():
    """Every call of a tracker is guarded: the first error drops it, said once; the others go on."""
    class Broken:
        name = "broken"

        def __getattr__(self, method):
            def fail(*args):
                raise RuntimeError("server gone\nmore lines")
            return fail

    class Kept:
        name = "kept"
        calls: list[str] = []

        def __getattr__(self, method):
            return lambda *args: self.calls.append(method)

    said: list[str] = []
    tracking = Tracking([Broken(), Kept()], say=said.append)
    run = RunInfo("trial-0", "trial", {})
    tracking.run_started(run)
    tracking.epoch_ended("trial-0", 1, "scratch", {"loss": 1.0, "phase": "scratch", "epoch": 1})
    tracking.run_ended("trial-0", Outcome("COMPLETE"))
    assert said == ["tracking: broken failed (RuntimeError: server gone); training goes on without it"]
    assert Kept.calls == ["run_started", "epoch_ended", "run_ended"] and tracking.names == ["kept"]
    with pytest.warns(UserWarning, match="tracking: broken failed"):  # a library caller without «say»
        Tracking([Broken()]).run_started(run)


def test_curve_runs_are_tracked_in_the_curves_experiment(monkeypatch, tmp_path, sample_dir):
    from study.data import load_dataset

    monkeypatch.setattr(curve_mod, "train", fake_train(fail=("transfer-f0.5-seed0",)))
    plan = curve_mod.plan_curve(curve_mod.CurveRequest("c", str(sample_dir), (0.5,), 1, ("scratch", "transfer"),
                                                       {"backbone": "mini_xception", "epochs": 2, "frozen_epochs": 1},
                                                       runs_dir=tmp_path / "runs"))
    done = curve_mod.run_curve(plan, storage_url(tmp_path), data=load_dataset(sample_dir),
                               track=("tensorboard", "mlflow"))
    assert len(done.trained) == 1 and len(done.failed) == 1
    runs = mlflow_runs("c")
    assert {n: r.info.status for n, r in runs.items()} == {"scratch-f0.5-seed0": "FINISHED",
                                                           "transfer-f0.5-seed0": "FAILED"}
    assert runs["scratch-f0.5-seed0"].data.params["fraction"] == "0.5"
    assert runs["scratch-f0.5-seed0"].data.metrics["result/test_accuracy"] == pytest.approx(0.3)
    assert Board(tmp_path / "runs" / "tensorboard" / "c").sessions()["transfer-f0.5-seed0"]["hparams"]["state"] == "FAIL"


def test_track_mlflow_without_mlflow_is_refused_in_one_line(monkeypatch, tmp_path, sample_dir):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a))
    result = search(tmp_path, sample_dir, "--track", "mlflow", trials=1)
    assert result.exit_code == 2
    assert "--track mlflow needs the mlflow package: pip install -e '.[mlflow]'" in result.output


def test_tensorboard_files_are_written_without_tensorflow(tmp_path):
    """Under KERAS_BACKEND=jax or torch, tracking must not load TensorFlow."""
    code = ("import sys; from study.tracking import open_tracking, RunInfo, Outcome; "
            f"t = open_tracking(['tensorboard'], 's', runs_dir={str(tmp_path)!r}); r = RunInfo('trial-0', 'trial', {{'lr': 0.1}}); "
            "t.run_started(r); t.epoch_ended('trial-0', 1, 'scratch', {'loss': 1.0}); "
            "t.run_ended('trial-0', Outcome('COMPLETE', {'val_accuracy': 0.5}, 1)); t.close(); "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TensorFlow was imported'")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    board = Board(tmp_path / "tensorboard" / "s")
    assert board.scalar("trial-0/scratch", "loss") == [(1, 1.0)] and board.scalar("trial-0", "result/val_accuracy") == [(1, 0.5)]


def test_a_real_run_is_tracked_with_its_phase_learning_rate_and_model(tmp_path):
    """One tiny real train() (mini_xception, 2 epochs): what Keras and train() log reaches both trackers."""
    from study.config import TrainConfig
    from study.tracking.callback import train_tracked
    from tests.test_training import FAST, tiny_dataset

    run_dir = tmp_path / "runs" / "one"
    result = train_tracked(TrainConfig(regime="scratch", epochs=2, **FAST), tiny_dataset(), run_dir,
                           ("tensorboard", "mlflow"), evaluate_test=True)
    history = pd.read_csv(run_dir / "history.csv")
    board = Board(tmp_path / "runs" / "tensorboard" / "train")
    assert board.runs() == [".", "one", "one/scratch"]  # the experiment (its HParams columns), the run, its phase
    for column in ("loss", "cross_entropy", "accuracy", "val_loss", "val_accuracy", "learning_rate"):
        assert board.scalar("one/scratch", column) == [(e, round(float(v), 4)) for e, v in
                                                       zip(history["epoch"], history[column].astype(np.float32))]
    assert board.scalar("one", "result/test_accuracy") == [(2, round(result.metrics["test"]["accuracy"], 4))]
    assert board.sessions()["one"]["hparams"]["backbone"] == "mini_xception"
    (run,) = mlflow_runs("train").values()
    assert run.info.status == "FINISHED" and run.data.tags["fer_study.phases"] == "scratch 1-2"
    assert [s for s, _ in metric_steps(run, "learning_rate")] == [1, 2]
    assert run.data.params["backbone"] == "mini_xception" and run.data.params["batch_size"] == "16"
    assert artifacts(run) == {"config.json", "history.csv", "metrics.json", "predictions.npz", "model.keras",
                              "manifest.json"}


def test_keras_tuner_trials_and_a_pool_workers_request_are_tracked_too(monkeypatch, tmp_path, sample_dir):
    from study.tuning.request import SearchRequest, from_json, to_json

    request = SearchRequest(regime="scratch", trials=2, track=("tensorboard", "mlflow"))
    assert from_json(to_json(request)) == request  # what a worker of --workers N is started with
    monkeypatch.setattr(objective_mod, "train", fake_train())
    result = search(tmp_path, sample_dir, "--max-epochs", "2", "--backend", "keras-tuner", "--tuner", "random",
                    "--track", "tensorboard", trials=2)
    assert result.exit_code == 0, result.output
    sessions = Board(tmp_path / "runs" / "tensorboard" / "scratch-keras-tuner").sessions()
    assert {run: s["hparams"]["state"] for run, s in sessions.items()} == {"trial-0": "COMPLETE", "trial-1": "COMPLETE"}
    assert not (tmp_path / "mlruns").exists()  # only what was asked for
