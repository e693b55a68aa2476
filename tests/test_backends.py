"""Keras 3 on every backend: TensorFlow stays the default and the one the suite runs fully; JAX runs the
toolkit (a subprocess with ``KERAS_BACKEND=jax``), nothing on its training path imports TensorFlow, and
its gradients (Grad-CAM, the learning probe) are TensorFlow's on the same weights."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest

from study.store import StorageError, StudySpec, open_storage
from study.store.studies import open_study

ROOT = Path(__file__).resolve().parents[1]
HAS_JAX = importlib.util.find_spec("jax") is not None
needs_jax = pytest.mark.skipif(not HAS_JAX, reason="jax is not installed (pip install -e '.[jax]')")
# PyTorch is not in the test extras (its wheel is gigabytes): where it is installed, these run on it too
OTHERS = [pytest.param("jax", marks=needs_jax),
          pytest.param("torch", marks=pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                                                         reason="torch is not installed"))]


def under(backend: str, code: str, tmp_path: Path, timeout: int = 600,
          extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "KERAS_BACKEND": backend, "FER_STUDY_CACHE": str(tmp_path / "cache"),
           "PYTHONPATH": str(ROOT), **(extra_env or {})}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def cli(backend: str, tmp_path: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "KERAS_BACKEND": backend, "FER_STUDY_CACHE": str(tmp_path / "cache")}
    # run from tmp_path: what a command writes by default (runs/, studies/) stays out of the checkout
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *args], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_a_resumed_search_refuses_another_keras_backend(tmp_path):
    storage = open_storage(f"sqlite:///{tmp_path / 'studies.db'}")
    spec = StudySpec("s", "scratch", "optuna", "accuracy", "data/sample", "0" * 16, {"backbone": "mini_xception"}, 2)
    open_study(spec, storage)
    open_study(spec, storage)  # the same backend resumes
    jax = StudySpec(**{**spec.__dict__, "keras_backend": "jax"})
    with pytest.raises(StorageError, match="keras_backend='tensorflow', this search has keras_backend='jax'"):
        open_study(jax, storage)


def test_a_study_from_before_backends_were_recorded_counts_as_tensorflow(tmp_path):
    storage = open_storage(f"sqlite:///{tmp_path / 'studies.db'}")
    spec = StudySpec("old", "scratch", "optuna", "accuracy", "data/sample", "0" * 16, {"backbone": "mini_xception"}, 2)
    study = optuna.create_study(storage=storage, study_name="old", direction="maximize")
    for key, value in spec.attrs().items():
        if key != "keras_backend":
            study.set_user_attr(key, value)
    open_study(spec, storage)
    with pytest.raises(StorageError, match="keras_backend"):
        open_study(StudySpec(**{**spec.__dict__, "keras_backend": "jax"}), storage)


@pytest.mark.parametrize("other", OTHERS)
def test_nothing_on_the_training_path_imports_tensorflow_under_another_backend(tmp_path, other):
    code = ("import sys\n"
            "import cli, study.training, study.features, study.diagnostics, study.saliency, study.tuning.search, "
            "study.experiments.final, study.experiments.curve, study.inference.export, reports.build, command_line\n"
            "import keras\n"
            "print(keras.config.backend(), sorted(m for m in sys.modules if m.split('.')[0] == 'tensorflow'))\n")
    done = under(other, code, tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == f"{other} []"


@pytest.mark.parametrize("other", OTHERS)
def test_gradients_on_another_backend_are_tensorflows_on_the_same_weights(tmp_path, other):
    """Grad-CAM and the probe's gradient norms of one saved model, under TensorFlow here and the other there."""
    import keras

    from study.config import TrainConfig
    from study.diagnostics import ProbeBatches, _backbone_scale, _gradient_norms
    from study.model import build_model
    from study.saliency import grad_cam_of
    from tests.test_training import FAST, tiny_dataset

    keras.utils.set_random_seed(0)
    model = build_model(TrainConfig(**FAST, dropout1=0.0, dropout2=0.0, dropout3=0.0), num_classes=7)  # no random draw
    model.save(tmp_path / "model.keras")
    data = tiny_dataset()
    np.save(tmp_path / "x.npy", data.val.x[:6].astype(np.float32))
    np.save(tmp_path / "y.npy", data.val.y[:6])
    batches = ProbeBatches(data.val.x[:6].astype(np.float32), data.val.y[:6], data.val.x[:6].astype(np.float32),
                           data.val.y[:6])
    here = {"maps": grad_cam_of(model, batches.val_x).maps,
            "norms": {**_gradient_norms(model, batches), **_backbone_scale(model, batches)}}
    code = f"""
import json, numpy as np, keras
from study.diagnostics import ProbeBatches, _backbone_scale, _gradient_norms
from study.saliency import grad_cam_of
import study.model  # registers the custom layers
model = keras.models.load_model({str(tmp_path / 'model.keras')!r}, compile=False)
x, y = np.load({str(tmp_path / 'x.npy')!r}), np.load({str(tmp_path / 'y.npy')!r})
np.save({str(tmp_path / 'maps.npy')!r}, grad_cam_of(model, x).maps)
b = ProbeBatches(x, y, x, y)
print(json.dumps({{**_gradient_norms(model, b), **_backbone_scale(model, b)}}))
"""
    done = under(other, code, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    there = json.loads(done.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(np.load(tmp_path / "maps.npy"), here["maps"], atol=2e-3)
    assert set(there) == set(here["norms"]) and len(there) >= 5
    for key, value in here["norms"].items():
        assert there[key] == pytest.approx(value, rel=1e-3, abs=1e-6), key


@pytest.mark.slow  # minutes of training: 6-7.5 under JAX on a 2-core AMD EPYC, in CI (torch: where installed)
@pytest.mark.parametrize("other", OTHERS)
def test_another_backend_trains_a_learner_searches_and_reports(tmp_path, other):
    sample = tmp_path / "sample"
    assert cli(other, tmp_path, "data", "sample", str(sample)).returncode == 0
    run = tmp_path / "run"
    done = cli(other, tmp_path, "train", "--data", str(sample), "--regime", "scratch", "--backbone", "mini_xception",
               "--set", "optimizer=adam", "--set", "learning_rate=0.003", "--set", "head_layers=1", "--set",
               "stall_epochs=0", "--epochs", "10", "--out", str(run))  # the demo's learner: it leaves the majority at 3-5
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["backend"]["name"] == other and other in manifest["versions"]
    test = json.loads((run / "metrics.json").read_text())["test"]
    assert test["learned"] and test["accuracy"] > 1.5 * test["baseline"]["majority_rate"], test["accuracy"]
    store = f"sqlite:///{tmp_path / 'studies.db'}"
    done = cli(other, tmp_path, "search", "--regime", "scratch", "--trials", "2", "--max-epochs", "1", "--data",
               str(sample), "--backbone", "mini_xception", "--storage", store, "--study", "other-scratch",
               "--runs-dir", str(tmp_path / "runs"))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    refused = cli("tensorflow", tmp_path, "search", "--regime", "scratch", "--trials", "3", "--max-epochs", "1",
                  "--data", str(sample), "--backbone", "mini_xception", "--storage", store, "--study", "other-scratch",
                  "--runs-dir", str(tmp_path / "runs"))
    assert refused.returncode != 0 and f"keras_backend='{other}'" in refused.stdout + refused.stderr
    done = cli(other, tmp_path, "train", "--from-study", "other-scratch", "--storage", store, "--data", str(sample),
               "--epochs", "2")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    done = cli(other, tmp_path, "report", "--storage", store, "--study", "other-scratch", "--out", str(tmp_path / "rep"),
               "--format", "md", "--partial")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    report = (tmp_path / "rep" / "report.md").read_text()
    assert any(line.startswith("| Keras backend") and other in line for line in report.splitlines()), report[-3000:]


def test_the_compilation_cache_is_jaxs_alone():
    from study import backend

    assert backend.name() == "tensorflow" and backend.use_compilation_cache() is None


@needs_jax
def test_the_compilation_cache_goes_where_jax_is_told(monkeypatch, tmp_path):
    import jax

    from study import backend

    monkeypatch.setattr(backend, "name", lambda: "jax")  # this process computes on TensorFlow: JAX's config only
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "told"))
    try:
        assert backend.use_compilation_cache() == str(tmp_path / "told")
        assert jax.config.values["jax_compilation_cache_dir"] == str(tmp_path / "told")
    finally:
        jax.config.update("jax_compilation_cache_dir", None)


