"""The commands feel finished: read-only commands start without TensorFlow, ``--version``, no native
TensorFlow chatter on stderr, search and final-run progress that names what it shows, headers that
are never cut at 80 columns, and a ``data describe`` that writes nothing unless told where.

No test trains: the search display is driven with an in-memory optuna study, final runs with the
training replaced. Start-up is checked structurally (what a command imports), never timed.
"""
from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
from click.testing import CliRunner
from rich.console import Console

from cli import cli
from study.store import StudySpec, open_storage, open_study
from tests.told import Told

ROOT = Path(__file__).resolve().parents[1]
CHATTER = (
    "All log messages before absl::InitializeLog() is called",
    "oneDNN custom operations are on",
    "Could not find cuda drivers on your machine",
    "failed call to cuInit",
)


def tiny_store(tmp_path: Path, name: str = "tiny-scratch", regime: str = "scratch") -> str:
    """A SQLite store with one study of two complete trials, as a search leaves it (no training)."""
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    spec = StudySpec(name, regime, "optuna", "accuracy", "data/sample", "0" * 16, {"backbone": "mini_xception"}, 2)
    study = open_study(spec, open_storage(url))
    lr = optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True)
    for number, value in enumerate((0.31, 0.44)):
        trial = study.ask({"learning_rate": lr})
        trial.set_user_attr("epochs", 2)
        trial.set_user_attr("run_dir", f"runs/{name}/trial-{number}")
        study.tell(trial, value)
    return url


def python(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300, **kwargs)


# ------------------------------------------------------------------------------ 1. start-up
def test_read_only_commands_import_neither_tensorflow_nor_keras_nor_pandas(tmp_path):
    url = tiny_store(tmp_path)
    script = textwrap.dedent(f"""
        import json, sys
        from click.testing import CliRunner
        from cli import cli
        from study import quiet_tf
        codes = {{}}
        for args in (["--help"], ["--version"], ["studies", "--help"], ["studies", "--storage", {url!r}],
                     ["show", "tiny-scratch", "--storage", {url!r}], ["space", "--regime", "scratch"],
                     ["space", "--regime", "transfer"], ["report", "--help"], ["train", "--help"]):
            codes[" ".join(args)] = CliRunner().invoke(cli, args).exit_code
        print(json.dumps({{"codes": codes,
                           "heavy": sorted(m for m in sys.modules
                                           if m.split(".")[0] in ("tensorflow", "keras", "pandas", "matplotlib")),
                           "hooked": any(isinstance(f, quiet_tf.QuietImport) for f in sys.meta_path)}}))
    """)
    done = python("-c", script)
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(seen["codes"].values()) == {0}, seen["codes"]
    assert seen["heavy"] == []
    assert seen["hooked"]  # cli.py installed the quiet import, and no command set it off


@pytest.mark.parametrize("args", [["--help"], ["studies", "--help"], ["space", "--regime", "scratch"]])
def test_importtime_shows_no_tensorflow_and_no_pandas_for(args):
    done = python("-X", "importtime", "cli.py", *args)
    assert done.returncode == 0, done.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "command_line" in imported  # the output was read
    assert not {m for m in imported if m.split(".")[0] in ("tensorflow", "keras", "pandas")}


def test_the_startup_benchmark_builds_its_store_and_lists_the_commands(tmp_path):
    from benchmarks import startup

    url = startup.make_store(tmp_path)
    labels = [label for label, _ in startup.commands(url)]
    assert labels[0] == "cli.py --help" and any(label.startswith("cli.py show") for label in labels)
    assert optuna.load_study(study_name=startup.STUDY, storage=url).best_value == pytest.approx(0.44)


# ------------------------------------------------------------------------------ 2. --version
def test_version_is_the_installed_distributions():
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"fer-study {metadata.version('fer-study')}"
    assert "--version" in CliRunner().invoke(cli, ["--help"]).output


# ------------------------------------------------------------------------------ 3. TensorFlow's chatter
def test_a_command_that_imports_tensorflow_prints_only_its_own_error(tmp_path):
    """evaluate imports TensorFlow (through Keras) before it finds the run incomplete."""
    (tmp_path / "run").mkdir()
    done = python("cli.py", "evaluate", str(tmp_path / "run"), env=_env_without_tf_level())
    assert done.returncode == 2, done.stderr[-2000:]
    assert not [c for c in CHATTER if c in done.stderr], done.stderr
    lines = [line for line in done.stderr.splitlines() if not line.startswith("Matplotlib is building the font cache")]
    assert len(lines) == 1 and lines[0].startswith("error: run "), done.stderr  # its own error, nothing else


