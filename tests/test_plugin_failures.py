"""Plugin code that crashes is named: the plugin, its package and what failed, on one line.

A plugin that calls sys.exit() while it is imported, or from a hook, is a broken plugin like any other (never a
silent exit 0). A crash inside plugin code medbench calls later (a trainer's train(), a metric, a judge, an
executor, a renderer, a model loader, a command) ends in one ``Error:`` line naming the plugin and its package,
exit status 1; ``--debug`` shows the traceback instead. Ctrl-C is never taken for a plugin failure
(tests/test_weak_messages.py sends a real SIGINT).
"""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass
from pathlib import Path

import click
import pytest

import medbench
from medbench import hookimpl, plugin_calls, plugins
from medbench.cli import main
from medbench.errors import MedbenchError
from test_plugins import fake_package  # noqa: F401  (the fixture that 'installs' a plugin package)


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    """``medbench ARGV`` in this process: (exit code, stdout, stderr)."""
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    out, err = capsys.readouterr()
    return code, out, err


def lines(text: str, prefix: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(prefix)]


def one_error(err: str) -> str:
    assert "Traceback" not in err, err
    errors = lines(err, "Error:")
    assert len(errors) == 1, err
    assert " — " in errors[0], errors[0]
    return errors[0]


def plugins_dir(tmp_path: Path, **files: str) -> Path:
    folder = tmp_path / "plugins"
    folder.mkdir(exist_ok=True)
    for name, source in files.items():
        (folder / f"{name}.py").write_text(textwrap.dedent(source))
    return folder


# --- sys.exit() at import and in hooks ----------------------------------------------------------------------------

def test_plugin_calling_sys_exit_at_import_is_skipped_with_a_warning(tmp_path, capsys):
    folder = plugins_dir(tmp_path, quitter="import sys\nsys.exit(0)\n", fine="""
        from medbench import hookimpl

        @hookimpl
        def register_metrics(register):
            register("always_one", lambda refs, preds: 1.0)
    """)
    code, out, err = run(["--plugins-dir", str(folder), "plugins", "--json"], capsys)
    assert code == 0, err
    names = {row["name"] for row in json.loads(out)}
    assert "fine" in names and "quitter" not in names and "builtin_models" in names
    warning = [line for line in lines(err, "Warning:") if "quitter" in line]
    assert len(warning) == 1, err
    assert "quitter.py" in warning[0] and "sys.exit(0)" in warning[0] and "was skipped" in warning[0]


def test_entry_point_calling_sys_exit_at_import_is_skipped(fake_package):
    import warnings

    fake_package("medbench-quits", "0.3.0", {"quits": "import sys\nsys.exit(3)\n"})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        names = {info.name for info in plugins.list_plugins()}
    assert "quits" not in names and "builtin_metrics" in names
    messages = [str(w.message) for w in caught if issubclass(w.category, plugins.PluginLoadWarning)]
    assert len(messages) == 1
    assert "plugin 'quits' (package medbench-quits 0.3.0)" in messages[0] and "sys.exit(3)" in messages[0]
    assert "pip uninstall medbench-quits" in messages[0]


def test_sys_exit_in_a_hook_is_a_named_hook_failure(plugin_registration):
    class Quitter:
        @hookimpl
        def register_metrics(self, register):
            raise SystemExit(0)

    plugin_registration(Quitter(), "quitter")
    from medbench.metrics import metric_registry

    with pytest.raises(plugin_calls.PluginHookError, match=r"plugin 'quitter' \(registered in this process\) raised in "
                                                      r"register_metrics: it called sys.exit\(0\)"):
        metric_registry()


# --- trainers -----------------------------------------------------------------------------------------------------

@dataclass
class NoOptions:
    pass


class CrashingTrainer:
    name = "crasher"
    description = "raises inside train()"
    config_class = NoOptions

    def __init__(self, exc: BaseException):
        self.exc = exc

    def train(self, request):
        raise self.exc


def train_argv(tmp_path: Path, model: Path, *global_options: str) -> list[str]:
    return [*global_options, "train", "--plugin", "crasher", "--model", str(model), "--task", "medqa",
            "--output-dir", str(tmp_path / "runs"), "--leaderboard-dir", str(tmp_path / "lb"), "--run-name", "r1"]


@pytest.mark.parametrize("exc,described", [(ValueError("the learning rate is a string"),
                                            "ValueError: the learning rate is a string"),
                                           (SystemExit(0), "it called sys.exit(0)")])
