"""What a third-party plugin author, working from docs/writing-plugins.md alone, tripped over: the public API's
boundary, option spelling, renderer testing, the scaffold's tests before install, `medbench plugins` with one
broken hook, a task clash said twice, and data errors pointing at a README that need not exist."""

import ast
import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
import types
import warnings
from pathlib import Path

import pytest

import medbench
from medbench import hookimpl
from medbench.errors import MedbenchError
from medbench_plugins import scaffold

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "writing-plugins.md"


def guide_section(heading: str) -> str:
    parts = re.split(r"^## +(.+?) *$", GUIDE.read_text(encoding="utf-8"), flags=re.M)
    return dict(zip(parts[1::2], parts[2::2]))[heading]


def medbench_modules(source: str) -> set[str]:
    """The medbench modules a piece of Python imports (``from medbench import x`` counts as ``medbench``)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                 else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
        found |= {name for name in names if name == "medbench" or name.startswith("medbench.")}
    return found


def test_every_module_the_built_ins_the_guide_and_the_scaffold_import_is_public_or_named_internal():
    """A plugin author learns what to build on from one section: every medbench module a built-in plugin, the
    guide's own examples or the scaffolded package imports is named there, as API or as internal."""
    # The example package is the scaffold's template rendered (tests/test_scaffold.py keeps the two in step).
    example = ROOT / "examples" / "medbench-plugin-example"
    sources = {str(path.relative_to(ROOT)): path.read_text(encoding="utf-8")
               for path in [*(ROOT / "plugins").rglob("*.py"), *example.rglob("*.py")]}
    for i, block in enumerate(re.findall(r"```python\n(.*?)```", GUIDE.read_text(encoding="utf-8"), flags=re.S)):
        sources[f"docs/writing-plugins.md block {i}"] = block
    section = guide_section("The API plugins build on")
    missing = sorted({f"{module} (in {where})" for where, source in sources.items()
                      for module in medbench_modules(source) if f"`{module}`" not in section
                      and not re.search(rf"`{re.escape(module)}`'", section)})
    assert not missing, f"name these in the guide's 'The API plugins build on' section: {missing}"
    for name in ("option_flag", "judge_registry", "EvalConfig", "metric_registry", "build_registry", "load_tasks",
                 "split_sizes", "terminal_safe", "build_table", "read_regular_text"):
        assert f"`{name}" in section, name


def guide_block(containing: str) -> types.ModuleType:
    (source,) = [block for block in re.findall(r"```python\n(.*?)```", GUIDE.read_text(encoding="utf-8"), flags=re.S)
                 if containing in block]
    module = types.ModuleType("guide_block")
    exec(compile(source, f"docs/writing-plugins.md ({containing})", "exec"), module.__dict__)
    return module


def test_an_option_error_spells_the_option_as_the_user_wrote_it(plugin_registration, tmp_path, monkeypatch):
    """The guide's option_flag example: `--label-smoothing` on the command line, `label_smoothing` in a recipe
    (which the message names) and in the Python API's options=."""
    from medbench.trainer_options import recipe_options
    from medbench.training import build_config

    options = guide_block("class SmoothedSFTOptions").SmoothedSFTOptions
    with pytest.raises(MedbenchError) as cli:
        build_config(options, {}, {"label_smoothing": "2"}, "smoothed_sft")
    assert (cli.value.problem, cli.value.fix) == ("--label-smoothing must lie in [0, 1), got 2.0",
                                                  "pass --label-smoothing 0.1, say")
    with pytest.raises(MedbenchError) as recipe:
        with recipe_options("recipe r.yaml, step 1"):
            build_config(options, {"label_smoothing": 2}, {}, "smoothed_sft")
    assert (recipe.value.problem, recipe.value.fix) == ("recipe r.yaml, step 1: label_smoothing must lie in [0, 1), "
                                                        "got 2", "pass label_smoothing 0.1, say")

    class Smoothed:
        name, description, config_class = "smoothed_sft", "label smoothing", options

        def train(self, request):
            raise AssertionError("never reached: the options are refused first")

    class Plugin:
        @hookimpl
        def register_trainers(self, register):
            register(Smoothed())

    plugin_registration(Plugin(), "smoothed")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(MedbenchError, match=r"^label_smoothing must lie in \[0, 1\)"):
        medbench.train("smoothed_sft", "medqa", options={"label_smoothing": 2})
    with pytest.raises(MedbenchError, match=r"has no option label_smothing .*did you mean label_smoothing\?"):
        medbench.train("smoothed_sft", "medqa", options={"label_smothing": 0.1})
    assert list(tmp_path.iterdir()) == []


