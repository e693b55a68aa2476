"""MLflow: one experiment per study (a curve, ``train``'s runs), one MLflow run per trial and per final run.

Where: ``MLFLOW_TRACKING_URI`` when it is set (a server, ``sqlite:///...``, or ``file:...`` with
MLflow's ``MLFLOW_ALLOW_FILE_STORE=true``), else the local folder ``./mlruns``: an SQLite store
``mlruns/mlflow.db`` with the artifacts beside it in ``mlruns/artifacts/<experiment>`` (MLflow 3 keeps
its plain-file store in maintenance and refuses it by default; SQLite is its documented local store).
``mlflow ui --backend-store-uri sqlite:///mlruns/mlflow.db`` shows it.

A run is named as its run directory (``trial-3``, ``final-seed0``) and tagged ``fer_study.study``,
``fer_study.run``, ``fer_study.kind`` and, for a trial, ``fer_study.trial``. Its parameters are the
trial's sampled values and the whole TrainConfig it trained; its metrics, per epoch (step = the
global epoch across phases), are history.csv's columns, and at the end its results
(``result/val_accuracy``, ..., ``result/objective`` for a trial, ``result/test_*`` for a run
evaluated on test). Its status is FINISHED for a complete run, KILLED for a pruned trial (tag
``fer_study.state`` PRUNED) and FAILED for a failed one (tag ``fer_study.error``: why); tag
``fer_study.phases`` gives each phase's epochs (``frozen 1-5, finetune 6-10``). A complete run's
directory is logged as its artifacts, ``model.keras`` where the run kept it; a search trial whose
model ``keep_models`` removes later loses that artifact too.

A run is looked up by its tags before it is created, so a resumed study adds to the same experiment
without duplicates; two processes that create the same run at once keep the earlier one.

MLflow's HTTP client retries a server that does not answer for minutes by default; unless the
environment says otherwise, a tracked process gives it 2 retries and 30 s (a tracker that fails is
dropped after one warning: the search does not wait on it).
"""
from __future__ import annotations

import logging
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping

from mlflow.entities import Metric, Param, RunTag, ViewType
from mlflow.exceptions import MlflowException
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
from mlflow.tracking import MlflowClient
from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH, MAX_PARAMS_TAGS_PER_BATCH, MAX_TAG_VAL_LENGTH

from study.tracking import ENDED, RUNNING, Outcome, RunInfo

URI_ENV = "MLFLOW_TRACKING_URI"
LOCAL_FOLDER = "mlruns"
TAG = "fer_study"  # the prefix of our tags: fer_study.study, fer_study.run, ...
MODEL = "model.keras"
KIND_TAG, TRAINING = "mlflow.experimentKind", "custom_model_development"  # not GenAI traces: model training
_STATUS = {"COMPLETE": "FINISHED", "PRUNED": "KILLED", "FAIL": "FAILED"}
_QUIET_HTTP = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}


def tracking_uri(folder: str | Path = LOCAL_FOLDER) -> str:
    """``MLFLOW_TRACKING_URI``, else an SQLite store in the local ``folder`` (``./mlruns``)."""
    return os.environ.get(URI_ENV) or f"sqlite:///{Path(folder).resolve() / 'mlflow.db'}"


def artifact_root(uri: str) -> Path | None:
    """Where the experiments of a local SQLite store keep their artifacts: beside the database (MLflow's
    own default would be ``./mlruns`` of whatever folder the first run started in). None elsewhere."""
    if uri.startswith("sqlite:///"):
        return Path(uri.removeprefix("sqlite:///")).resolve().parent / "artifacts"
    return None


