"""Studies and spaces as plain rows first (reports can reuse them), then as rich tables."""
from __future__ import annotations

from collections import Counter
from typing import Any

import optuna
from optuna.trial import TrialState
from rich.table import Table

from search_spaces import Space, describe, from_dict, space_for
from study.config import default_source, field_default
from study.tuning.display import format_params, format_value, trial_seconds


# ------------------------------------------------------------------------------------------ rows
def study_rows(storage: optuna.storages.BaseStorage) -> list[dict[str, Any]]:
    """One row per study: what it searched, how many trials ended how, and its best value."""
    return [study_row(optuna.load_study(study_name=name, storage=storage))
            for name in sorted(optuna.get_all_study_names(storage))]


def study_row(study: optuna.Study) -> dict[str, Any]:
    states = Counter(t.state for t in study.get_trials(deepcopy=False))
    attrs = study.user_attrs
    return {
        "name": study.study_name,
        "regime": attrs.get("regime", "?"),
        "backend": attrs.get("backend", "?"),
        "objective": attrs.get("objective", "?"),
        "complete": states[TrialState.COMPLETE],
        "pruned": states[TrialState.PRUNED],
        "failed": states[TrialState.FAIL],
        "running": states[TrialState.RUNNING],
        "best": best_trial(study).value if best_trial(study) else None,
        "final_runs": len(attrs.get("final_runs", [])),
    }


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    """The best COMPLETE trial, or None (``study.best_trial`` raises when there is none)."""
    try:
        return study.best_trial
    except ValueError:
        return None


def trial_rows(study: optuna.Study) -> list[dict[str, Any]]:
    return [
        {
            "number": t.number,
            "state": t.state.name,
            "value": t.value if t.state == TrialState.COMPLETE else None,
            "seconds": trial_seconds(t),
            "epochs": t.user_attrs.get("epochs"),
            "params": t.params,
            "run_dir": t.user_attrs.get("run_dir", ""),
            "error": t.user_attrs.get("error", ""),
        }
        for t in study.get_trials(deepcopy=False)
    ]


def best_param_rows(study: optuna.Study) -> list[dict[str, Any]]:
    """The best trial's value of every searched parameter beside the default (``None``: the best
    configuration does not use it, e.g. momentum under Adam)."""
    best = best_trial(study)
    if best is None:
        return []
    space = space_for(study.user_attrs.get("regime", "scratch"))
    used = from_dict(space, {k: v for k, v in best.params.items() if k in space.names})
    return [{"name": p.name, "best": used.get(p.name), "paper": p.default, "source": default_source(p.name)}
            for p in space.params]


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
        table.add_row(r["name"], r["regime"], r["backend"], r["objective"], counts, str(r["running"]),
                      format_value(r["best"]), str(r["final_runs"]))
    return table


def trials_table(study: optuna.Study) -> Table:
    attrs = study.user_attrs
    title = (f"study {study.study_name}: {attrs.get('regime')} / {attrs.get('backend')}, "
             f"objective val {attrs.get('objective')}")
    table = Table(title=title, title_justify="left")
    for column in ("trial", "state", "value", "epochs", "duration", "key params", "run dir / error"):
        table.add_column(column, justify="right" if column in ("trial", "value", "epochs", "duration") else "left")
    for r in trial_rows(study):
        duration = "" if r["seconds"] is None else f"{r['seconds']:.0f}s"
        table.add_row(str(r["number"]), r["state"], format_value(r["value"]), str(r["epochs"] or ""), duration,
                      format_params(r["params"]), r["error"] or r["run_dir"])
    return table


def best_table(study: optuna.Study) -> Table:
    best = best_trial(study)
    table = Table(title=f"best trial {best.number}: val {study.user_attrs.get('objective')} {best.value:.4f}",
                  title_justify="left")
    for column in ("parameter", "best", "paper"):
        table.add_column(column)
    for r in best_param_rows(study):
        mark = "" if r["best"] in (None, r["paper"]) else " *"
        best_text = "(not used)" if r["best"] is None else f"{_show(r['best'])}{mark}"
        table.add_row(r["name"], best_text, _show(r["paper"]))
    return table


def _show(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