@needs_jax
def test_under_jax_a_second_model_of_the_same_shapes_reads_its_compiled_step_back(tmp_path):
    """The persistent compilation cache is on under JAX: a compiled training step lands in
    $FER_STUDY_CACHE/jax-compilation, and a second model of the same shapes at another learning rate (the
    next trial of a search) reads it back: the cache's one entry is its."""
    folder = tmp_path / "cache" / "jax-compilation"
    code = f"""
import json, os, numpy as np, keras
from study import backend
from study.config import TrainConfig
from study.model import build_model
x = np.zeros((8, 48, 48, 1), "float32"); y = np.eye(7, dtype="float32")[np.arange(8) % 7]
steps = []
for rate in (1e-3, 1e-2):
    model = build_model(TrainConfig(backbone="mini_xception", dense1_units=16, dense2_units=16, dense3_units=16),
                        num_classes=7)
    model.compile(optimizer=keras.optimizers.Adam(rate), loss="categorical_crossentropy", jit_compile=True)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    kept = os.listdir({str(folder)!r})
    steps.append(sorted(n for n in kept if n.startswith("jit_train_step-") and n.endswith("-cache")))
print(json.dumps({{"folder": backend.use_compilation_cache(), "steps": steps}}))
"""
    done = under("jax", code, tmp_path,  # the tiny step may compile in under JAX's second: keep it whatever it took
                 extra_env={"JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"})
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["folder"] == str(folder)
    first, second = found["steps"]
    assert len(first) == 1  # the first model's training step, compiled and kept
    assert second == first  # the second's was the same program: read back, nothing new written


