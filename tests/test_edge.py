"""Edge searches: a validation metric against a measured cost (``search --objective accuracy,latency``).

The bookkeeping is tested with a fake ``train`` and a fake latency measurement (each backbone has its own
cost, each trial a score); ``measure`` itself is tested on a real tiny model, and one real two-trial edge
search over two small backbones runs end to end.
"""
from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
from click.testing import CliRunner

import search_spaces
from cli import cli
from reports import edge as edge_report
from reports.build import build_report
from search_spaces import EDGE_BACKBONES, SCRATCH, to_config, with_backbones
from study.errors import ConfigError
from study.experiments import final as final_mod
from study import latency
from study.latency import Cost
from study.store import (
    NoSingleBest,
    Objectives,
    load_existing,
    named_trial,
    open_storage,
    off_front,
    pareto_front,
    records,
    required_best,
)
from study.tuning import objective as objective_mod
from tests.test_tuning import fake_train

# what each backbone costs in the fake measurement (ms, bytes), and what it scores
COSTS = {"mini_xception": (0.3, 300_000), "mobilenetv3small": (0.8, 4_000_000), "efficientnetb0": (3.0, 16_000_000),
         "densenet121": (7.0, 28_000_000), "densenet169": (10.0, 50_000_000)}
SCORES = {"mini_xception": 0.40, "mobilenetv3small": 0.35, "efficientnetb0": 0.45, "densenet121": 0.42,
          "densenet169": 0.48}


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def storage_url(tmp: Path) -> str:
    return f"sqlite:///{tmp / 'studies.db'}"


def score(config) -> float:
    """The backbone's score, a little more for a higher learning rate (so trials of one backbone differ)."""
    return SCORES[config.backbone] + min(config.learning_rate, 0.01)


def fake_measure(model_file, **_):
    manifest = json.loads((Path(model_file).parent / "config.json").read_text())
    ms, size = COSTS[manifest["backbone"]]
    return Cost(ms, 20 * ms, size, size, 50, 1, "a test machine")


def fake_train_writing_config(calls):
    """fake_train, plus the config.json a real run writes (the fake measurement reads its backbone)."""
    inner = fake_train(calls, score)

    def train(config, data, run_dir, **kwargs):
        result = inner(config, data, run_dir, **kwargs)
        (Path(run_dir) / "config.json").write_text(json.dumps({"backbone": config.backbone}))
        return result
    return train


@pytest.fixture
def edge_calls(monkeypatch) -> list:
    recorded: list = []
    monkeypatch.setattr(objective_mod, "train", fake_train_writing_config(recorded))
    monkeypatch.setattr(latency, "measure", fake_measure)
    return recorded


def edge_search(tmp: Path, data: Path, *args, trials: int = 8):
    return invoke("search", "--regime", "scratch", "--trials", trials, "--data", data, "--storage", storage_url(tmp),
                  "--runs-dir", tmp / "runs", "--objective", "accuracy,latency", "--max-epochs", 1, *args)


def dominated(values: tuple[float, float], others: list[tuple[float, float]]) -> bool:
    """(accuracy up, latency down): another point at least as good in both and better in one."""
    return any(a >= values[0] and ms <= values[1] and (a, ms) != values for a, ms in others)


# -------------------------------------------------------------------------------------- the objective
@pytest.mark.parametrize("text, metric, cost", [("accuracy", "accuracy", None), ("accuracy,latency", "accuracy", "latency"),
                                                ("macro_f1, size", "macro_f1", "size")])
def test_an_objective_is_a_metric_or_a_metric_and_a_cost(text, metric, cost):
    parsed = Objectives.parse(text)
    assert (parsed.metric, parsed.cost) == (metric, cost)
    assert parsed.directions == (["maximize"] if cost is None else ["maximize", "minimize"])


@pytest.mark.parametrize("text", ["latency", "accuracy,speed", "latency,accuracy", "accuracy,latency,size", ""])
def test_an_objective_of_another_form_is_refused_with_the_forms_it_takes(text):
    with pytest.raises(ConfigError, match="metric .*optionally followed by a cost"):
        Objectives.parse(text)


