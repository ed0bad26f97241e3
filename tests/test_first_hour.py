"""A new user's first hour: bundled recipes by name from any folder, tables that survive a pipe, a clean wheel."""

import io
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from rich.markdown import Markdown
from rich.table import Table
from rich.text import Text

from medbench.console import PipeFriendlyConsole
from medbench.errors import MedbenchError
from medbench.recipe import read_recipe
from medbench_recipes import bundled_recipes

REPO = Path(__file__).resolve().parents[1]


# --- recipes found from anywhere ---------------------------------------------------------------------------

def test_bundled_recipes_are_the_repos_recipes():
    assert sorted(bundled_recipes()) == sorted(p.stem for p in (REPO / "recipes").glob("*.yaml"))
    assert "sft_vs_dpo" in bundled_recipes()


@pytest.mark.parametrize("ref", ["sft_vs_dpo", "sft_vs_dpo.yaml", "recipes/sft_vs_dpo.yaml"])
def test_bundled_recipe_by_name_from_another_folder(tmp_path, monkeypatch, ref):
    monkeypatch.chdir(tmp_path)
    recipe = read_recipe(ref)
    assert recipe.name == "sft_vs_dpo"


def test_a_local_file_wins_over_a_bundled_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = (REPO / "recipes" / "sft_vs_dpo.yaml").read_text(encoding="utf-8").replace(
        "name: sft_vs_dpo", "name: my_local_study", 1)
    (tmp_path / "sft_vs_dpo.yaml").write_text(text, encoding="utf-8")
    assert read_recipe("sft_vs_dpo.yaml").name == "my_local_study"


@pytest.mark.parametrize("ref", ["no_such_recipe", "recipes/no_such.yaml", "../recipes/sft_vs_dpo.yaml",
                                 "elsewhere/sft_vs_dpo.yaml"])
def test_missing_recipe_lists_the_bundled_names(tmp_path, monkeypatch, ref):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(MedbenchError) as info:
        read_recipe(ref)
    message = info.value.one_line()
    assert "does not exist" in message and "\n" not in message
    for name in bundled_recipes():
        assert name in message


def test_sweep_of_a_missing_recipe_says_which_names_exist(tmp_path, monkeypatch, medbench_cli):
    monkeypatch.chdir(tmp_path)
    result = medbench_cli("sweep", "sft_vs_dpp", "--dry-run")
    assert isinstance(result.exception, MedbenchError)
    assert "sft_vs_dpo" in result.exception.one_line()


# --- tables fit a pipe -------------------------------------------------------------------------------------

def _piped_console() -> tuple[PipeFriendlyConsole, io.StringIO]:
    out = io.StringIO()  # not a terminal, like a pipe
    return PipeFriendlyConsole(file=out, width=80), out


def test_piped_table_keeps_long_cells_whole_on_one_line():
    console, out = _piped_console()
    table = Table(title="tasks")
    for column in ("task", "data"):
        table.add_column(column)
    long_data = "bundled: generated for medbench by adrd_prediction/generate.py (synthetic, not patient data)"
    table.add_row("adrd_prediction_prevalence", long_data)
    console.print(table)
    lines = out.getvalue().splitlines()
    assert any("adrd_prediction_prevalence" in line and long_data in line for line in lines)
    assert "…" not in out.getvalue()
    assert console.width == 80  # widened for the table only


def test_piped_markdown_keeps_the_default_width():
    console, out = _piped_console()
    console.print(Markdown("# Report\n\nsome text\n\n---\n"))
    assert max(len(line) for line in out.getvalue().splitlines()) <= 80


def test_a_piped_message_stays_one_line():
    console, out = _piped_console()
    message = "records: runs/leaderboard/records/" + "x" * 120 + " (3 tasks); leaderboard: runs/leaderboard"
    console.print(message)
    console.print(Text("Note: " + "a long note " * 12))
    lines = [line.rstrip() for line in out.getvalue().splitlines()]
    assert lines == [message, ("Note: " + "a long note " * 12).rstrip()]


def test_medbench_tasks_through_a_real_pipe(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "60"}
    env.pop("FORCE_COLOR", None)
    medbench = Path(sys.executable).with_name("medbench")
    command = [str(medbench)] if medbench.exists() else [sys.executable, "-m", "medbench.cli"]
    proc = subprocess.run(command + ["tasks"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = [line for line in proc.stdout.splitlines() if "adrd_prediction_prevalence" in line]
    assert rows, proc.stdout
    assert "multiple_choice" in rows[0]  # the whole row, name and all, is one line


# --- the wheel: no "Package would be ignored" noise, every task and template file inside ---------------------

def test_wheel_has_every_task_recipe_and_template_file_and_builds_quietly(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
    for name in ("src", "plugins", "tasks", "recipes"):
        shutil.copytree(REPO / name, src / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    out = tmp_path / "wheel"
    code = ("import sys; from setuptools import build_meta as b; "
            "print(b.build_wheel(sys.argv[1]))")
    proc = subprocess.run([sys.executable, "-W", "always", "-c", code, str(out)], cwd=src, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "would be ignored" not in proc.stdout
    assert "is absent from the `packages` configuration" not in proc.stdout
    wheel = next(out.glob("*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = set()
    for folder, package in (("tasks", "medbench_tasks"), ("recipes", "medbench_recipes"),
                            ("plugins/plugin_template", "medbench_plugins/plugin_template"),
                            ("plugins/page", "medbench_plugins/page")):
        for path in (src / folder).rglob("*"):
            if path.is_file():
                expected.add(f"{package}/{path.relative_to(src / folder).as_posix()}")
    assert expected - names == set()
    assert any(n.endswith(".jsonl") for n in names) and any(n.endswith("%%task%%.yaml.tmpl") for n in names)


def test_the_medbench_cli_fixture_ends_a_user_error_as_the_command_does(medbench_cli):
    result = medbench_cli("train", "--plugin", "sft", "--task", "medqa", "--max-step", "1")
    assert result.exit_code == 2 and isinstance(result.exception, MedbenchError)
    assert result.output.splitlines()[-1].startswith("Error: trainer 'sft' has no option --max-step")
