"""Studies and spaces as rich tables, from the store's plain rows (``study.store``)."""
from __future__ import annotations

import math
from typing import Any

import optuna
from rich.table import Table

from search_spaces import Space, describe
from study import config as config_mod
from study.config import TrainConfig, default_source, field_default
from study.latency import FPS, Cost
from study.store import (
    Objectives,
    best_param_rows,
    best_trial,
    off_front,
    pareto_front,
    records,
    trial_params,
    trial_records,
    trial_value,
)
from command_line.search_display import cost_label, format_cost, format_params, format_value


# ---------------------------------------------------------------------------------------- tables
def space_table(space: Space) -> Table:
    table = Table(title=f"{space.regime} search space (defaults: the paper's values where it states them)",
                  title_justify="left")
    for column in ("name", "kind", "range / choices", "log", "default", "default from", "searched when"):
        table.add_column(column)
    for row in describe(space):
        default = str(row["default"])
        if row["default"] != field_default(row["name"]):  # a conditional parameter's own default, when searched
            default += f" (unsearched: {field_default(row['name'])})"
        table.add_row(row["name"], row["kind"], row["range"], "log" if row["log"] else "", default,
                      default_source(row["name"]), row["when"])
    return table


def settings_table(space: Space) -> Table:
    """Every other TrainConfig key: what a trial of the space keeps (the base it is given, else these
    defaults), each with where its default comes from."""
    config = TrainConfig(regime=space.regime)
    table = Table(title=f"{space.regime} settings the search does not vary (its base may set them), as "
                        f"{config.backbone} trains them", title_justify="left")
    for column in ("name", "default", "default from"):
        table.add_column(column)
    for name, value in config_mod.to_dict(config).items():
        if name not in space.names:
            table.add_row(name, _show(value), default_source(name))
    return table


def studies_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="studies (trials: complete / pruned / failed)", title_justify="left")
    table.add_column("name", no_wrap=True)
    for column in ("regime", "backend", "objective"):
        table.add_column(column)
    table.add_column("trials", justify="right", no_wrap=True)
    for column in ("running", "best", "final"):
        table.add_column(column, justify="right")
    for r in rows:
        counts = f"{r['complete']} / {r['pruned']} / {r['failed']}"
        best = format_value(r["best"]) if r.get("front") is None else f"front of {r['front']}"
        table.add_row(r["name"], r["regime"], r["backend"], r["objective"], counts, str(r["running"]), best,
                      str(r["final_runs"]))
    return table


def trials_table(study: optuna.Study) -> Table:
    objectives = Objectives.parse(records.objective(study))
    against = f" against {objectives.cost}" if objectives.cost else ""
    title = (f"study {study.study_name}: {records.regime(study)} / {records.backend(study)}, "
             f"objective val {objectives.metric}{against}")
    table = Table(title=title, title_justify="left")
    cost = (cost_label(objectives.cost),) if objectives.cost else ()
    for column in ("trial", "state", "value", *cost, "epochs", "duration", "key params", "run dir / error"):
        table.add_column(column, justify="right" if column in ("trial", "value", *cost, "epochs", "duration") else "left")
    for r in trial_records(study):
        duration = "" if math.isnan(r["seconds"]) else f"{r['seconds']:.0f}s"
        value = None if math.isnan(r["value"]) else r["value"]
        cells = (format_cost(objectives.cost, None if math.isnan(r["cost"]) else r["cost"]),) if cost else ()
        table.add_row(str(r["number"]), r["state"], format_value(value), *cells, str(r["epochs"] or ""), duration,
                      format_params(trial_params(r)), r["error"] or r["run_dir"])
    return table


def front_table(study: optuna.Study) -> Table:
    """A multi-objective study's Pareto-optimal trials, fastest (or smallest) first, with every measured cost:
    what each buys in accuracy for its time and size, and which run in real time on the machine that measured
    them."""
    objectives = Objectives.parse(records.objective(study))
    front = pareto_front(study)
    machines = sorted({records.cost(t).get("machine", "?") for t in front})
    measured = next((records.cost(t) for t in front if records.cost(t)), {})
    how = (f"TFLite, {measured.get('threads', '?')} thread, median of {measured.get('repeats', '?')} single faces, "
           f"on {'; '.join(machines)}") if measured else "not measured"
    table = Table(title=f"Pareto front of study {study.study_name}: val {objectives.metric} against "
                        f"{objectives.cost} ({how}); train one: train --from-study {study.study_name} --trial N",
                  title_justify="left", caption=_off_front_caption(study, front), caption_justify="left")
    for column in ("trial", "backbone", f"val {objectives.metric}", "latency ms", "frames/s", f">= {FPS:g} fps",
                   "Keras ms", "size MB", "key params"):
        table.add_column(column, justify="left" if column in ("backbone", "key params") else "right")
    base_backbone = records.base(study).get("backbone", "")
    for trial in front:
        measured = records.cost(trial)
        cost = Cost.from_dict(measured) if measured else None
        cells = ("", "", "", "", "") if cost is None else (
            f"{cost.tflite_ms:.2f}", f"{cost.fps:,.0f}", "yes" if cost.fps >= FPS else "no", f"{cost.keras_ms:.1f}",
            f"{cost.tflite_bytes / 1e6:.2f}")
        table.add_row(str(trial.number), str(trial.params.get("backbone", base_backbone)),
                      format_value(trial_value(trial)), *cells,
                      format_params({k: v for k, v in trial.params.items() if k != "backbone"}))
    return table


def _off_front_caption(study: optuna.Study, front: list) -> str | None:
    """Which complete trials did not learn and so stay off the front (``study.store.pareto_front``)."""
    left = [t.number for t in off_front(study)]
    if not left:
        return None if front else "no complete trial yet"
    what = (f"trial(s) {', '.join(map(str, left))} did not beat the majority rate on validation: off the front, "
            "whatever they cost")
    return what if front else f"no trial learned yet; {what}"


def best_table(study: optuna.Study) -> Table:
    """The best trial's parameters: as sampled, as trained (an epoch cap cuts epoch counts) and the
    default with where it comes from (the paper, or ours where the paper is silent)."""
    best = best_trial(study)
    rows = best_param_rows(study)
    cap = next((r["cap"] for r in rows if r["cap"] is not None), None)
    capped = f"; epochs capped at {cap} a phase" if cap is not None else ""
    table = Table(title=f"best trial {best.number}: val {records.objective(study)} {best.value:.4f}{capped}",
                  title_justify="left")
    for column in ("parameter", "sampled", "trained", "default", "default from"):
        table.add_column(column)
    for r in rows:
        mark = "" if r["best"] in (None, r["paper"]) else " *"
        best_text = "(not used)" if r["best"] is None else f"{_show(r['best'])}{mark}"
        trained = "" if r["trained"] == r["best"] else f"{_show(r['trained'])} (cap)"
        table.add_row(r["name"], best_text, trained or best_text.rstrip(" *"), _show(r["paper"]), r["source"])
    return table


def _show(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
