"""The layers of docs/ARCHITECTURE.md, checked on the source: the import graph has no cycle, the core
knows no command line, and a function-level import of a project module defers a heavy dependency.

The graph is built with ``ast`` from module-level imports (``if TYPE_CHECKING:`` blocks never run, so
they are left out). ``from package.sub import name`` is an edge to ``package.sub``; ``from package
import name`` is an edge to ``package.name`` when that is a module, else to the package itself.
"""
from __future__ import annotations

import ast
import dataclasses
import json
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("study", "search_spaces", "reports", "command_line", "benchmarks")
CORE = ("study", "search_spaces", "reports")
# What a function may defer on purpose: seconds of start-up (TensorFlow and what loads it, OpenCV,
# the ONNX converter, the plotting and PDF stacks, the trackers' libraries) that most commands never need.
HEAVY = {"tensorflow", "keras", "keras_tuner", "tf2onnx", "onnxruntime", "cv2", "matplotlib", "reportlab",
         "optuna_integration", "jax", "torch", "mlflow", "tensorboard"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    found = {module_name(p): p for package in PACKAGES for p in (ROOT / package).rglob("*.py")}
    found["cli"] = ROOT / "cli.py"
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(nodes: list[ast.stmt], module: str, top: bool) -> list[tuple[ast.stmt, list[str]]]:
    """(import statement, the modules it names): at module level (``top``), or inside functions."""
    found = []
    for node in nodes:
        if isinstance(node, ast.If) and _is_type_checking(node):
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            if top:
                found.append((node, targets(node, module)))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if not top:
                found += [(n, targets(n, module)) for n in ast.walk(node) if isinstance(n, (ast.Import, ast.ImportFrom))]
        else:
            for field in ("body", "orelse", "finalbody", "handlers"):
                children = getattr(node, field, None)
                if isinstance(children, list):
                    found += _imports([c for c in children if isinstance(c, ast.AST)], module, top)
    return found


def targets(node: ast.Import | ast.ImportFrom, module: str) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:  # relative import
        package = module.rsplit(".", node.level)[0] if modules()[module].name != "__init__.py" else module
        base = f"{package}.{base}".rstrip(".")
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in modules() else base for a in node.names]


@cache
def tree(module: str) -> ast.Module:
    return ast.parse(modules()[module].read_text())


@cache
def graph() -> dict[str, set[str]]:
    """Project module -> the project modules it imports at module level."""
    return {m: {t for _, ts in _imports(tree(m).body, m, top=True) for t in ts if t in modules()} for m in modules()}


@cache
def heavy(module: str, seen: frozenset[str] = frozenset()) -> bool:
    """Importing ``module`` loads a heavy dependency (directly or through project modules)."""
    direct = {t.split(".")[0] for _, ts in _imports(tree(module).body, module, top=True) for t in ts}
    return bool(direct & HEAVY) or any(heavy(t, seen | {module}) for t in graph()[module] if t not in seen)


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (its modules in order), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_the_project_has_no_import_cycle():
    assert len(graph()) > 50  # the whole project was read
    assert find_cycle(graph()) is None, f"import cycle: {' -> '.join(find_cycle(graph()))}"


# layer -> the layers it must not import (docs/ARCHITECTURE.md): the store reads and writes studies
# without any search; reports and prediction read the store without any backend; a search knows
# nothing of the experiments built on it (final runs, curves); nothing below the command line knows it.
FORBIDDEN = {
    "search_spaces": ("study.store", "study.tuning", "study.inference", "reports", "command_line", "cli"),
    "study.store": ("study.tuning", "study.inference", "study.training", "reports", "command_line", "cli"),
    "study.inference": ("study.tuning", "reports", "command_line", "cli"),
    "reports": ("study.tuning", "study.experiments", "study.inference", "command_line", "cli"),
    "study.tuning": ("study.experiments", "study.inference", "reports", "command_line", "cli"),
    "study.experiments": ("study.inference", "reports", "command_line", "cli"),
    "study.events": ("study", "search_spaces", "reports", "command_line", "cli"),  # every layer tells events: it imports none
    "study": ("command_line", "cli"),
}