@contextmanager
def _quiet() -> Iterator[None]:
    """MLflow and alembic announce a new SQLite store's tables at INFO: not in the middle of a live table."""
    loggers = [logging.getLogger(name) for name in ("mlflow", "alembic")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


class MlflowTracker:
    """The runs of one experiment in an MLflow tracking store (``MlflowClient``: no global active run)."""

    name = "mlflow"

    def __init__(self, experiment: str, uri: str | None = None, tags: Mapping[str, Any] | None = None) -> None:
        for key, value in _QUIET_HTTP.items():
            os.environ.setdefault(key, value)
        self.uri = uri or tracking_uri()
        self.experiment = experiment
        if artifact_root(self.uri) is not None:
            Path(self.uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        with _quiet():
            self.client = MlflowClient(tracking_uri=self.uri)
            self.experiment_id = self._experiment(dict(tags or {}))
        self.active: dict[str, str] = {}  # run key -> MLflow run id, while it trains here
        self.phases: dict[str, dict[str, list[int]]] = {}  # run key -> phase -> [first, last] epoch

    # ---------------------------------------------------------------------------------- events
    def run_started(self, run: RunInfo) -> None:
        for earlier in self._find(run.key):  # an earlier attempt of this run (a retried curve point)
            self.client.delete_run(earlier.info.run_id)
        tags = {f"{TAG}.study": self.experiment, f"{TAG}.run": run.key, f"{TAG}.kind": run.kind,
                f"{TAG}.state": "RUNNING"}
        if run.number is not None:
            tags[f"{TAG}.trial"] = str(run.number)
        created = self.client.create_run(self.experiment_id, start_time=_ms(run.started), tags=tags, run_name=run.key)
        run_id = created.info.run_id
        if not self._first(run.key, run_id):  # another process created it at the same moment, and first
            self.client.delete_run(run_id)
            return
        self.active[run.key] = run_id
        self.phases[run.key] = {}
        params = [Param(k, _text(v, MAX_PARAM_VAL_LENGTH)) for k, v in {**run.params, **run.config}.items()]
        for start in range(0, len(params), MAX_PARAMS_TAGS_PER_BATCH):
            self.client.log_batch(run_id, params=params[start:start + MAX_PARAMS_TAGS_PER_BATCH])

    def epoch_ended(self, key: str, epoch: int, phase: str | None, values: Mapping[str, float]) -> None:
        run_id = self.active.get(key)
        if run_id is None:
            return
        now = _ms(time.time())
        self.client.log_batch(run_id, metrics=[Metric(k, float(v), now, int(epoch)) for k, v in values.items()])
        if phase:
            span = self.phases.setdefault(key, {}).setdefault(phase, [epoch, epoch])
            span[1] = epoch

    def run_ended(self, run: RunInfo, outcome: Outcome) -> None:
        run_id = self.active.pop(run.key, None)
        if run_id is None:  # a run another process left RUNNING (it died): found by its tags
            found = [r for r in self._find(run.key) if r.info.status == "RUNNING"]
            if not found:
                return
            run_id = found[0].info.run_id
        step = outcome.epochs or 0
        metrics = [Metric(f"result/{k}", float(v), _ms(outcome.ended), step) for k, v in outcome.metrics.items()]
        tags = {f"{TAG}.state": outcome.state}
        if outcome.epochs is not None:
            tags[f"{TAG}.epochs"] = str(outcome.epochs)
        if outcome.error:
            tags[f"{TAG}.error"] = _text(outcome.error, MAX_TAG_VAL_LENGTH)
        phases = self.phases.pop(run.key, {})
        if phases:
            tags[f"{TAG}.phases"] = ", ".join(f"{name} {a}-{b}" if a != b else f"{name} {a}"
                                              for name, (a, b) in phases.items())
        self.client.log_batch(run_id, metrics=metrics, tags=[RunTag(k, v) for k, v in tags.items()])
        if outcome.state == "COMPLETE" and outcome.run_dir and Path(outcome.run_dir).is_dir():
            self.client.log_artifacts(run_id, str(outcome.run_dir))
        self.client.set_terminated(run_id, status=_STATUS.get(outcome.state, "FAILED"), end_time=_ms(outcome.ended))

    def model_removed(self, key: str) -> None:
        """``keep_models`` removed this trial's model from its run directory: its artifact goes too."""
        for found in self._find(key):
            if any(f.path == MODEL for f in self.client.list_artifacts(found.info.run_id)):
                get_artifact_repository(found.info.artifact_uri).delete_artifacts(MODEL)

    def logged(self, key: str) -> str | None:
        found = self._find(key)
        if not found:
            return None
        return RUNNING if found[0].info.status == "RUNNING" else ENDED

    def close(self) -> None:
        self.active.clear()

    # ---------------------------------------------------------------------------------- lookups
    def _experiment(self, tags: dict[str, Any]) -> str:
        """The study's experiment: found by name (restored if it was deleted), else created."""
        found = self.client.get_experiment_by_name(self.experiment)
        if found is None:
            root = artifact_root(self.uri)
            location = None if root is None else (root / _folder_name(self.experiment)).as_uri()
            tags = {KIND_TAG: TRAINING, **tags}  # MLflow 3's UI then opens it on its training runs
            try:
                return self.client.create_experiment(self.experiment, artifact_location=location,
                                                     tags={k: _text(v, MAX_TAG_VAL_LENGTH) for k, v in tags.items()})
            except MlflowException:  # another worker created it a moment ago
                found = self.client.get_experiment_by_name(self.experiment)
                if found is None:
                    raise
        if found.lifecycle_stage == "deleted":
            self.client.restore_experiment(found.experiment_id)
        return found.experiment_id

    def _find(self, key: str) -> list:
        """The active runs of this experiment named ``key`` by our tag, earliest first."""
        runs = self.client.search_runs([self.experiment_id], filter_string=f"tags.`{TAG}.run` = '{_quoted(key)}'",
                                       run_view_type=ViewType.ACTIVE_ONLY, order_by=["attributes.start_time ASC"])
        return sorted(runs, key=lambda r: (r.info.start_time, r.info.run_id))

    def _first(self, key: str, run_id: str) -> bool:
        found = self._find(key)
        return not found or found[0].info.run_id == run_id


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


def _text(value: Any, limit: int) -> str:
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _quoted(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")


def _folder_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "experiment"