def test_tensorflow_imported_and_its_devices_listed_say_nothing():
    script = ("import cli, sys, tensorflow as tf; tf.config.list_physical_devices(); "
              "print(type(tf.__spec__.loader).__name__, tf.__loader__ is tf.__spec__.loader)")
    done = python("-c", script, env=_env_without_tf_level())
    assert done.returncode == 0, done.stderr[-2000:]
    assert not [c for c in CHATTER if c in done.stderr], done.stderr
    assert done.stdout.split() == ["SourceFileLoader", "True"]  # the module as a plain import leaves it


def _env_without_tf_level() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # cli.py's own default applies


FAKE = '''
import os, sys
os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\\n")
os.write(2, b"I0000 00:00:1796224334.304911    7071 port.cc:153] oneDNN custom operations are on. You may see\\n")
os.write(2, b"I0000 00:00:1796224334.305217    7071 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.\\n")
os.write(2, b"E0000 00:00:1796224339.222203    7071 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error\\n")
os.write(2, b"E0000 00:00:1796224339.3 7071 something.cc:1] a real native error\\n")
print("a Python warning on stderr", file=sys.stderr)
VALUE = 42
'''


@pytest.mark.parametrize("gpu_device", [False, True])
def test_the_quiet_import_drops_the_chatter_and_replays_everything_else(tmp_path, gpu_device):
    (tmp_path / "chatty_fake.py").write_text(FAKE)
    (tmp_path / "chatty_broken.py").write_text("import os\nos.write(2, b'why it broke\\n')\nraise ImportError('broken')\n")
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        from study import quiet_tf
        patterns = quiet_tf.chatter_patterns(gpu_device={gpu_device})
        finder = quiet_tf.install("chatty_fake", after=None, patterns=patterns)
        import chatty_fake
        assert chatty_fake.VALUE == 42 and finder not in sys.meta_path
        assert type(chatty_fake.__loader__).__name__ == "SourceFileLoader"
        quiet_tf.install("chatty_broken", after=None, patterns=patterns)
        try:
            import chatty_broken
        except ImportError as exc:
            print("raised", exc, file=sys.stderr)
        print("stderr still works", file=sys.stderr)
    """)
    done = python("-c", script)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert not [line for line in lines if "absl::InitializeLog" in line or "oneDNN" in line]
    cuda = [line for line in lines if "cuda drivers" in line or "cuInit" in line]
    assert len(cuda) == (2 if gpu_device else 0)  # on a GPU machine the CUDA lines say something is wrong
    for kept in ("a real native error", "a Python warning on stderr", "why it broke", "raised broken",
                 "stderr still works"):
        assert any(kept in line for line in lines), (kept, lines)


def test_two_entry_points_installing_the_quiet_import_share_one_finder(tmp_path):
    """cli.py and benchmarks both install it; in one process (a test run) two finders asked each other
    for the spec until the recursion limit, and every test module importing keras failed to collect."""
    (tmp_path / "chatty_fake.py").write_text(FAKE)
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        from study import quiet_tf
        first = quiet_tf.install("chatty_fake", after=None)
        assert quiet_tf.install("chatty_fake", after=None) is first
        sys.meta_path.insert(0, quiet_tf.QuietImport("chatty_fake"))  # a second one, however it got there
        import chatty_fake
        assert chatty_fake.VALUE == 42
        print("imported")
    """)
    done = python("-c", script)
    assert done.returncode == 0 and done.stdout.strip() == "imported", done.stderr[-2000:]


def test_every_log_line_asked_for_installs_nothing(monkeypatch):
    from study import quiet_tf

    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    assert quiet_tf.install("some_module_never_imported") is None
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    assert quiet_tf.install("sys") is None  # already imported: nothing to intercept


# ------------------------------------------------------------------------------ 4. progress that says something
def display_for(objective: str = "accuracy", regime: str = "scratch", max_epochs: int | None = 10,
                terminal: bool = False, name: str = "tiny-scratch"):
    from command_line.search_display import SearchDisplay

    study = optuna.create_study(study_name=name, direction="minimize" if objective == "loss" else "maximize")
    for key, value in {"objective": objective, "regime": regime, "base": {"backbone": "mini_xception"},
                       "max_epochs": max_epochs}.items():
        study.set_user_attr(key, value)
    out = io.StringIO()
    console = Console(file=out, width=80, force_terminal=terminal, color_system=None)
    return SearchDisplay(console, study, total=3), study, out


LR = {"learning_rate": optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True),
      "optimizer": optuna.distributions.CategoricalDistribution(["sgd", "adam"])}