def _layer(module: str) -> str | None:
    return next((layer for layer in FORBIDDEN if module == layer or module.startswith(layer + ".")), None)


def test_each_layer_imports_only_what_lies_below_it():
    problems = []
    for module in modules():
        layer = _layer(module)
        if layer is None:
            continue
        imported = {t for _, ts in _imports(tree(module).body, module, top=True)
                    + _imports(tree(module).body, module, top=False) for t in ts}
        problems += [f"{module} imports {t}" for t in sorted(imported)
                     if any(t == f or t.startswith(f + ".") for f in FORBIDDEN[layer])]
    assert problems == []


def test_a_function_level_import_of_a_project_module_defers_a_heavy_dependency_and_says_so():
    offenders = []
    for module in modules():
        lines = modules()[module].read_text().splitlines()
        for node, names in _imports(tree(module).body, module, top=False):
            project = [n for n in names if n in modules() or n.split(".")[0] in (*PACKAGES, "cli")]
            if not project:
                continue
            said = "deferred" in lines[node.lineno - 1] or "deferred" in lines[node.lineno - 2]
            if not said or not all(n in modules() and heavy(n) for n in project):
                offenders.append(f"{modules()[module].relative_to(ROOT)}:{node.lineno} imports {', '.join(project)}")
    assert offenders == []


def test_the_checker_exempts_only_another_programs_command_line():
    module = ast.parse('run([sys.executable, "-m", "pip", "--quiet"])\nmessage = ["--grace"]')
    exempt = [node.value for node in ast.walk(module) if isinstance(node, ast.Constant) and id(node) in
              _other_programs_arguments(module)]
    assert exempt == ["-m", "pip", "--quiet"]


def test_the_checker_tells_heavy_modules_from_light_ones():
    assert heavy("study.training") and heavy("study.tuning.search") and heavy("reports.build")
    assert not heavy("study.store") and not heavy("study.tuning.request") and not heavy("study.config")


def test_the_core_imports_no_click_and_names_no_flag():
    """Messages name settings as «name» (study.errors); only the command line turns them into flags."""
    problems = []
    for module, path in modules().items():
        if module.split(".")[0] not in CORE:
            continue
        for node, names in _imports(tree(module).body, module, top=True) + _imports(tree(module).body, module, top=False):
            if any(n.split(".")[0] == "click" for n in names):
                problems.append(f"{module} imports click")
        docstrings = {id(n.body[0].value) for n in ast.walk(tree(module))
                      if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef)) and n.body
                      and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
        docstrings |= _other_programs_arguments(tree(module))
        for node in ast.walk(tree(module)):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
                    and ("cli.py" in node.value or _names_a_flag(node.value))):
                problems.append(f"{module}:{node.lineno} {node.value[:60]!r}")
    assert problems == []