def test_the_backbone_joins_the_space_with_the_papers_as_default_and_configs_read_it():
    space = with_backbones(SCRATCH, EDGE_BACKBONES["scratch"])
    assert space.names[0] == "backbone" and space["backbone"].default == "densenet169"
    assert with_backbones(SCRATCH, ()) is SCRATCH
    assert "mini_xception" not in EDGE_BACKBONES["transfer"]  # it has no ImageNet weights to transfer from
    config = to_config("scratch", {"backbone": "mini_xception", "learning_rate": 0.01}, {"seed": 3})
    assert (config.backbone, config.learning_rate, config.seed) == ("mini_xception", 0.01, 3)
    with pytest.raises(ConfigError):
        to_config("transfer", {"backbone": "mini_xception"})


# --------------------------------------------------------------------------------------- the search
def test_an_edge_search_weighs_every_backbone_keeps_every_model_and_has_a_front(tmp_path, sample_dir, edge_calls):
    result = edge_search(tmp_path, sample_dir)
    assert result.exit_code == 0, result.output
    study = load_existing("scratch-optuna-latency", storage_url(tmp_path))
    trials = study.get_trials()
    assert len(study.directions) == 2 and len(trials) == 8
    # each backbone's defaults first, the paper's DenseNet169 first of all
    firsts = trials[:len(EDGE_BACKBONES["scratch"])]
    assert firsts[0].params["backbone"] == "densenet169"
    assert sorted(t.params["backbone"] for t in firsts) == sorted(EDGE_BACKBONES["scratch"])
    assert all(records.is_default_config(t) for t in firsts) and not records.is_default_config(trials[-1])
    assert [c["config"].backbone for c in edge_calls] == [t.params["backbone"] for t in trials]
    for t in trials:
        ms, size = COSTS[t.params["backbone"]]
        assert t.values[1] == ms and records.cost(t)["tflite_bytes"] == size
        assert records.cost(t)["machine"] == "a test machine"
        assert not t.intermediate_values  # nothing reported to a pruner: optuna prunes one objective only
        assert (Path(records.run_dir(t)) / "model.keras").is_file()  # more than --keep-models' 3: every model kept
    values = [tuple(t.values) for t in trials]
    expected = sorted(t.number for t in trials if not dominated(tuple(t.values), values))
    front = pareto_front(study)
    assert sorted(t.number for t in front) == expected and len(front) >= 2
    assert [t.values[1] for t in front] == sorted(t.values[1] for t in front)  # cheapest first
    assert "no pruning" in result.output and "Pareto front: trial(s)" in result.output
    assert "--trial N" in result.output and "--seeds 3" not in result.output


def test_show_studies_and_train_name_the_front(monkeypatch, tmp_path, sample_dir, edge_calls):
    assert edge_search(tmp_path, sample_dir, trials=6).exit_code == 0
    url = storage_url(tmp_path)
    shown = invoke("show", "scratch-optuna-latency", "--storage", url)
    assert shown.exit_code == 0 and "Pareto front of study scratch-optuna-latency" in shown.output
    assert ">= 30 fps" in shown.output and "a test machine" in shown.output
    assert "front of" in invoke("studies", "--storage", url).output
    study = load_existing("scratch-optuna-latency", url)
    with pytest.raises(NoSingleBest, match="no single best trial; name one of its Pareto front with trial N"):
        required_best(study)
    refused = invoke("train", "--from-study", "scratch-optuna-latency", "--storage", url)
    assert refused.exit_code == 2 and "no single best trial" in refused.output
    assert "--trial N" in refused.output
    with pytest.raises(ConfigError, match="has no trial 99"):
        named_trial(study, 99)
    trained: list = []
    monkeypatch.setattr(final_mod, "train", fake_train(trained))
    number = pareto_front(study)[0].number
    final_mod.train_from_study("scratch-optuna-latency", storage=url, runs_dir=tmp_path / "runs", trial=number)
    (call,) = trained
    assert call["run_dir"].name == f"final-trial{number}-seed0" and call["evaluate_test"]
    assert call["config"].backbone == study.trials[number].params["backbone"]
    with pytest.raises(ConfigError, match="give one of them"):
        final_mod.train_from_study("scratch-optuna-latency", storage=url, trial=number, top=2)


