"""TensorBoard: event files per run, written with TensorBoard's own protos and record format, no TensorFlow.

The layout under ``<runs dir>/tensorboard/`` (``tensorboard --logdir runs/tensorboard``)::

    <experiment>/                       one folder per study (a curve, ``train``'s runs): the
                                        HParams experiment (its columns: parameters, results)
      trial-3/                          the run: its HParams session (parameters, state, results)
        frozen/  finetune/              its per-epoch scalars, one TensorBoard run per phase
                                        (scratch: scratch/), at the global epoch across phases

Per epoch, every column of history.csv: ``loss`` and ``val_loss`` (Keras's objective, with the
head's L2 term), ``cross_entropy`` and ``val_cross_entropy`` (the data term alone), ``accuracy``,
``val_accuracy``, ``val_top_answer_share``, ``learning_rate`` and ``seconds``. A phase is its own
TensorBoard run (``trial-3/frozen``, ``trial-3/finetune``): its curve has its own colour and the
run selector filters phases by name. When the run ends, its folder gets the HParams plugin's session
(``tensorboard.plugins.hparams.summary_v2.hparams_pb``): the run's parameters with ``kind`` and
``state``, its results as scalars (``result/val_accuracy``, ..., ``result/objective`` for a trial,
``result/test_*`` for a run evaluated on test), a failure's reason as text (``error``) and the
session's end status. The HParams dashboard then lists every run of the study side by side, with
the results as its metric columns; a resumed study only adds sessions (``logged``: a run folder
with its session has ended, one without it was left running).

The writer is TensorBoard's TensorFlow-free ``RecordWriter`` over a plain file (TensorBoard's own
``EventFileWriter`` opens its file through ``tf.io.gfile``, which imports TensorFlow), so
``--track tensorboard`` works under every Keras backend. Every event is flushed as it is written:
``tensorboard`` shows a running trial live.
"""
from __future__ import annotations

import itertools
import os
import shutil
import socket
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins.hparams import api_pb2
from tensorboard.plugins.hparams import metadata as hparams_metadata
from tensorboard.plugins.hparams import plugin_data_pb2
from tensorboard.plugins.hparams.summary_v2 import hparams_pb
from tensorboard.plugins.scalar.summary_v2 import scalar_pb
from tensorboard.plugins.text.summary_v2 import text_pb
from tensorboard.summary.writer.record_writer import RecordWriter

from study.tracking import ENDED, RUNNING, Outcome, RunInfo

EVENTS = "events.out.tfevents"
NO_PHASE = "epochs"  # the sub-run of epochs that came without a phase (a fit outside train())
_STATUS = {"COMPLETE": api_pb2.STATUS_SUCCESS, "PRUNED": api_pb2.STATUS_SUCCESS, "FAIL": api_pb2.STATUS_FAILURE}
_FILES = itertools.count()