def test_the_core_shows_nothing_itself_it_tells_events_the_command_line_draws():
    """No terminal library (rich) and no print below the command line: progress goes through
    ``study.events`` and results come back as data; ``command_line/`` draws both."""
    problems = []
    for module in modules():
        if module.split(".")[0] not in CORE:
            continue
        for node, names in _imports(tree(module).body, module, top=True) + _imports(tree(module).body, module, top=False):
            problems += [f"{module} imports {n}" for n in names if n.split(".")[0] == "rich"]
        problems += [f"{module}:{node.lineno} prints" for node in ast.walk(tree(module))
                     if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print"]
    assert problems == []


def _other_programs_arguments(module: ast.Module) -> set[int]:
    """The strings of a command line the core runs (a list starting with ``sys.executable``, e.g. ``pip download``):
    their flags are another program's, not ours."""
    return {id(element) for node in ast.walk(module) if isinstance(node, ast.List) and node.elts
            and ast.unparse(node.elts[0]) == "sys.executable" for element in node.elts}


# optuna's free-form attributes: only study.store.records names and reads them (the store's contract)
ATTRIBUTE_ACCESS = {"user_attrs", "system_attrs", "set_user_attr", "set_system_attr", "set_trial_user_attr"}


def test_only_the_store_records_spell_a_study_or_trial_attribute_and_only_the_store_loads_a_study():
    problems = []
    for module in modules():
        for node in ast.walk(tree(module)):
            if module != "study.store.records" and isinstance(node, ast.Attribute) and node.attr in ATTRIBUTE_ACCESS:
                problems.append(f"{module}:{node.lineno} .{node.attr}")
            if (not module.startswith("study.store") and isinstance(node, ast.Attribute) and node.attr == "load_study"):
                problems.append(f"{module}:{node.lineno} .load_study (study.store.load_existing, or records.load)")
    assert problems == []


def test_the_attribute_check_sees_a_read_a_write_and_a_load():
    code = "study.user_attrs.get('x')\ntrial.set_user_attr('x', 1)\noptuna.load_study(study_name='s', storage=st)\n"
    found = {n.attr for n in ast.walk(ast.parse(code)) if isinstance(n, ast.Attribute)}
    assert {"user_attrs", "set_user_attr", "load_study"} <= found and found & ATTRIBUTE_ACCESS == {"user_attrs",
                                                                                                  "set_user_attr"}


def _compares_a_backend_to_a_name(node: ast.AST) -> bool:
    """``x.backend == "optuna"`` (or ``!=``, ``in (...)``): a tuner backend told apart by its name."""
    if not isinstance(node, ast.Compare):
        return False
    sides = [node.left, *node.comparators]
    named = any(isinstance(s, ast.Attribute) and s.attr == "backend" for s in sides)
    literal = any(isinstance(s, ast.Constant) and isinstance(s.value, str)
                  or isinstance(s, (ast.Tuple, ast.List, ast.Set)) and any(isinstance(e, ast.Constant) for e in s.elts)
                  for s in sides)
    return named and literal


def test_no_module_tells_the_tuner_backends_apart_by_name():
    """Each backend is a class (study.tuning.backends.TunerBackend): a search asks it, never its name."""
    problems = [f"{module}:{node.lineno}" for module in modules() for node in ast.walk(tree(module))
                if _compares_a_backend_to_a_name(node)]
    assert problems == []
    assert _compares_a_backend_to_a_name(ast.parse('request.backend == "optuna"').body[0].value)
    assert _compares_a_backend_to_a_name(ast.parse('"keras-tuner" != r.backend').body[0].value)
    assert not _compares_a_backend_to_a_name(ast.parse('request.backend in BACKENDS').body[0].value)


def _names_a_flag(text: str) -> bool:
    words = text.replace("(", " ").replace("`", " ").split()
    return any(w.startswith("--") and len(w) > 2 and w[2].isalpha() for w in words)


def test_settings_render_plain_for_a_library_and_as_flags_on_the_command_line():
    from command_line.errors import word
    from study.errors import ConfigError, NoDataset

    error = ConfigError("«grace» (5 s) must exceed «heartbeat» (10 s)")
    assert str(error) == "grace (5 s) must exceed heartbeat (10 s)"
    assert word(error) == "--grace (5 s) must exceed --heartbeat (10 s)"
    missing = NoDataset("data/sample")
    assert str(missing) == "no dataset at data/sample" and missing.path == "data/sample"
    assert word(missing) == "no dataset at data/sample: run `python cli.py data sample data/sample` first, or pass --data DATA"


# ---------------------------------------------------------------- one list of training settings
def test_a_new_trainconfig_field_reaches_a_trial_a_worker_and_a_final_run(monkeypatch, tmp_path, sample_dir):
    """Add a field to TrainConfig and nothing else: ``search --set`` carries it into every trial's
    config, through the JSON a worker is started with, and into the final runs of the study."""
    import optuna
    from click.testing import CliRunner

    import study.config as config_mod
    from cli import cli
    from study.store import open_storage
    from study.training import RunResult
    from study.experiments import final
    from study.tuning import objective
    from study.tuning.pool import REQUEST_ENV
    from study.tuning.request import SearchRequest, from_json, to_json

    fields = [(f.name, f.type, f) for f in dataclasses.fields(config_mod.TrainConfig)]
    extended = dataclasses.make_dataclass(
        "TrainConfig", [*fields, ("probe_setting", "float", dataclasses.field(default=0.0))],
        bases=(config_mod.TrainConfig,), frozen=True)
    monkeypatch.setattr(config_mod, "TrainConfig", extended)
    trained = []

    def fake_train(config, data, run_dir, **kwargs):
        trained.append(config)
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(json.dumps(config_mod.to_dict(config)))
        val = {"accuracy": 0.5, "loss": 1.0, "macro_f1": 0.4, "baseline": {"majority_rate": 0.25}, "learned": True}
        return RunResult(run_dir, config, None, {"val": val, "test": val, "stall": {"stalled": False}}, 1, 0.1)

    monkeypatch.setattr(objective, "train", fake_train)
    monkeypatch.setattr(final, "train", fake_train)
    monkeypatch.setattr(final, "_link", lambda *args: None)
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    args = ["search", "--regime", "scratch", "--trials", "1", "--data", str(sample_dir), "--storage", storage,
            "--runs-dir", str(tmp_path / "runs"), "--backbone", "mini_xception", "--set", "probe_setting=0.125"]
    searched = CliRunner().invoke(cli, args)
    assert searched.exit_code == 0, searched.output

    # A worker of `search --workers N` gets its request as JSON in the environment: the same study, one more trial.
    request = SearchRequest(regime="scratch", trials=2, data=str(sample_dir), storage=storage,
                            runs_dir=str(tmp_path / "runs"), base={"backbone": "mini_xception", "probe_setting": "0.125"})
    assert from_json(to_json(request)) == request
    monkeypatch.setenv(REQUEST_ENV, to_json(request))
    worked = CliRunner().invoke(cli, ["search-worker"])
    assert worked.exit_code == 0, worked.output
    assert [c.probe_setting for c in trained] == [0.125, 0.125]  # the search's trial and the worker's
    runs = sorted((tmp_path / "runs" / "scratch-optuna").glob("trial-*/config.json"))
    assert [json.loads(p.read_text())["probe_setting"] for p in runs] == [0.125, 0.125]
    attrs = optuna.load_study(study_name="scratch-optuna", storage=open_storage(storage)).user_attrs
    assert attrs["base"]["probe_setting"] == 0.125

    final.train_from_study("scratch-optuna", storage=storage, seeds=1, runs_dir=tmp_path / "runs")
    assert trained[-1].probe_setting == 0.125 and trained[-1].subset == 1.0  # the final run


def test_a_search_told_a_searched_key_does_not_vary_it():
    from search_spaces import Fixed, space_for
    from study.tuning.request import SearchRequest
    from study.tuning.search import trial_space

    space = trial_space(SearchRequest(regime="scratch", trials=1, base={"optimizer": "adam", "backbone": "vgg16"}))
    assert isinstance(space["optimizer"], Fixed) and space["optimizer"].value == "adam"
    assert not isinstance(space_for("scratch")["optimizer"], Fixed)
    assert "momentum" not in space.defaults()  # SGD's momentum is not used under the pinned Adam


@pytest.mark.parametrize("bad", ["{", "[]", json.dumps({"regime": "scratch", "trials": 1, "nope": 1})])
def test_a_worker_given_a_broken_request_says_so_in_one_line(bad):
    from study.errors import ConfigError
    from study.tuning.request import from_json

    with pytest.raises(ConfigError, match="not a search request"):
        from_json(bad)