def test_a_trial_that_did_not_learn_stays_off_the_front_however_fast(monkeypatch, tmp_path, sample_dir, edge_calls):
    """mini_xception, the cheapest backbone, scores below the majority rate (0.25 in the fake run): on the raw values it
    would head the front; a model that answers one class is no trade-off, so the front is the learned trials'."""
    monkeypatch.setitem(SCORES, "mini_xception", 0.10)
    assert edge_search(tmp_path, sample_dir).exit_code == 0
    url = storage_url(tmp_path)
    study = load_existing("scratch-optuna-latency", url)
    unlearned = sorted(t.number for t in study.trials if t.params["backbone"] == "mini_xception")
    assert unlearned and all(records.learned(t) is False for t in study.trials if t.number in unlearned)
    assert any(not dominated(tuple(study.trials[n].values), [tuple(t.values) for t in study.trials]) for n in unlearned)
    learned = [tuple(t.values) for t in study.trials if t.number not in unlearned]
    expected = sorted(t.number for t in study.trials
                      if t.number not in unlearned and not dominated(tuple(t.values), learned))
    assert sorted(t.number for t in pareto_front(study)) == expected
    assert [t.number for t in off_front(study)] == unlearned
    shown = invoke("show", "scratch-optuna-latency", "--storage", url).output
    assert f"trial(s) {', '.join(map(str, unlearned))} did not beat the majority rate on validation" in shown
    assert "expected best validation accuracy by number of trials" in shown  # the metric, not "accuracy,latency"
    (summary,) = edge_report.gather_edges(open_storage(url, read_only=True))
    assert {p.trial for p in summary.points if not p.learned} == set(unlearned)
    assert all(p.backbone != "mini_xception" for p in summary.front)
    text = " ".join(edge_report.sentences(summary))
    named = f"Trial{'' if len(unlearned) == 1 else 's'} {', '.join(map(str, unlearned))}"
    assert f"{named} did not beat the majority-class rate" in text
    (figure,) = build_report(url, out=tmp_path / "report").figures.values()
    assert "a cross marks a trial that did not beat the majority-class rate" in figure.caption
    assert (tmp_path / "report" / figure.path).stat().st_size > 10_000


def test_a_search_where_nothing_learned_has_no_front_and_says_why(monkeypatch, tmp_path, sample_dir, edge_calls):
    for backbone in SCORES:
        monkeypatch.setitem(SCORES, backbone, 0.10)
    assert edge_search(tmp_path, sample_dir, trials=5).exit_code == 0
    url = storage_url(tmp_path)
    study = load_existing("scratch-optuna-latency", url)
    assert pareto_front(study) == [] and len(off_front(study)) == 5
    shown = invoke("show", "scratch-optuna-latency", "--storage", url)
    assert shown.exit_code == 0 and "no trial learned yet; trial(s) 0, 1, 2, 3, 4 did not beat" in shown.output


@pytest.mark.parametrize("args, message", [
    (("--backend", "keras-tuner"), "needs --backend optuna"),
    (("--pruner", "median"), "cannot prune a multi-objective study"),
    (("--sampler", "cmaes"), "cmaes optimises one objective"),
    (("--objective", "accuracy,speed"), "optionally followed by a cost"),
])
def test_what_an_edge_search_cannot_do_is_refused_in_one_line(tmp_path, sample_dir, edge_calls, args, message):
    result = edge_search(tmp_path, sample_dir, *args)
    assert result.exit_code == 2 and message in result.output and len(result.output.strip().splitlines()) == 1
    assert not edge_calls


def test_transfer_from_a_weights_file_needs_its_backbone_named(tmp_path, sample_dir, edge_calls, tiny_run):
    weights = tiny_run  # a run directory: its backbone is one architecture
    result = invoke("search", "--regime", "transfer", "--trials", 2, "--data", sample_dir, "--storage",
                    storage_url(tmp_path), "--objective", "accuracy,latency", "--weights", weights)
    assert result.exit_code == 2 and "fits one backbone: name it with --backbone" in result.output


def test_a_pinned_backbone_is_not_varied(tmp_path, sample_dir, edge_calls):
    assert edge_search(tmp_path, sample_dir, "--backbone", "mini_xception", trials=3).exit_code == 0
    study = load_existing("scratch-optuna-latency", storage_url(tmp_path))
    assert all("backbone" not in t.params for t in study.trials)
    assert {c["config"].backbone for c in edge_calls} == {"mini_xception"}
    assert records.base(study)["backbone"] == "mini_xception"