class EventFile:
    """One TensorBoard event file in ``folder`` (a TensorBoard run), each event flushed as written."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{EVENTS}.{int(time.time()):010d}.{socket.gethostname()}.{os.getpid()}.{next(_FILES)}"
        self.path = folder / name
        self._file = open(self.path, "ab")
        self._records = RecordWriter(self._file)
        self.add(event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2"))

    def add(self, event: event_pb2.Event) -> None:
        self._records.write(event.SerializeToString())
        self._file.flush()

    def summary(self, summary: summary_pb2.Summary, step: int = 0, wall_time: float | None = None) -> None:
        self.add(event_pb2.Event(summary=summary, step=int(step), wall_time=wall_time or time.time()))

    def scalars(self, values: Mapping[str, float], step: int, wall_time: float | None = None) -> None:
        if values:
            summary = summary_pb2.Summary()
            for tag, value in values.items():
                summary.value.extend(scalar_pb(tag, np.float32(value)).value)
            self.summary(summary, step, wall_time)

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


class TensorBoardTracker:
    """The runs of one experiment as TensorBoard event files under ``root/<experiment>/``."""

    name = "tensorboard"

    def __init__(self, root: Path, experiment: str, hparams: Sequence[str] = (), metrics: Sequence[str] = (),
                 shown: Sequence[str] = ()) -> None:
        self.folder = Path(root) / experiment
        self.experiment = experiment
        self.folder.mkdir(parents=True, exist_ok=True)
        self._phases: dict[str, tuple[str, EventFile]] = {}  # run -> its current phase and that phase's file
        if hparams and self.logged_experiment() is None:
            self._write_experiment(hparams, metrics, shown)

    def logged_experiment(self) -> Path | None:
        """The experiment's own event file (its HParams columns), written by the first process to track it."""
        return next((p for p in self.folder.iterdir() if p.is_file() and p.name.startswith(EVENTS)), None)

    def _write_experiment(self, hparams: Sequence[str], metrics: Sequence[str], shown: Sequence[str]) -> None:
        """The HParams dashboard's columns: the parameters a run of this experiment may have, with its
        kind and state, and its results. TensorBoard reads the first experiment it finds and keeps a tag's
        first description, so it is written once. The dashboard shows the first five parameters in
        TensorBoard's order (``differs`` first, then by name) and hides the rest until ticked: ``shown``
        (and ``state``) are marked ``differs`` to be those five."""
        first = {"state", *shown}
        columns = [api_pb2.HParamInfo(name=name, differs=name in first)
                   for name in dict.fromkeys(["kind", "state", *hparams])]
        results = [api_pb2.MetricInfo(name=api_pb2.MetricName(tag=f"result/{name}"), display_name=name)
                   for name in metrics]
        data = plugin_data_pb2.HParamsPluginData(experiment=api_pb2.Experiment(
            hparam_infos=columns, metric_infos=results, time_created_secs=time.time()))
        experiment = EventFile(self.folder)
        try:
            experiment.summary(_plugin_summary(hparams_metadata.EXPERIMENT_TAG, data))
        finally:
            experiment.close()

    def run_started(self, run: RunInfo) -> None:
        folder = self.folder / run.key
        self._close_phase(run.key)
        if folder.exists():  # an earlier attempt of this run (a retried curve point): this one replaces it
            shutil.rmtree(folder)
        folder.mkdir(parents=True)

    def epoch_ended(self, key: str, epoch: int, phase: str | None, values: Mapping[str, float]) -> None:
        self._phase_file(key, phase or NO_PHASE).scalars(values, epoch)

    def run_ended(self, run: RunInfo, outcome: Outcome) -> None:
        self._close_phase(run.key)
        session = EventFile(self.folder / run.key)
        try:
            hparams = {**_hparam_values(run.params), "kind": run.kind, "state": outcome.state}
            # the trial id names the session group: unique across the studies of one --logdir
            trial_id = f"{run.key} ({self.experiment})"
            session.summary(hparams_pb(hparams, trial_id=trial_id, start_time_secs=run.started), wall_time=run.started)
            step = outcome.epochs or 0
            session.scalars({f"result/{k}": v for k, v in outcome.metrics.items()}, step, outcome.ended)
            if outcome.error:
                session.summary(text_pb("error", outcome.error), step, outcome.ended)
            session.summary(_session_end(outcome), step, outcome.ended)
        finally:
            session.close()

    def model_removed(self, key: str) -> None:
        pass  # TensorBoard holds no model

    def logged(self, key: str) -> str | None:
        folder = self.folder / key
        if not folder.is_dir():
            return None
        return ENDED if any(p.name.startswith(EVENTS) for p in folder.iterdir() if p.is_file()) else RUNNING

    def close(self) -> None:
        for key in list(self._phases):
            self._close_phase(key)

    def _phase_file(self, key: str, phase: str) -> EventFile:
        current = self._phases.get(key)
        if current is None or current[0] != phase:
            self._close_phase(key)
            current = (phase, EventFile(self.folder / key / phase))
            self._phases[key] = current
        return current[1]

    def _close_phase(self, key: str) -> None:
        current = self._phases.pop(key, None)
        if current is not None:
            current[1].close()


def _hparam_values(params: Mapping[str, Any]) -> dict[str, bool | int | float | str]:
    """HParams take booleans, numbers and strings: anything else is shown as its text, None left out."""
    values: dict[str, bool | int | float | str] = {}
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, np.generic):
            value = value.item()
        values[key] = value if isinstance(value, (bool, int, float, str)) else str(value)
    return values


def _session_end(outcome: Outcome) -> summary_pb2.Summary:
    """The HParams plugin's session end (its summary_v2 has no helper for it; summary.py's needs TensorFlow)."""
    info = plugin_data_pb2.SessionEndInfo(status=_STATUS.get(outcome.state, api_pb2.STATUS_UNKNOWN),
                                          end_time_secs=outcome.ended)
    return _plugin_summary(hparams_metadata.SESSION_END_INFO_TAG,
                           plugin_data_pb2.HParamsPluginData(session_end_info=info))


def _plugin_summary(tag: str, data: plugin_data_pb2.HParamsPluginData) -> summary_pb2.Summary:
    summary = summary_pb2.Summary()
    summary.value.add(tag=tag, metadata=hparams_metadata.create_summary_metadata(data),
                      tensor=hparams_metadata.NULL_TENSOR)
    return summary