def test_a_trainer_that_raises_names_its_plugin_and_package(exc, described, plugin_registration, tiny_model_dir,
                                                            tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)

    class Plugin:
        @hookimpl
        def register_trainers(self, register):
            register(CrashingTrainer(exc))

    plugin_registration(Plugin(), "crash_plugin")
    code, _, err = run(train_argv(tmp_path, tiny_model_dir), capsys)
    error = one_error(err)
    assert code == 1, err  # a crash, not bad input
    assert ("plugin 'crash_plugin' (registered in this process) failed in trainer 'crasher' train(): "
            + described) in error
    assert "--debug" in error.partition(" — ")[2]
    assert not (tmp_path / "runs" / "r1").exists()  # nothing saved: the run directory is not left behind


def test_a_trainer_from_a_plugins_dir_is_named_by_its_file(tiny_model_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    folder = plugins_dir(tmp_path, my_trainer="""
        from dataclasses import dataclass
        from medbench import hookimpl

        @dataclass
        class Options:
            pass

        class Trainer:
            name = "crasher"
            description = "raises"
            config_class = Options

            def train(self, request):
                return 1 / 0

        @hookimpl
        def register_trainers(register):
            register(Trainer())
    """)
    code, _, err = run(train_argv(tmp_path, tiny_model_dir, "--plugins-dir", str(folder)), capsys)
    error = one_error(err)
    assert code == 1
    assert f"plugin 'my_trainer' (file {folder / 'my_trainer.py'}) failed in trainer 'crasher' train(): " \
           "ZeroDivisionError: division by zero" in error
    assert f"fix {folder / 'my_trainer.py'}" in error


def test_debug_shows_the_plugin_traceback(plugin_registration, tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    class Plugin:
        @hookimpl
        def register_trainers(self, register):
            register(CrashingTrainer(KeyError("lr")))

    plugin_registration(Plugin(), "crash_plugin")
    with pytest.raises(plugin_calls.PluginError) as caught:
        main(train_argv(tmp_path, tiny_model_dir, "--debug"))
    assert isinstance(caught.value.__cause__, KeyError)  # the plugin's own exception, with its traceback


def test_a_third_party_medbench_error_keeps_its_fix_and_gains_the_plugin_name(plugin_registration, tiny_model_dir,
                                                                              tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)

    class Plugin:
        @hookimpl
        def register_trainers(self, register):
            register(CrashingTrainer(MedbenchError("--warmup must be below --max-steps", "pass --warmup 0..9")))

    plugin_registration(Plugin(), "picky_plugin")
    code, _, err = run(train_argv(tmp_path, tiny_model_dir), capsys)
    assert code == 2  # the plugin's own input error stays an input error
    assert one_error(err) == ("Error: plugin 'picky_plugin' (registered in this process): --warmup must be below "
                              "--max-steps — pass --warmup 0..9")


# --- metrics and the leaderboard ----------------------------------------------------------------------------------

def leaderboard_with_metric(root: Path, metric: str) -> Path:
    """A leaderboard holding one record whose metrics include ``metric`` (so --rescore recomputes it)."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    try:
        from leaderboard_helpers import make_record
    finally:
        sys.path.pop(0)
    path = make_record(root, "model-a", "medqa", [0, 1, 2, 3], [0, 1, 2, 0])
    record_file = path if path.name == "record.json" else path / "record.json"
    record = json.loads(record_file.read_text())
    record["metrics"][metric] = {"value": 0.5, "stderr": None}
    if metric == record["primary_metric"]:  # a record's score is its primary metric's value, or it is damaged
        record.update(score=0.5, stderr=None)
    record_file.write_text(json.dumps(record))
    return root


def test_a_raising_metric_names_its_plugin_and_rescore_reports_no_success(plugin_registration, tmp_path, capsys):
    class Metrics:
        @hookimpl
        def register_metrics(self, register):
            def broken(references, predictions):
                raise IndexError("list index out of range")

            register("broken_metric", broken)

    plugin_registration(Metrics(), "metrics_plugin")
    root = leaderboard_with_metric(tmp_path / "lb", "broken_metric")
    code, _, err = run(["leaderboard", "--dir", str(root), "--rescore"], capsys)
    error = one_error(err)
    assert code == 1
    assert ("plugin 'metrics_plugin' (registered in this process) failed in metric 'broken_metric': "
            "IndexError: list index out of range") in error
    assert "re-scored" not in err


def test_a_raising_register_metrics_stops_rescore_and_warns_when_rendering(plugin_registration, tmp_path, capsys):
    class Metrics:
        @hookimpl
        def register_metrics(self, register):
            raise RuntimeError("metric table missing")

    plugin_registration(Metrics(), "metrics_plugin")
    root = leaderboard_with_metric(tmp_path / "lb", "macro_f1")
    code, _, err = run(["leaderboard", "--dir", str(root), "--rescore"], capsys)
    error = one_error(err)
    assert code == 2 and "re-scored" not in err
    assert "plugin 'metrics_plugin'" in error and "register_metrics" in error and "metric table missing" in error

    code, _, err = run(["leaderboard", "--dir", str(root), "--format", "json"], capsys)
    assert code == 0, err
    warnings = [line for line in lines(err, "Warning:") if "metrics_plugin" in line]
    assert len(warnings) == 1 and "register_metrics" in warnings[0], err


# --- renderers, judges, executors, model loaders, commands --------------------------------------------------------

def test_a_raising_renderer_names_its_plugin(plugin_registration, tmp_path, capsys):
    class Renderer:
        @hookimpl
        def register_leaderboard_renderers(self, register):
            def render(table, out_dir):
                raise TypeError("expected str, got NoneType")

            register("tex", render)

    plugin_registration(Renderer(), "latex_plugin")
    root = leaderboard_with_metric(tmp_path / "lb", "acc")
    code, _, err = run(["leaderboard", "--dir", str(root), "--format", "tex"], capsys)
    assert code == 1
    assert ("plugin 'latex_plugin' (registered in this process) failed in leaderboard renderer 'tex': TypeError: "
            "expected str, got NoneType") in one_error(err)


def test_a_raising_judge_names_its_plugin(plugin_registration):
    from medbench.judges import run_judge

    class Judge:
        name = "stern"
        description = "raises"

        def score(self, items, options):
            return ["five" for _ in items]  # not a number: the judge's bug, not medbench's

    class Plugin:
        @hookimpl
        def register_judges(self, register):
            register(Judge())

    plugin_registration(Plugin(), "judge_plugin")
    samples = [{"prompt": "p", "gold": "g", "response": "r"}]
    with pytest.raises(plugin_calls.PluginError, match=r"plugin 'judge_plugin' \(registered in this process\) failed in "
                                                  r"judge 'stern' score\(\): ValueError"):
        run_judge("stern", samples, {})


def test_a_raising_executor_names_its_plugin(plugin_registration, tmp_path, monkeypatch):
    from types import SimpleNamespace

    from medbench import sweeps as sweep

    class Executor:
        name = "flaky"
        description = "yields one result then crashes"

        def run(self, cells, run_cell, options):
            yield "first"
            raise ConnectionError("scheduler went away")

    class Plugin:
        @hookimpl
        def register_executors(self, register):
            register(Executor())

    plugin_registration(Plugin(), "cluster_plugin")
    monkeypatch.setattr(sweep, "describe", lambda plan: {})  # an empty plan: only the executor matters here
    plan = SimpleNamespace(out_dir=tmp_path / "sweep", cells=[], recipe=SimpleNamespace(name="empty"))
    seen = []
    with pytest.raises(plugin_calls.PluginError, match=r"plugin 'cluster_plugin' \(registered in this process\) "
                                                  r"failed in executor 'flaky': ConnectionError: scheduler"):
        sweep.run_sweep(plan, "flaky", {}, on_result=seen.append)
    assert seen == ["first"]  # results before the crash were handed on


def register_loader(plugin_registration, plugin_name: str, scheme: str, load) -> None:
    """A model loader plugin for ``scheme://`` references whose ``load`` is ``load``."""
    class Loader:
        name = scheme
        priority = 1000

        def can_load(self, ref):
            return ref.startswith(f"{scheme}://")

        def describe(self):
            return []

    Loader.load = lambda self, ref, options: load()

    class Plugin:
        @hookimpl
        def register_model_loaders(self, register):
            register(Loader())

    plugin_registration(Plugin(), plugin_name)


def test_a_raising_model_loader_names_its_plugin(plugin_registration):
    from medbench.models import resolve_model

    def denied():
        raise PermissionError("access denied")

    register_loader(plugin_registration, "s3_plugin", "s3", denied)
    with pytest.raises(plugin_calls.PluginError, match=r"plugin 's3_plugin' \(registered in this process\) failed in "
                                                  r"model loader 's3': PermissionError: access denied") as caught:
        resolve_model("s3://bucket/model")
    assert caught.value.exit_code == 1


def test_a_raising_command_names_its_plugin_and_its_usage_errors_stay_usage_errors(plugin_registration, capsys):
    class Plugin:
        @hookimpl
        def register_commands(self, cli):
            @cli.group("cardio")
            def cardio():
                """Cardiology tools."""

            @cardio.command("export")
            @click.option("--n", type=int, required=True)
            def export(n):
                """Export n items."""
                return {}["missing"]

    plugin_registration(Plugin(), "cardio_plugin")
    code, _, err = run(["cardio", "export", "--n", "3"], capsys)
    assert code == 1
    assert ("plugin 'cardio_plugin' (registered in this process) failed in command 'export': KeyError: 'missing'"
            in one_error(err))

    code, _, err = run(["cardio", "export", "--n", "many"], capsys)  # click's own error: the user's, one line
    error = one_error(err)
    assert code == 2 and "'many' is not a valid integer" in error and "cardio_plugin" not in error
    assert "medbench cardio export --help" in error


def test_a_wrapped_trainer_that_raises_is_named_not_its_wrapper(plugin_registration, tiny_model_dir, tmp_path,
                                                                 monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)

    class Plugin:
        @hookimpl
        def register_trainers(self, register):
            register(CrashingTrainer(RuntimeError("CUDA error: device-side assert triggered")))

    plugin_registration(Plugin(), "crash_plugin")
    argv = [*train_argv(tmp_path, tiny_model_dir), "--base", "crasher", "--ordering", "random"]
    argv[argv.index("crasher")] = "curriculum"  # --plugin curriculum --base crasher
    code, _, err = run(argv, capsys)
    error = one_error(err)
    assert code == 1
    assert ("plugin 'crash_plugin' (registered in this process) failed in trainer 'crasher' train(): RuntimeError: "
            "CUDA error") in error


def test_a_crash_in_medbench_own_plugin_asks_for_a_bug_report(monkeypatch):
    from medbench.metrics import metric_registry
    from medbench_plugins import builtin_metrics

    def broken(references, predictions):
        raise ZeroDivisionError("float division by zero")

    monkeypatch.setattr(builtin_metrics, "macro_f1", broken)
    plugins.reset()
    metric = metric_registry()["macro_f1"]
    if metric.plugin != "builtin_metrics":
        pytest.skip("macro_f1 is registered by another module here")
    with pytest.raises(plugin_calls.PluginError) as caught:
        metric.compute([{"gold": 1, "pred": 1}])
    message = str(caught.value)
    assert message.startswith(f"plugin 'builtin_metrics' (package medbench {medbench.__version__}) failed in "
                              "metric 'macro_f1': ZeroDivisionError: float division by zero — this is a bug in medbench")
    assert message.count("--debug") == 1 and "pip uninstall" not in message


# --- what a plugin returns is its own too ---------------------------------------------------------------------------

class WrongReturnTrainer(CrashingTrainer):
    name = "crasher"

    def train(self, request):
        return self.exc  # here: the value train() returns


@pytest.mark.parametrize("returned, described", [(None, "returned NoneType 'None', not a non-empty list"),
                                                 (["/tmp/ckpt"], "returned a list holding str '/tmp/ckpt'")])
def test_a_trainer_returning_the_wrong_type_names_its_plugin(returned, described, plugin_registration,
                                                            tiny_model_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)

    class Plugin:
        @hookimpl
        def register_trainers(self, register):
            register(WrongReturnTrainer(returned))

    plugin_registration(Plugin(), "wrong_plugin")
    code, _, err = run(train_argv(tmp_path, tiny_model_dir), capsys)
    error = one_error(err)
    assert code == 1, err
    assert "plugin 'wrong_plugin' (registered in this process) failed in trainer 'crasher' train(): TypeError: " \
           + described in error


def test_a_metric_returning_no_number_names_its_plugin(plugin_registration):
    from medbench.metrics import metric_registry

    class Metrics:
        @hookimpl
        def register_metrics(self, register):
            register("risk_band", lambda refs, preds: "high")

    plugin_registration(Metrics(), "band_plugin")
    metric = metric_registry()["risk_band"]
    with pytest.raises(plugin_calls.PluginError, match=r"plugin 'band_plugin' .* failed in metric 'risk_band': "
                                                  r"TypeError: returned 'high' \(str\), not a number"):
        metric.compute([{"gold": 1, "pred": 1}])


def test_a_model_loader_returning_the_wrong_type_names_its_plugin(plugin_registration):
    from medbench.models import resolve_model

    register_loader(plugin_registration, "pair_plugin", "pair", lambda: ("model", "tokenizer"))
    with pytest.raises(plugin_calls.PluginError, match=r"plugin 'pair_plugin' .* failed in model loader 'pair': "
                                                  r"TypeError: load\(\) returned tuple, not medbench.models.LoadedModel"):
        resolve_model("pair://m")


def test_a_plan_check_may_return_its_reason_or_raise_it():
    from medbench.trainers.hf import plan_check_with

    assert plan_check_with(NoOptions, "t", "medqa", {}, None, lambda config, load: "needs two labels") == \
        "needs two labels"
    assert plan_check_with(NoOptions, "t", "medqa", {}, None, lambda config, load: None) is None
    assert len(plan_check_with(NoOptions, "t", "medqa", {}, None,
                               lambda config, load: None if load() else "no data") or "") == 0

    def raising(config, load):
        raise MedbenchError("too few rows", "add rows")

    assert plan_check_with(NoOptions, "t", "medqa", {}, None, raising) == "too few rows — add rows"
