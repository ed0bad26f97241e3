import json
import textwrap
import warnings

import click
import pytest
from click.testing import CliRunner

from medbench import hookimpl, plugins
from medbench.cli import cli, main

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
    assert set(rows["builtin_models"]) == {"name", "version", "package", "source", "hooks"}
    table = runner.invoke(cli, ["plugins"])
    assert table.exit_code == 0 and "builtin_tasks" in table.output and "register_tasks" in table.output


def test_hook_that_raises_is_named(plugin_registration):
    class Exploding:
        @hookimpl
        def register_metrics(self, register):
            raise RuntimeError("boom")

    plugin_registration(Exploding(), "exploding")
    from medbench.errors import MedbenchError
    from medbench.metrics import metric_registry

    with pytest.raises(MedbenchError, match="plugin 'exploding' raised in register_metrics: RuntimeError: boom"):
        metric_registry()


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