def test_a_finished_trial_line_names_its_objective_and_the_best():
    display, study, out = display_for()
    trial = study.ask(LR)
    study.tell(trial, 0.4417)
    display.trial_finished(study, study.trials[-1])
    pruned = study.ask(LR)
    pruned.report(0.2, step=0)
    pruned.report(0.21, step=3)
    study.tell(pruned, state=optuna.trial.TrialState.PRUNED)
    display.trial_finished(study, study.trials[-1])
    first, second = out.getvalue().splitlines()
    params = f"[optimizer={trial.params['optimizer']}  lr={trial.params['learning_rate']:.3g}]"
    assert first == f"trial 0 complete  val_accuracy 0.4417  {params}  best 0.4417 (#0)"
    assert second.startswith("trial 1 pruned  after epoch 4  [optimizer=") and second.endswith("best 0.4417 (#0)")


def test_a_loss_study_names_val_loss_without_the_penalty_per_trial_and_with_it_per_epoch():
    display, study, out = display_for(objective="loss")
    display.trial_started(0, {"learning_rate": 0.01})
    display.epoch_ended(0, 1, {"val_loss": 1.7, "loss": 1.5, "val_accuracy": 0.3})
    trial = study.ask(LR)
    study.tell(trial, 1.2345)
    display.trial_finished(study, study.trials[-1])
    epoch, finished = out.getvalue().splitlines()
    assert epoch == "  trial 0 epoch 1/10  val_loss+L2 1.7000  loss+L2 1.5000"
    assert finished.startswith("trial 0 complete  val_loss 1.2345  [")


def test_off_a_terminal_each_epoch_of_a_running_trial_is_one_line():
    display, _, out = display_for(regime="transfer", max_epochs=5)
    display.trial_started(3, {"learning_rate": 0.01})
    for epoch in (1, 2):
        display.epoch_ended(3, epoch, {"val_accuracy": 0.4 + epoch / 100, "loss": 1.9, "val_loss": 2.0})
    assert out.getvalue().splitlines() == [
        "  trial 3 epoch 1/10  val_accuracy 0.4100  loss+L2 1.9000",  # transfer: both phases, each capped at 5
        "  trial 3 epoch 2/10  val_accuracy 0.4200  loss+L2 1.9000",
    ]
    macro, _, macro_out = display_for(objective="macro_f1")
    macro.trial_started(0, {})
    macro.epoch_ended(0, 1, {"val_accuracy": 0.3, "loss": 1.9})  # Keras logs no per-epoch macro-F1
    assert macro_out.getvalue() == "  trial 0 epoch 1/10  val_accuracy 0.3000  loss+L2 1.9000\n"


def test_on_a_terminal_the_live_table_shows_the_epoch_and_nothing_is_printed():
    display, _, out = display_for(terminal=True)
    display.trial_started(0, {"learning_rate": 0.01})
    display.epoch_ended(0, 4, {"val_accuracy": 0.41, "loss": 1.9})
    assert out.getvalue() == ""
    table = Console(file=io.StringIO(), width=120, record=True)
    table.print(display.table())
    text = table.export_text()
    assert "RUNNING (epoch 4/10)" in text and "val_accuracy" in text


def test_final_runs_are_headed_seed_k_of_n(tmp_path, monkeypatch):
    from study.experiments import final

    url = tiny_store(tmp_path)
    monkeypatch.setattr(final, "_load", lambda study, data, config: SimpleNamespace(train=SimpleNamespace(y=[0] * 12)))
    monkeypatch.setattr(final, "train", lambda config, data, run_dir, **kwargs: SimpleNamespace(run_dir=run_dir))
    told = Told()
    said = told.said
    final.train_from_study("tiny-scratch", storage=url, seeds=2, runs_dir=tmp_path / "runs", events=told)
    assert [line.split(":")[0] for line in said] == ["seed 1/2", "seed 2/2"]
    assert "with seed 0," in said[0] and "with seed 1," in said[1] and "(trial 1)" in said[0]


def test_the_epoch_line_of_a_single_run_labels_the_penalised_loss():
    from command_line.progress import format_logs

    text = format_logs({"loss": 1.5, "accuracy": 0.4, "val_loss": 1.7, "val_accuracy": 0.3},
                   ("loss", "accuracy", "val_loss", "val_accuracy"))
    assert text == "loss+L2 1.500  acc 0.400  val_loss+L2 1.700  val_acc 0.300"