@needs_jax
def test_tensorflow_only_exports_are_refused_under_jax_in_one_line(tmp_path):
    import keras

    from study.config import TrainConfig
    from study.model import build_model
    from tests.test_training import FAST

    keras.utils.set_random_seed(0)
    build_model(TrainConfig(**FAST), num_classes=7).save(tmp_path / "model.keras")
    for fmt in ("savedmodel", "tflite"):
        done = cli("jax", tmp_path, "export", str(tmp_path / "model.keras"), "--format", fmt, "--out",
                   str(tmp_path / f"out-{fmt}"), timeout=300)
        lines = [line for line in done.stderr.splitlines() + done.stdout.splitlines() if line.startswith("error:")]
        assert done.returncode == 2 and len(lines) == 1, done.stdout[-1000:] + done.stderr[-1000:]
        assert f"a {fmt} export needs TensorFlow as the Keras backend" in lines[0] and "runs jax" in lines[0]
        assert not (tmp_path / f"out-{fmt}").exists()


@needs_jax
@pytest.mark.slow  # minutes of training
@pytest.mark.long  # too long for CI's hour: run by hand (README, Tests)
def test_the_gpu_check_runs_under_jax_and_writes_its_table_part_by_part(tmp_path):
    env = {**os.environ, "KERAS_BACKEND": "jax", "FER_STUDY_CACHE": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-m", "benchmarks.gpu", "--quick", "--out", str(tmp_path / "out")], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    found = json.loads((tmp_path / "out" / "gpu.json").read_text())
    assert found["backend"]["name"] == "jax" and len(found["throughput"]) == 4 and not found["skipped"]
    assert all(rate > 0 for rate in found["throughput"].values())
    assert found["schedule"]["epochs"] == 1 and found["search"]["trials"] == 2
    table = (tmp_path / "out" / "table.md").read_text()
    assert "on jax" in table and "gpu: search, 2 trials" in table and "16/mixed_bfloat16/nojit" in table
    readme = tmp_path / "README.md"
    readme.write_text("# x\n<!-- benchmarks-gpu:start -->\nnot run\n<!-- benchmarks-gpu:end -->\n")
    done = subprocess.run([sys.executable, "-m", "benchmarks.gpu", "--read", str(tmp_path / "out" / "gpu.json"),
                           "--write", str(readme)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    written = readme.read_text()
    assert "not run" not in written and "16/mixed_bfloat16/nojit (jax on CPU" in written  # the JAX run's figures


@pytest.mark.slow  # downloads a dozen wheels from the package index
def test_the_gpu_pack_holds_the_wheels_the_faces_and_the_command_within_the_limit(tmp_path):
    faces = tmp_path / "faces"
    assert cli("tensorflow", tmp_path, "data", "sample", str(faces), "--per-class", "5").returncode == 0
    done = subprocess.run([sys.executable, "-m", "benchmarks.gpu_pack", "--faces", str(faces), "--dest",
                           str(tmp_path / "pack")], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    wheels = sorted(p.name for p in (tmp_path / "pack" / "wheels").glob("*.whl"))
    assert any(w.startswith("keras-") for w in wheels) and any(w.startswith("optuna-") for w in wheels)
    assert all("cp312" in w or "py3-none-any" in w for w in wheels), wheels
    import tarfile

    with tarfile.open(tmp_path / "pack" / "fer2013.tar.gz") as tar:
        assert any(name.startswith("fer2013/train/") for name in tar.getnames())
    run = (tmp_path / "pack" / "run.sh").read_text()
    assert "KERAS_BACKEND=jax" in run and "python3 -m benchmarks.gpu" in run and "MiB travel" in done.stdout


def test_the_cpu_reference_measures_throughput_and_the_search_and_reads_the_schedule_from_the_kept_run(monkeypatch):
    from types import SimpleNamespace

    from benchmarks import gpu

    asked = {}

    def measure(data_path, quick, budget, out, parts=gpu.PARTS):
        asked.update(data=data_path, budget=budget, parts=parts)
        return {"throughput": {"64/float32/jit": 40.0}, "skipped": [],
                "search": {"seconds": 1200.0, "best": 0.3, "trials": 6, **gpu.SEARCH}}

    kept = SimpleNamespace(
        metrics={"test": {"accuracy": 0.53, "baseline": {"majority_rate": 0.25}, "learned": True, "n": 4306}},
        manifest={"timings_seconds": {"total": 7600.0}, "data": {"fingerprint": "abc"}}, history=[None] * 20,
        path=Path("/kept/run"))
    monkeypatch.setattr(gpu, "measure", measure)
    monkeypatch.setattr(gpu, "_kept_scratch_run", lambda: kept)
    found = gpu.reference_figures(Path("/faces"), quick=False, budget=99.0)
    assert asked == {"data": Path("/faces"), "budget": 99.0, "parts": ("compiled", "op-by-op", "search")}
    assert found["search"]["best"] == 0.3 and found["schedule"]["epochs"] == 20
    assert found["schedule"]["test_accuracy"] == 0.53 and found["schedule"]["seconds"] == 7600.0
    rows = {row.benchmark.split(" (")[0]: row for row in gpu.rows(
        {**found, "backend": {"name": "jax"}, "device": "GPU", "backbone": "densenet169"}, found)}
    assert any(name.startswith("gpu: search, ") for name in rows)
    assert next(r for n, r in rows.items() if n.startswith("gpu: search")).baseline == "20.0 min, best val accuracy 0.300"


def test_a_reference_filled_in_parts_measures_only_what_it_skipped_and_says_which_machine_measured_it(monkeypatch):
    from benchmarks import gpu

    asked = {}

    def measure(data_path, quick, budget, out, parts=gpu.PARTS, only=None):
        asked.update(quick=quick, parts=parts, only=only)
        return {"machine": "Machine: AMD EPYC, 2 cores", "throughput": {"256/mixed_bfloat16/nojit": 30.0},
                "skipped": [], "search": {"seconds": 3600.0, "best": 0.4, "trials": 6, **gpu.SEARCH}}

    monkeypatch.setattr(gpu, "measure", measure)
    monkeypatch.setattr(gpu, "cpu_model", lambda: "AMD EPYC")
    reference = {"machine": "Machine: Intel Xeon, 2 cores", "throughput": {"64/float32/jit": 64.0},
                 "skipped": ["throughput 256/mixed_bfloat16/nojit", "search"],
                 "schedule": {"seconds": 7600.0, "epochs": 20, "test_accuracy": 0.53, "majority_rate": 0.25,
                              "learned": True, "test_faces": 4306}}
    filled = gpu.fill_reference(reference, Path("/faces"), budget=99.0)
    assert not asked["quick"] and asked["only"] == {"throughput 256/mixed_bfloat16/nojit", "search"}
    assert filled["throughput"] == {"64/float32/jit": 64.0, "256/mixed_bfloat16/nojit": 30.0}
    assert filled["skipped"] == [] and filled["schedule"] == reference["schedule"]
    assert filled["machine"] == reference["machine"]  # the reference's own figures stay the first machine's
    assert set(filled["measured_on"]) == {"throughput 256/mixed_bfloat16/nojit", "search"}
    gpu_found = {"backend": {"name": "jax"}, "device": "GPU", "backbone": "densenet169", "skipped": [],
                 "throughput": {"64/float32/jit": 640.0, "256/mixed_bfloat16/nojit": 3000.0},
                 "search": {"seconds": 360.0, "best": 0.45, "trials": 6, **gpu.SEARCH}}
    baselines = [row.baseline for row in gpu.rows(gpu_found, filled)]
    assert baselines[0] == "64 img/s" and baselines[1] == "30 img/s (on AMD EPYC)"
    assert baselines[2].endswith("best val accuracy 0.400 (on AMD EPYC)")


@needs_jax
def test_the_device_a_run_records_is_the_gpu_model_by_name_on_each_backend(monkeypatch):
    from types import SimpleNamespace

    import jax
    import tensorflow as tf

    from study import backend

    h100 = "NVIDIA H100 80GB HBM3"
    monkeypatch.setattr(backend, "name", lambda: "jax")
    monkeypatch.setattr(jax, "devices", lambda: [SimpleNamespace(platform="gpu", device_kind=h100, id=0)])
    assert backend.device() == h100
    monkeypatch.setattr(jax, "devices", lambda: [SimpleNamespace(platform="cpu", device_kind="cpu", id=0)])
    assert backend.device().startswith("CPU (")
    monkeypatch.setattr(backend, "name", lambda: "tensorflow")
    gpu = SimpleNamespace(name="/physical_device:GPU:0", device_type="GPU")
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind: [gpu] if kind == "GPU" else [])
    monkeypatch.setattr(tf.config.experimental, "get_device_details", lambda d: {"device_name": h100})
    assert backend.device() == h100


def test_the_gpu_check_holds_to_its_budget_compiled_throughput_first_then_the_schedule_and_search_cut_short(
        monkeypatch):  # and the configurations with jit off last, with what time is left
    from types import SimpleNamespace

    from benchmarks import gpu

    now, asked = [1000.0], {}

    def throughput(backbone, batch, precision, jit, steps):
        now[0] += 30.0
        return 100.0

    def schedule(data_path, backbone, epochs, until=None):
        asked["until"] = until
        now[0] += 30.0
        return {"epochs": 3}

    def search(data_path, backbone, sizes, timeout=None):
        asked["timeout"] = timeout
        return {"trials": 1}

    monkeypatch.setattr(gpu, "time", SimpleNamespace(perf_counter=lambda: now[0]))
    monkeypatch.setattr(gpu, "throughput", throughput)
    monkeypatch.setattr(gpu, "schedule", schedule)
    monkeypatch.setattr(gpu, "search", search)
    found = gpu.measure(Path("/faces"), False, 100.0, None, parts=gpu.GPU_PARTS, throughput_share=0.4,
                        stop_at_budget=True)
    # compiled configurations start at 0 s and 30 s of the budget; at 60 s its 40% for them is spent; the schedule
    # ends at 90 s; the search has 10 s left and takes none here; one configuration with jit off starts at 90 s
    assert list(found["throughput"]) == ["64/float32/jit", "64/mixed_bfloat16/jit", "64/float32/nojit"]
    names = [f"throughput {gpu.key(*c)}" for c in gpu.configurations(gpu.BATCHES)]
    assert names[:4] == [f"throughput {b}/{p}/jit" for b in (64, 256) for p in ("float32", "mixed_bfloat16")]
    assert found["skipped"] == names[2:4] + names[5:]
    assert asked == {"until": 1100.0, "timeout": 10.0}  # the schedule stops at the budget; the search has 10 s left
    now[0] = 1000.0
    found = gpu.measure(Path("/faces"), False, 1000.0, None)  # the CPU reference: nothing is cut short
    assert len(found["throughput"]) == 8 and asked == {"until": None, "timeout": None}


def test_the_schedule_stops_at_the_end_of_the_epoch_in_which_its_time_is_up():
    import time

    import keras

    from benchmarks.gpu import StopAt

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    x, y = np.zeros((8, 3), "float32"), np.eye(2, dtype="float32")[[0, 1] * 4]
    later, now = StopAt(time.perf_counter() + 3600), StopAt(time.perf_counter())
    assert len(model.fit(x, y, epochs=3, verbose=0, callbacks=[later]).history["loss"]) == 3 and not later.stopped
    assert len(model.fit(x, y, epochs=3, verbose=0, callbacks=[now]).history["loss"]) == 1 and now.stopped
    assert len(model.fit(x, y, epochs=2, verbose=0, callbacks=[StopAt(None)]).history["loss"]) == 2


@pytest.mark.slow  # two one-epoch trainings of mini_xception
def test_a_schedule_cut_short_says_so_and_one_whose_last_epoch_ran_late_does_not(tmp_path, monkeypatch):
    import time

    from benchmarks import gpu
    from study.sample import write_sample

    data = write_sample(tmp_path / "faces", per_class=20, seed=0)
    folders = iter([tmp_path / "a", tmp_path / "b"])
    monkeypatch.setattr(gpu, "scratch_dir", lambda: next(folders))
    cut = gpu.schedule(data, "mini_xception", 2, until=time.perf_counter())
    assert (cut["epochs"], cut["planned_epochs"], cut["stopped_at_limit"]) == (1, 2, True)
    assert 0.0 <= cut["test_accuracy"] <= 1.0 and cut["test_faces"] > 0
    late = gpu.schedule(data, "mini_xception", 1, until=time.perf_counter())
    assert (late["epochs"], late["planned_epochs"], late["stopped_at_limit"]) == (1, 1, False)


def test_a_schedule_or_search_cut_short_on_the_gpu_is_compared_per_epoch_or_per_trial():
    from benchmarks import gpu

    reference = {"schedule": {"seconds": 8000.0, "epochs": 20, "test_accuracy": 0.569},
                 "search": {"seconds": 2640.0, "best": 0.27, "trials": 6}}
    found = {"backend": {"name": "jax"}, "device": "GPU", "backbone": "densenet169", "skipped": [], "throughput": {},
             "schedule": {"seconds": 100.0, "epochs": 5, "planned_epochs": 20, "stopped_at_limit": True,
                          "test_accuracy": 0.41, "majority_rate": 0.25, "learned": True, "test_faces": 4306},
             "search": {**gpu.SEARCH, "seconds": 60.0, "best": None, "trials": 3}}
    schedule, search = gpu.rows(found, reference)
    assert "5 of 20 epochs (stopped at the time limit), ratio per epoch" in schedule.benchmark
    assert schedule.ratio == pytest.approx((8000 / 20) / (100 / 5)) and schedule.met is True
    assert "search, 3 trials, ratio per trial, <= 3 epochs" in search.benchmark
    assert search.ratio == pytest.approx((2640 / 6) / (60 / 3)) and search.ours.endswith("no trial finished")
    whole = {**found, "schedule": {**found["schedule"], "epochs": 20, "stopped_at_limit": False},
             "search": {**found["search"], "trials": 6, "best": 0.3}}
    schedule, search = gpu.rows(whole, reference)
    assert ", 20 epochs; test" in schedule.benchmark and schedule.ratio == pytest.approx(80.0)
    assert "per trial" not in search.benchmark and search.ratio == pytest.approx(44.0)


def test_filling_the_reference_needs_the_reference_flag():
    done = subprocess.run([sys.executable, "-m", "benchmarks.gpu", "--missing"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 2 and "--missing adds to gpu_reference.json" in done.stderr