def test_renderers_run_after_the_python_api_not_after_the_engine_function(plugin_registration, tiny_model_dir,
                                                                          leaderboard_dir):
    """What the guide's renderer test relies on: evaluation.evaluate writes records only; build_table + the
    renderer, leaderboard.render and medbench.evaluate (reusing the record) each write the renderer's file."""
    from medbench.evaluation import EvalConfig, evaluate
    from medbench.leaderboard import build_table, render

    def render_tsv(table, out_dir):
        path = out_dir / "leaderboard.tsv"
        path.write_text("\n".join(row.label for row in table.rows) + "\n")
        return path

    class Plugin:
        @hookimpl
        def register_leaderboard_renderers(self, register):
            register("tsv", render_tsv)

    plugin_registration(Plugin(), "tsv_probe")
    tsv = leaderboard_dir / "leaderboard.tsv"
    (record,) = evaluate(str(tiny_model_dir), EvalConfig(tasks=["medqa"], limit=2, output_dir=leaderboard_dir))
    assert not tsv.exists()
    assert render_tsv(build_table(leaderboard_dir), leaderboard_dir) == tsv
    tsv.unlink()
    assert render(leaderboard_dir, ["tsv"]) == [tsv]
    tsv.unlink()
    result = medbench.evaluate(str(tiny_model_dir), "medqa", limit=2, leaderboard_dir=leaderboard_dir)
    assert tsv in result.leaderboard and tsv.is_file()
    assert result.records[0]["created"] == record["created"]  # reused, not scored again


def test_the_scaffolded_tests_pass_before_the_package_is_installed(tmp_path):
    """The generated tests say they pass uninstalled: with the src layout that needs src/ on pytest's path.
    Collected and one model-free test run in a fresh pytest, from outside the package, with nothing installed."""
    package = scaffold.new_plugin("friction-probe", tmp_path)
    assert tomllib.loads((package / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["pythonpath"] \
        == ["src"]
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTEST_ADDOPTS")}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "test_register_metrics",
                          str(package / "tests")], cwd=tmp_path, env={**env, "HF_HUB_OFFLINE": "1"},
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and "1 passed, 2 deselected" in run.stdout, run.stdout + run.stderr


def test_the_scaffold_names_its_interpreter_for_every_next_step(medbench_cli, tmp_path):
    result = medbench_cli("plugin", "new", "friction-next", "--dir", tmp_path)
    assert result.exit_code == 0, result.output
    python = shlex.quote(sys.executable)
    (line,) = [line for line in result.output.splitlines() if line.startswith("next: ")]
    steps = line.removeprefix("next: ").split(" && ")
    assert [step.split(" -m ")[0] for step in steps] == [python] * 3, line
    assert steps[-1] == f"{python} -m medbench.cli plugins"
    listed = subprocess.run([sys.executable, "-m", "medbench.cli", "plugins", "--json"], capture_output=True,
                            text=True, timeout=120, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert listed.returncode == 0 and "scaffold" in {row["name"] for row in json.loads(listed.stdout)}


@pytest.mark.parametrize("hook, kind, other_plugin", [("register_metrics", "metrics", "builtin_metrics"),
                                                     ("register_judges", "judges", "likert_judge"),
                                                     ("register_trainers", "trainers", "sft")])
def test_one_raising_hook_leaves_every_other_plugin_listed(hook, kind, other_plugin, medbench_cli,
                                                           plugin_registration):
    class Broken:
        pass

    def raising(self, register):
        raise RuntimeError("no such thing")

    setattr(Broken, hook, hookimpl(raising))
    plugin_registration(Broken(), "broken_probe")
    result = medbench_cli("plugins", "--json")
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row["provides"] for row in json.loads(result.stdout)}
    assert rows[other_plugin][kind], f"{other_plugin}'s {kind} must still be listed"
    (line,) = [x for x in result.stderr.splitlines() if x.strip()]
    assert line.startswith(f"medbench: {kind} of one plugin not listed: plugin 'broken_probe'") and \
        f"raised in {hook}: RuntimeError: no such thing" in line
    from medbench.registries import call_register_hook

    with pytest.raises(MedbenchError, match="broken_probe"):  # outside the listing, the hook still stops the command
        call_register_hook(hook, lambda plugin: lambda *args, **kwargs: None)


def test_a_task_name_clash_is_reported_once_by_medbench_tasks(medbench_cli, plugin_registration, tmp_path):
    (tmp_path / "medqa_again.yaml").write_text("task: medqa\noutput_type: multiple_choice\ndataset_path: json\n")

    class Clashing:
        @hookimpl
        def register_tasks(self, register):
            register(tmp_path)

    plugin_registration(Clashing(), "clash_probe")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = medbench_cli("tasks")
    assert result.exit_code == 0, result.output
    said = result.stdout + result.stderr + "".join(str(w.message) for w in caught)
    assert said.count("clashes with") == 1 and "clash_probe" in said


def test_a_data_file_missing_a_column_is_pointed_at_the_tasks_yaml(tmp_path):
    """Tasks need not have a README; every task has its YAML, which says which fields it reads."""
    from medbench.taskdata import require_columns
    from medbench.tasks import build_registry, load_tasks

    bad = tmp_path / "mine.jsonl"
    bad.write_text(json.dumps({"question": "q?", "options": {"A": "a"}}) + "\n")
    registry = build_registry()
    yaml = registry.get("medqa").path
    assert not (yaml.parent / "README.md").exists()
    with pytest.raises(MedbenchError, match="missing column.*answer_idx") as caught:
        load_tasks(["medqa"], registry, metadata={"medqa": {"data_files": {"test": str(bad)}}})
    assert str(yaml) in caught.value.fix and "README" not in caught.value.fix
    with pytest.raises(MedbenchError) as outside:  # called outside medbench's task loading (stock lm_eval)
        require_columns({"a": 1}, ["b"], "mine.jsonl row 1")
    assert "the task's YAML" in outside.value.fix and "README" not in outside.value.fix
