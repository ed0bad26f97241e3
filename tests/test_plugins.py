import importlib
import importlib.metadata as md
import json
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner

import medbench
from medbench import hookimpl, plugin_calls, plugins
from medbench.cli import cli, main
from medbench.errors import MedbenchError

BUILTINS = {"builtin_tasks", "builtin_models", "builtin_metrics", "leaderboard_renderers"}


def test_builtins_load_through_entry_points():
    infos = {info.name: info for info in plugins.list_plugins()}
    assert BUILTINS <= set(infos)
    for name in BUILTINS:
        assert infos[name].source == "entry point"
        assert infos[name].package == "medbench"
    assert infos["builtin_tasks"].hooks == ["register_tasks"]


def test_allowlist_limits_entry_points(monkeypatch):
    monkeypatch.setenv(plugins.ALLOWLIST_ENV, "builtin_metrics")
    assert [info.name for info in plugins.list_plugins()] == ["builtin_metrics"]


def test_plugins_dir_loads_modules_and_skips_a_broken_one(tmp_path, monkeypatch):
    (tmp_path / "good_plugin.py").write_text(textwrap.dedent("""
        from medbench import hookimpl
        __version__ = "1.2.3"

        @hookimpl
        def register_metrics(register):
            register("always_one", lambda refs, preds: 1.0)
    """))
    (tmp_path / "broken_plugin.py").write_text("import module_that_does_not_exist\n")
    monkeypatch.setenv(plugins.PLUGINS_DIR_ENV, str(tmp_path))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        infos = {info.name: info for info in plugins.list_plugins()}
    assert infos["good_plugin"].version == "1.2.3"
    assert infos["good_plugin"].hooks == ["register_metrics"]
    assert "broken_plugin" not in infos
    messages = [str(w.message) for w in caught if issubclass(w.category, plugins.PluginLoadWarning)]
    assert len(messages) == 1 and "broken_plugin.py" in messages[0] and "ModuleNotFoundError" in messages[0]
    assert "\n" not in messages[0]
    from medbench.metrics import metric_registry

    assert metric_registry()["always_one"].plugin == "good_plugin"


def test_a_misspelt_or_unmarked_hook_is_named_not_silently_ignored(tmp_path, monkeypatch):
    (tmp_path / "typo_plugin.py").write_text(textwrap.dedent("""
        from medbench import hookimpl

        @hookimpl
        def register_metric(register):
            register("never", lambda refs, preds: 1.0)

        def register_tasks(register):
            pass
    """))
    monkeypatch.setenv(plugins.PLUGINS_DIR_ENV, str(tmp_path))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        infos = {info.name: info for info in plugins.list_plugins()}
    assert infos["typo_plugin"].hooks == []  # neither is a hook medbench calls
    messages = [str(w.message) for w in caught if issubclass(w.category, plugins.PluginLoadWarning)]
    assert any("'register_metric', which is no medbench hook" in m and "did you mean register_metrics?" in m
               for m in messages), messages
    assert any("defines register_tasks without @hookimpl" in m for m in messages), messages


def test_broken_entry_point_is_skipped_with_one_warning(monkeypatch):
    import importlib.metadata as md

    real = md.entry_points

    def with_broken(**kwargs):
        found = list(real(**kwargs))
        if kwargs.get("group") == plugins.ENTRY_POINT_GROUP:
            found.append(md.EntryPoint("broken_ep", "medbench_no_such_module", plugins.ENTRY_POINT_GROUP))
        return found

    monkeypatch.setattr(plugins.importlib.metadata, "entry_points", with_broken)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        names = {info.name for info in plugins.list_plugins()}
    assert BUILTINS <= names and "broken_ep" not in names
    assert any("broken_ep" in str(w.message) for w in caught)


def test_plugins_command_json_and_table():
    runner = CliRunner()
    result = runner.invoke(cli, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.output)}
    assert BUILTINS <= set(rows)
    assert rows["builtin_models"]["hooks"] == ["register_model_loaders"]
    assert set(rows["builtin_models"]) == {"name", "version", "package", "source", "hooks", "provides"}
    assert rows["builtin_metrics"]["provides"]["metrics"][:2] == ["accuracy", "auroc"]
    assert "medqa" in rows["builtin_tasks"]["provides"]["tasks"] and rows["sft"]["provides"] == {"trainers": ["sft"]}
    table = runner.invoke(cli, ["plugins"])
    assert table.exit_code == 0 and "builtin_tasks" in table.output and "register_tasks" in table.output
    assert "metrics: accuracy, auroc" in table.output