# --------------------------------------------------------------------------------------- the report
def test_the_report_draws_the_front_and_says_what_runs_in_real_time(tmp_path, sample_dir, edge_calls):
    assert edge_search(tmp_path, sample_dir).exit_code == 0
    (summary,) = edge_report.gather_edges(open_storage(storage_url(tmp_path), read_only=True))
    assert summary.paper is not None and summary.paper.trial == 0 and summary.paper.backbone == "densenet169"
    table = edge_report.front_table(summary)
    assert list(table.frame.index) == [p.trial for p in summary.front]
    assert (table.frame[">= 30 fps"] == "yes").all()  # every fake cost is under 33 ms
    text = " ".join(edge_report.sentences(summary))
    fastest = summary.front[0]
    assert f"trial {fastest.trial} (mini_xception)" in text and "faster than the paper's DenseNet169" in text
    assert "run above 30 frames a second" in text
    built = build_report(storage_url(tmp_path), out=tmp_path / "report")  # a store of an edge search alone
    markdown = built.documents["md"].read_text()
    assert "Pareto front" in markdown and "## Accuracy against latency and size" in markdown
    assert any(key.startswith("edge:") for key in built.figures)
    assert all((tmp_path / "report" / f.path).stat().st_size > 10_000 for f in built.figures.values())


# ------------------------------------------------------------------------------------ real measurement
def test_measure_times_a_real_tflite_export_and_records_the_machine(tiny_run):
    cost = latency.measure(tiny_run / "model.keras", repeats=5, warmup=1)
    assert 0 < cost.tflite_ms < 1000 and 0 < cost.keras_ms < 10_000
    assert cost.tflite_bytes > 10_000 and cost.keras_bytes == (tiny_run / "model.keras").stat().st_size
    assert cost.value("latency") == cost.tflite_ms and cost.value("size") == cost.tflite_bytes
    assert cost.machine and cost.threads == 1 and cost.repeats == 5
    assert Cost.from_dict(json.loads(json.dumps(cost.to_dict()))) == cost


def test_a_real_edge_search_measures_two_backbones(monkeypatch, tmp_path, sample_dir):
    """Two trials, one epoch each, of the two smallest backbones: real training, real TFLite latency."""
    monkeypatch.setitem(search_spaces.regimes.EDGE_BACKBONES, "scratch", ("mini_xception", "mobilenetv3small"))
    result = edge_search(tmp_path, sample_dir, trials=2)
    assert result.exit_code == 0, result.output
    study = load_existing("scratch-optuna-latency", storage_url(tmp_path))
    assert {t.params["backbone"] for t in study.trials} == {"mini_xception", "mobilenetv3small"}
    for t in study.trials:
        assert t.state == optuna.trial.TrialState.COMPLETE and t.values[1] == records.cost(t)["tflite_ms"] > 0
    markdown = build_report(storage_url(tmp_path), out=tmp_path / "report").documents["md"].read_text()
    assert "SYNTHETIC SAMPLE" in markdown
    # one epoch on the sample may teach neither model: then no front, and the report says why
    learned = any(records.learned(t) for t in study.trials)
    assert ("Pareto front of study scratch-optuna-latency" in markdown) == learned
    assert ("no trial's model beat the majority-class rate" in markdown) == (not learned)


def test_a_size_search_puts_size_on_the_axis_and_orders_its_front_by_bytes(tmp_path, sample_dir, edge_calls):
    result = invoke("search", "--regime", "scratch", "--trials", 5, "--data", sample_dir, "--storage",
                    storage_url(tmp_path), "--runs-dir", tmp_path / "runs", "--objective", "accuracy,size",
                    "--max-epochs", 1)
    assert result.exit_code == 0, result.output
    study = load_existing("scratch-optuna-size", storage_url(tmp_path))
    front = pareto_front(study)
    assert [t.values[1] for t in front] == sorted(t.values[1] for t in front)
    assert all(t.values[1] == COSTS[t.params["backbone"]][1] for t in study.trials)
    built = build_report(storage_url(tmp_path), out=tmp_path / "report")
    (figure,) = built.figures.values()
    assert "against its TFLite file's size" in figure.caption and "frames a second" not in figure.caption