# ------------------------------------------------------------------------------ 4c. nothing cut at 80 columns
def test_the_demo_headers_fit_80_columns_of_a_pipe(tmp_path, monkeypatch):
    import reports.build
    import reports.curve
    import study.experiments.curve
    import study.experiments.final
    import study.tuning.search
    from command_line import demo

    out = io.StringIO()
    monkeypatch.setattr(demo, "console", Console(file=out, width=80, soft_wrap=True))
    long = tmp_path / ("a-long-folder-name-" * 4)
    paths = demo.DemoPaths(data=long / "sample", pretrain_data=long / "sample-pretrain", runs=long / "runs",
                           storage=f"sqlite:///{long / 'studies.db'}", report=long / "report")
    long.mkdir()
    for name in ("demo-scratch", "demo-transfer"):
        optuna.create_study(study_name=name, storage=paths.storage)
    monkeypatch.setattr(demo, "_ensure_samples", lambda paths: None)
    monkeypatch.setattr(demo, "train_and_report", lambda *args, **kwargs: None)
    monkeypatch.setattr(study.tuning.search, "run_search", lambda request, events: None)
    monkeypatch.setattr(study.experiments.final, "train_from_study", lambda *args, **kwargs: [])
    monkeypatch.setattr(reports.build, "build_report", lambda **kwargs: SimpleNamespace(documents={}))
    monkeypatch.setattr(study.experiments.curve, "plan_curve", lambda *args, **kwargs: None)
    monkeypatch.setattr(study.experiments.curve, "run_curve", lambda *args, **kwargs: SimpleNamespace(trained=[], found=[]))
    monkeypatch.setattr(reports.curve, "gather_curves", lambda storage: [])
    monkeypatch.setattr(demo, "summary_table", lambda names, storage: "summary")
    demo.run_demo(paths)
    text = out.getvalue()
    assert "…" not in text, text
    for header in ("pretraining", "search: scratch (demo-scratch)", "search: transfer (demo-transfer)",
                   "final runs: demo-scratch", "data-efficiency curve (demo-curve)", "report"):
        assert re.search(rf"─ {re.escape(header)} ─", text), (header, text)
    assert "scratch regime, optuna, 5 trials of at most 10 epochs a phase" in text
    assert f"mini_xception on {paths.pretrain_data} (stands in for ImageNet)" in text


def test_the_demo_summary_fits_80_columns_and_gives_both_regimes_the_same_final_epochs(monkeypatch):
    from command_line import demo

    rows = [{"study": f"demo-{regime}", "default_value": 0.251, "best_value": 0.8, "best_trial": 4,
             "test_accuracy": [0.6914, 0.72, 0.6829], "test_macro_f1": [0.5606, 0.5975, 0.5689],
             "majority_rate": 0.2514, "learned": True} for regime in ("scratch", "transfer")]
    monkeypatch.setattr(demo, "demo_summary", lambda names, storage: rows)
    out = io.StringIO()
    Console(file=out, width=80).print(demo.summary_table(["demo-scratch", "demo-transfer"], "sqlite://"))
    text = out.getvalue()
    assert "…" not in text and "demo-transfer" in text and "0.691, 0.720, 0.683" in text, text
    # like with like: scratch's one phase trains as many epochs as transfer's two
    assert demo.FINAL_EPOCHS["scratch"] == 2 * demo.FINAL_EPOCHS["transfer"]
    assert demo.MAX_EPOCHS["scratch"] == 2 * demo.MAX_EPOCHS["transfer"]


def test_the_search_display_fits_80_columns_of_a_pipe():
    display, study, out = display_for(name="a-study-name-long-enough-to-crowd-the-progress-bar-" * 2)
    display.trial_started(0, {"learning_rate": 0.01, "optimizer": "sgd"})
    with display:
        display.epoch_ended(0, 1, {"val_accuracy": 0.3, "loss": 1.9})
        trial = study.ask(LR)
        study.tell(trial, 0.3)
        display.trial_finished(study, study.trials[-1])
    text = out.getvalue()
    assert "…" not in text, text
    assert "1/3" in text and "a-study-name-long-enough" in text  # the bar's count and the study's name


# ------------------------------------------------------------------------------ 5. side effects
def test_data_describe_writes_nothing_unless_told_where(sample_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["data", "describe", str(sample_dir)])
    assert result.exit_code == 0, result.output
    assert "disgust" in result.output and "add --out class_distribution.png" in result.output
    assert list(tmp_path.iterdir()) == []
    chart = tmp_path / "charts" / "c.png"
    chart.parent.mkdir()
    told = CliRunner().invoke(cli, ["data", "describe", str(sample_dir), "--out", str(chart)])
    assert told.exit_code == 0 and f"chart: {chart}" in told.output and chart.stat().st_size > 10_000


def test_report_names_the_storage_variable_and_creates_nothing_without_a_store(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert "FER_STUDY_STORAGE" in CliRunner().invoke(cli, ["report", "--help"]).output
    result = CliRunner().invoke(cli, ["report", "--storage", f"sqlite:///{tmp_path / 'none.db'}",
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "no study store at" in result.output
    assert list(tmp_path.iterdir()) == []