def test_plugins_lists_what_a_third_party_plugin_registers_and_names_a_broken_kind(plugin_registration):
    """A metric, judge, backend, renderer and command arrive under the plugin that registered them; a plugin whose
    hook raises is named in one line on stderr, and the other plugins' things of that kind, and every other kind,
    are still listed."""
    import click

    class ThirdParty:
        @hookimpl
        def register_metrics(self, register):
            register("kappa_third", lambda refs, preds: 0.0)

        @hookimpl
        def register_judges(self, register):
            register(type("J", (), {"name": "strict_third", "score": lambda self, *a: []})())

        @hookimpl
        def register_backends(self, register):
            register(type("B", (), {"name": "remote_third", "description": "d", "open": lambda self, *a: None})())

        @hookimpl
        def register_leaderboard_renderers(self, register):
            register("tsv_third", lambda table, path: None)

        @hookimpl
        def register_commands(self, cli):
            cli.add_command(click.Command("hello-third", callback=lambda: None))

    class Broken:
        @hookimpl
        def register_executors(self, register):
            raise RuntimeError("no cluster")

    plugin_registration(ThirdParty(), "third")
    plugin_registration(Broken(), "broken_third")
    result = CliRunner().invoke(cli, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["third"]["provides"] == {"metrics": ["kappa_third"], "judges": ["strict_third"],
                                         "backends": ["remote_third"], "leaderboard renderers": ["tsv_third"],
                                         "commands": ["hello-third"]}
    assert rows["builtin_metrics"]["provides"]["metrics"]  # the other kinds are still read
    assert rows["executors"]["provides"]["executors"]  # and the other plugins' executors
    (line,) = [x for x in result.stderr.splitlines() if x.strip()]
    assert line.startswith("medbench: executors of one plugin not listed: plugin 'broken_third'") and \
        "no cluster" in line


def test_hook_that_raises_is_named(plugin_registration):
    class Exploding:
        @hookimpl
        def register_metrics(self, register):
            raise RuntimeError("boom")

    plugin_registration(Exploding(), "exploding")
    from medbench.errors import MedbenchError
    from medbench.metrics import metric_registry

    with pytest.raises(MedbenchError, match=r"plugin 'exploding' \(registered in this process\) raised in "
                                            r"register_metrics: RuntimeError: boom — fix the plugin") as caught:
        metric_registry()
    assert isinstance(caught.value, plugin_calls.PluginHookError) and "\n" not in str(caught.value)


def test_medbench_error_in_a_hook_keeps_its_fix_and_names_the_plugin(plugin_registration):
    class Picky:
        @hookimpl
        def register_tasks(self, register):
            raise MedbenchError("task folder tasks/ is empty", "add a task YAML to it")

    plugin_registration(Picky(), "picky")
    from medbench.tasks import build_registry

    with pytest.raises(plugin_calls.PluginHookError) as caught:
        build_registry()
    assert str(caught.value) == ("plugin 'picky' (registered in this process) failed in register_tasks: "
                                 "task folder tasks/ is empty — add a task YAML to it")


# Fake installed packages: a distribution with metadata and a `medbench` entry point, without pip.

class FakeDistribution(md.Distribution):
    def __init__(self, name, version, entry_points, requires=()):
        metadata = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
        metadata += [f"Requires-Dist: {requirement}" for requirement in requires]
        self._files = {"METADATA": "\n".join(metadata) + "\n",
                       "entry_points.txt": f"[{plugins.ENTRY_POINT_GROUP}]\n" + "".join(
                           f"{ep} = {module}\n" for ep, module in entry_points.items())}

    def read_text(self, filename):
        return self._files.get(filename)

    def locate_file(self, path):
        return Path(path)


@pytest.fixture
def fake_package(tmp_path, monkeypatch):
    """``fake_package(dist, version, {ep: source}, requires=(), first=False)`` 'installs' a plugin package."""
    monkeypatch.syspath_prepend(str(tmp_path))
    real = md.entry_points
    fakes = []

    def entry_points(**kwargs):
        if kwargs.get("group") != plugins.ENTRY_POINT_GROUP:
            return real(**kwargs)
        extra = [ep for dist in fakes for ep in dist.entry_points if ep.group == plugins.ENTRY_POINT_GROUP]
        return [*extra, *real(**kwargs)]  # the fakes come first: medbench must still load its own plugins first

    monkeypatch.setattr(plugins.importlib.metadata, "entry_points", entry_points)

    def install(dist_name, version, sources, requires=()):
        modules = {}
        for ep_name, source in sources.items():
            module = f"fake_{dist_name.replace('-', '_')}_{ep_name}"
            (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
            monkeypatch.delitem(sys.modules, module, raising=False)
            modules[ep_name] = module
        fakes.append(FakeDistribution(dist_name, version, modules, requires))
        plugins.reset()

    return install


GOOD_METRIC = """
    from medbench import hookimpl

    @hookimpl
    def register_metrics(register):
        register("fake_metric", lambda refs, preds: 0.5)
"""


def test_entry_point_plugin_names_its_package(fake_package):
    fake_package("medbench-fake", "0.3.0", {"fake": GOOD_METRIC}, requires=["medbench>=0.1", "numpy"])
    info = {i.name: i for i in plugins.list_plugins()}["fake"]
    assert (info.package, info.version, info.hooks) == ("medbench-fake", "0.3.0", ["register_metrics"])
    assert info.label() == "plugin 'fake' (package medbench-fake 0.3.0)"
    from medbench.metrics import metric_registry

    assert metric_registry()["fake_metric"].plugin == "fake"


def test_entry_point_hook_that_raises_names_plugin_package_and_hook(fake_package):
    fake_package("medbench-boom", "1.2.0", {"boom": """
        from medbench import hookimpl

        @hookimpl
        def register_trainers(register):
            raise KeyError("no such option")
    """})
    from medbench.training import trainer_registry

    with pytest.raises(plugin_calls.PluginHookError) as caught:
        trainer_registry()
    message = str(caught.value)
    assert message.startswith("plugin 'boom' (package medbench-boom 1.2.0) raised in register_trainers: KeyError")
    assert "pip uninstall medbench-boom" in message and plugins.ALLOWLIST_ENV in message and "\n" not in message


def test_plugin_needing_a_newer_medbench_is_skipped_with_the_fix(fake_package):
    fake_package("medbench-future", "2.0.0", {"future": GOOD_METRIC}, requires=["medbench[train]>=99.0", "torch"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        names = {info.name for info in plugins.list_plugins()}
    assert "future" not in names and BUILTINS <= names
    (message,) = [str(w.message) for w in caught if issubclass(w.category, plugins.PluginLoadWarning)]
    assert message == (f"plugin 'future' (package medbench-future 2.0.0) was skipped: it needs medbench>=99.0 and "
                       f"medbench {medbench.__version__} is installed — run `pip install -U medbench`, or install a "
                       f"release of medbench-future that supports medbench {medbench.__version__}")
    assert "fake_medbench_future_future" not in sys.modules  # never imported


@pytest.mark.parametrize("requires, loads", [
    (["medbench>=0.1,<99"], True),
    (["medbench<0.0.1; extra == 'dev'"], True),  # only for an extra: not checked
    (["medbench<0.0.1"], False),
])
def test_medbench_requirement_is_read_from_requires_dist(fake_package, requires, loads):
    fake_package("medbench-req", "0.1.0", {"req": GOOD_METRIC}, requires=requires)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        assert ("req" in {info.name for info in plugins.list_plugins()}) is loads


def test_entry_point_name_taken_by_a_builtin_is_skipped_naming_both_packages(fake_package):
    fake_package("medbench-impostor", "0.1.0", {"sft": GOOD_METRIC})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        infos = {info.name: info for info in plugins.list_plugins()}
    assert infos["sft"].package == "medbench"  # the built-in keeps its name
    (message,) = [str(w.message) for w in caught if issubclass(w.category, plugins.PluginLoadWarning)]
    assert message.startswith("plugin 'sft' (package medbench-impostor 0.1.0) was skipped: its name is taken by "
                              "plugin 'sft' (package medbench ")


def test_plugin_that_fails_to_import_names_its_package(fake_package):
    fake_package("medbench-broken", "0.0.1", {"broken": "import module_that_does_not_exist\n"})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        names = {info.name for info in plugins.list_plugins()}
    assert "broken" not in names
    (message,) = [str(w.message) for w in caught if issubclass(w.category, plugins.PluginLoadWarning)]
    assert message.startswith("plugin 'broken' (package medbench-broken 0.0.1) failed to load and was skipped: "
                              "ModuleNotFoundError")
    assert "pip uninstall medbench-broken" in message


def test_task_that_clashes_with_a_builtin_names_plugin_and_package(fake_package, tmp_path):
    tasks = tmp_path / "clash_tasks"
    tasks.mkdir()
    (tasks / "medqa.yaml").write_text(textwrap.dedent("""
        task: medqa
        dataset_path: json
        test_split: test
        doc_to_text: "{{question}}"
        doc_to_target: "{{answer}}"
    """))
    fake_package("medbench-clash", "0.2.0", {"clash": f"""
        from medbench import hookimpl

        @hookimpl
        def register_tasks(register):
            register({str(tasks)!r})
    """})
    from medbench.tasks import build_registry

    registry = build_registry()
    assert registry.get("medqa").plugin == "builtin_tasks"  # built-ins load first, so they win
    (problem,) = [p for p in registry.problems if "clashes" in p]
    assert problem.startswith("task 'medqa' from plugin 'clash' (package medbench-clash 0.2.0) (")
    assert "clashes with the one from plugin 'builtin_tasks' (package medbench " in problem
    assert "rename the task" in problem


def test_register_commands_hook_that_raises_is_one_line_naming_the_plugin(fake_package, capsys):
    fake_package("medbench-badcli", "0.5.0", {"badcli": """
        from medbench import hookimpl

        @hookimpl
        def register_commands(cli):
            raise AttributeError("'Group' object has no attribute 'comand'")
    """})
    with pytest.raises(SystemExit) as exited:
        main(["plugins"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "plugin 'badcli' (package medbench-badcli 0.5.0) raised in register_commands: AttributeError" in \
        " ".join(err.split())


def test_plugin_registration_leaves_an_installed_plugin_registered(fake_package, plugin_registration):
    fake_package("medbench-fake", "0.3.0", {"fake": GOOD_METRIC})
    module = importlib.import_module("fake_medbench_fake_fake")
    plugins.list_plugins()  # loads it from its entry point
    assert plugin_registration(module) == "fake"
    with pytest.raises(MedbenchError, match="plugin 'fake' \\(package medbench-fake 0.3.0\\) is already registered"):
        plugins.register_plugin(module)


def test_register_commands(tmp_path, monkeypatch, capsys):
    (tmp_path / "hello_plugin.py").write_text(textwrap.dedent("""
        import click
        from medbench import hookimpl

        @hookimpl
        def register_commands(cli):
            @cli.command()
            @click.argument("name")
            def hello(name):
                click.echo(f"hello {name}")
    """))
    monkeypatch.setenv(plugins.PLUGINS_DIR_ENV, str(tmp_path))
    try:
        main(["hello", "clinic"])
        assert "hello clinic" in capsys.readouterr().out
    finally:
        cli.commands.pop("hello", None)


def test_a_trainer_name_clash_warns_and_the_builtin_wins(plugin_registration):
    from medbench import hookimpl
    from medbench.plugins import PluginLoadWarning
    from medbench.training import trainer_registry

    class FakeSFT:
        name, description, config_class = "sft", "an impostor", dict

        def train(self, request):
            raise AssertionError("never called")

    class Plugin:
        @hookimpl
        def register_trainers(self, register):
            register(FakeSFT())

    plugin_registration(Plugin(), "impostor")
    with pytest.warns(PluginLoadWarning, match="trainer 'sft' from plugin 'impostor'.*registered that name first"):
        trainers = trainer_registry()
    assert trainers["sft"].plugin == "sft" and not isinstance(trainers["sft"], FakeSFT)


def test_every_registry_warns_on_a_name_clash_and_keeps_the_builtin(plugin_registration):
    from medbench import hookimpl
    from medbench.leaderboard import renderers
    from medbench.metrics import metric_registry
    from medbench.plugins import PluginLoadWarning

    class Plugin:
        @hookimpl
        def register_metrics(self, register):
            register("accuracy", lambda refs, preds: 0.0)

        @hookimpl
        def register_leaderboard_renderers(self, register):
            register("md", lambda table, out_dir: out_dir)

        @hookimpl
        def register_model_loaders(self, register):
            class Hub:
                name, priority = "hub", 10_000

                def can_load(self, ref):
                    return True

                def load(self, ref, options):
                    raise AssertionError("never called")

            register(Hub())

    plugin_registration(Plugin(), "impostor")
    with pytest.warns(PluginLoadWarning, match="metric 'accuracy' from plugin 'impostor'.*builtin_metrics"):
        metrics = metric_registry()
    assert metrics["accuracy"].plugin == "builtin_metrics"
    with pytest.warns(PluginLoadWarning, match="leaderboard renderer 'md' from plugin 'impostor'.*registered"):
        assert "md" in renderers()
    from medbench.models import loaders_by_plugin

    with pytest.warns(PluginLoadWarning, match="model loader 'hub' from plugin 'impostor'.*builtin_models"):
        loaders = loaders_by_plugin()
    assert dict((loader.name, plugin) for plugin, loader in loaders)["hub"] == "builtin_models"


def test_register_hooks_are_called_through_pluggy_with_wrappers(plugin_registration):
    from medbench import hookimpl
    from medbench.metrics import metric_registry

    calls = []

    class Plugin:
        @hookimpl(wrapper=True)
        def register_metrics(self, register):  # pluggy's new-style wrapper around the plugin's own impl
            calls.append("before")
            result = yield
            calls.append("after")
            return result

    class Other:
        @hookimpl
        def register_metrics(self, register):
            calls.append("other")
            register("kappa_like", lambda refs, preds: 0.0)

    plugin_registration(Plugin(), "wrapping")
    plugin_registration(Other(), "other")
    registry = metric_registry()
    assert registry["kappa_like"].plugin == "other"
    assert calls.count("before") >= 1 and "other" in calls and calls.index("before") < calls.index("other")
